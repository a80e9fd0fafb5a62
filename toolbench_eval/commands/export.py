"""`toolbench-eval export`: leaderboard CSV / Markdown / JSON and plots for one or more runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from toolbench_eval.scoring.cli_options import add_judge_arguments, judge_from_args
from toolbench_eval.scoring.export import export_leaderboard
from toolbench_eval.scoring.reference import CHOICES, reference_rows


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write a leaderboard (CSV, Markdown, JSON, PNG plots) for one or more runs",
        description="Reads saved scores; with the rule judge, runs without saved scores are scored first. "
        "With --judge llm, score (and compare) the runs first: export never calls an LLM.",
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument(
        "--out", type=Path, required=True, help="output directory, e.g. results/leaderboard/NAME"
    )
    parser.add_argument(
        "--reference-rows",
        choices=[*CHOICES, "none"],
        default="none",
        help="add published upstream numbers (marked as published, not our measurement); they stand "
        "beside our rows only when every run used their benchmark, else in a table of their own",
    )
    parser.add_argument("--win-reference", type=Path, help="a reference run for the win-rate column")
    parser.add_argument(
        "--ties-as-zero", action="store_true", help="count win-rate ties as 0 (StableToolBench)"
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--mix-protocols", action="store_true",
                        help="allow runs of different protocols (--protocol of `run`) in one table")
    add_judge_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    judge = judge_from_args(args)
    written = export_leaderboard(
        args.run_dirs,
        args.out,
        judge,
        reference_rows=reference_rows(args.reference_rows),
        win_reference=args.win_reference,
        evaluate_times=args.evaluate_times,
        ties_as_zero=args.ties_as_zero,
        plots=not args.no_plots,
        mix_protocols=args.mix_protocols,
    )
    print(written["markdown"].read_text(encoding="utf-8"))
    for path in written.values():
        print(f"wrote {path}")
    return 0
