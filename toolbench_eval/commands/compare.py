"""`toolbench-eval compare`: win rate of a run against a reference run."""

from __future__ import annotations

import argparse
from pathlib import Path

from toolbench_eval.scoring.cli_options import add_group_argument, add_judge_arguments, judge_from_args
from toolbench_eval.scoring.winrate import compare_runs, win_rate_path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="win rate of RUN_DIR against --reference REF_RUN_DIR",
        description="Pass status decides where it differs; otherwise the judge prefers one answer per round "
        "(order randomised, seeded) and the majority over rounds decides. Ties count 0.5 in the win rate "
        "unless --ties-as-zero (StableToolBench). Saved pass-rate labels are reused.",
    )
    parser.add_argument("run_dir", type=Path, help="the candidate run directory")
    parser.add_argument("--reference", type=Path, required=True, help="the reference run directory")
    add_group_argument(parser)
    add_judge_arguments(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the per-round answer order (default 0)")
    parser.add_argument(
        "--ties-as-zero", action="store_true", help="count ties as 0, as StableToolBench does"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    judge = judge_from_args(args)
    report = compare_runs(
        args.run_dir,
        args.reference,
        judge,
        evaluate_times=args.evaluate_times,
        groups=args.groups,
        seed=args.seed,
        ties_as_zero=args.ties_as_zero,
    )
    print(
        f"candidate {report['candidate']['run_id']} vs reference {report['reference']['run_id']} "
        f"(judge {report['judge_id']}, ties {report['ties']})"
    )
    print(f"{'group':<10}{'N':>6}{'wins':>6}{'losses':>8}{'ties':>6}{'win rate':>10}")
    for entry in report["groups"].values():
        rate = "–" if entry["win_rate"] is None else f"{entry['win_rate']:.1f}"
        print(
            f"{entry['label']:<10}{entry['n']:>6}{entry['wins']:>6}{entry['losses']:>8}{entry['ties']:>6}{rate:>10}"
        )
    average = report["average"]
    if average["win_rate"] is not None:
        print(f"{'Average':<36}{average['win_rate']:>10.1f}")
    print(f"wrote {win_rate_path(args.run_dir / 'scores', judge.id, report['reference']['run_id'])}")
    return 0
