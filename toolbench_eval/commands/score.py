"""`toolbench-eval score`: pass rate (StableToolBench SoPR) of a run directory or a converted file."""

from __future__ import annotations

import argparse
from pathlib import Path

from toolbench_eval.atomic import write_text_atomic
from toolbench_eval.errors import UserError
from toolbench_eval.paths import cache_dir
from toolbench_eval.scoring import stats
from toolbench_eval.scoring.cli_options import add_group_argument, add_judge_arguments, judge_from_args
from toolbench_eval.scoring.passrate import format_report, score_converted, score_run
from toolbench_eval.scoring.passrate_report import report_path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "score",
        help="pass rate (SoPR) of a run directory, or of a ToolEval converted file with --converted",
        description="Judge every answer of a run and write RUN_DIR/scores/pass_rate_<judge>.json plus "
        "StableToolBench-compatible pass_rate_results/. Missing answers count as Unsolved unless "
        "--upstream-denominator is given.",
    )
    parser.add_argument("run_dir", nargs="?", type=Path, help="a run directory (results/runs/<run-id>)")
    parser.add_argument("--converted", type=Path, help="score this ToolEval converted file instead of a run")
    parser.add_argument("--group", help="the group of the --converted file (e.g. G1_instruction)")
    parser.add_argument(
        "--benchmark", help="benchmark name or path for --converted (ground truth for the rule judge)"
    )
    parser.add_argument(
        "--test-ids", type=Path, help="StableToolBench test_query_ids/<group>.json for --converted"
    )
    parser.add_argument(
        "--out", type=Path, help="where --converted writes its report (default: next to the file)"
    )
    add_group_argument(parser)
    add_judge_arguments(parser)
    parser.add_argument(
        "--upstream-denominator",
        action="store_true",
        help="leave queries without an answer out of N, as StableToolBench does",
    )
    parser.add_argument(
        "--bootstrap-resamples",
        type=int,
        default=stats.DEFAULT_RESAMPLES,
        help=f"bootstrap resamples for the 95%% CI (default {stats.DEFAULT_RESAMPLES})",
    )
    parser.add_argument("--seed", type=int, default=stats.DEFAULT_SEED, help="bootstrap seed (default 0)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if (args.run_dir is None) == (args.converted is None):
        raise UserError("give either RUN_DIR or --converted FILE (with --group G)")
    if args.converted is not None:
        if not args.group:
            raise UserError("--converted needs --group, e.g. --group G1_instruction")
        judge = judge_from_args(args, default_cache=cache_dir() / "judge")
        report = score_converted(
            args.converted,
            args.group,
            judge,
            benchmark=args.benchmark,
            test_ids=args.test_ids,
            evaluate_times=args.evaluate_times,
            upstream_denominator=args.upstream_denominator,
            resamples=args.bootstrap_resamples,
            seed=args.seed,
        )
        out = args.out or args.converted.with_name(f"{args.converted.stem}_pass_rate_{judge.id}.json")
        write_text_atomic(out, report.dumps())
    else:
        judge = judge_from_args(args)
        report = score_run(
            args.run_dir,
            judge,
            evaluate_times=args.evaluate_times,
            groups=args.groups,
            upstream_denominator=args.upstream_denominator,
            resamples=args.bootstrap_resamples,
            seed=args.seed,
        )
        out = report_path(args.run_dir / "scores", judge.id)
    print(format_report(report))
    malformed = report.judge.get("stats", {}).get("malformed", 0)
    if malformed:
        print(f"warning: {malformed} judge replies stayed malformed and were counted as Unsure")
    print(f"wrote {out}")
    return 0
