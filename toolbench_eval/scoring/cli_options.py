"""Judge flags shared by the `score`, `compare` and `export` commands."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from toolbench_eval.benchmark.model import GROUPS
from toolbench_eval.registry import Registry, arguments_taken
from toolbench_eval.scoring.judges import Judge

# The LLM judge imports openai: only when asked for.
JUDGES = Registry("judge", {"rule": "toolbench_eval.scoring.judges:RuleJudge",
                            "llm": "toolbench_eval.scoring.llm_judge:LLMJudge.from_settings"})


def add_judge_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("judge")
    group.add_argument(
        "--judge",
        choices=JUDGES.names,
        default="rule",
        help="rule: LocalToolBench ground truth (default); llm: ToolEval rubric over an "
        "OpenAI-compatible endpoint",
    )
    group.add_argument(
        "--judge-model", help="LLM judge model (default: $EVAL_MODEL or gpt-4-turbo-2024-04-09)"
    )
    group.add_argument(
        "--judge-base-url",
        help="OpenAI-compatible base URL (default: $TOOLBENCH_EVAL_JUDGE_BASE_URL or $OPENAI_BASE_URL); "
        "the key is read from $TOOLBENCH_EVAL_JUDGE_KEY or $OPENAI_API_KEY only",
    )
    group.add_argument(
        "--judge-temperature", type=float, help="LLM judge temperature (default 0.2, as ToolEval)"
    )
    group.add_argument(
        "--judge-workers", type=int, default=8, help="concurrent LLM judge requests (default 8)"
    )
    group.add_argument(
        "--judge-cache",
        type=Path,
        help="directory for cached judge replies (default: RUN_DIR/scores/judge_cache)",
    )
    parser.add_argument(
        "--evaluate-times",
        type=int,
        default=3,
        help="evaluation rounds per answer (default 3, as StableToolBench's leaderboard)",
    )


def add_group_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--groups",
        nargs="+",
        choices=GROUPS,
        metavar="GROUP",
        help="groups to score (default: all groups of the run)",
    )


def judge_from_args(args: argparse.Namespace, default_cache: Path | None = None) -> Judge:
    return build_judge(
        args.judge,
        model=args.judge_model,
        base_url=args.judge_base_url,
        temperature=args.judge_temperature,
        cache_dir=args.judge_cache or default_cache,
        workers=args.judge_workers,
    )


def build_judge(name: str, **settings: Any) -> Judge:
    """A judge from CLI-style settings (model, base_url, temperature, cache_dir, workers: the LLM judge's, with
    environment fallbacks); each judge takes those it uses, the rule judge none."""
    judge = JUDGES.lookup(name)
    return judge(**arguments_taken(judge, settings))
