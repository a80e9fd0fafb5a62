"""`toolbench-eval sopr`: recompute SoPR from StableToolBench `pass_rate_results` JSON files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from toolbench_eval.errors import located
from toolbench_eval.scoring.passrate import sopr_from_stb_labels


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "sopr",
        help="recompute SoPR from StableToolBench pass_rate_results/<group>_<model>.json files",
        description="Upstream arithmetic: per run (Solved + 0.5 x Unsure) / N over the file's entries; "
        "mean and population std over runs. --test-ids adds absent ids as Unsolved.",
    )
    parser.add_argument("labels", nargs="+", type=Path, metavar="LABELS.json")
    parser.add_argument(
        "--evaluate-times", type=int, help="runs to average (default: as many as the file has)"
    )
    parser.add_argument(
        "--test-ids", type=Path, help="test_query_ids/<group>.json: count absent ids as Unsolved"
    )
    parser.set_defaults(func=run)


def _read(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise located(path, "no such file") from None
    except (OSError, json.JSONDecodeError) as error:
        raise located(path, f"not valid JSON ({error})") from None


def run(args: argparse.Namespace) -> int:
    test_ids = list(_read(args.test_ids)) if args.test_ids else None
    print(f"{'file':<48}{'N':>6}{'missing':>9}{'runs':>6}{'SoPR':>8}{'std':>7}")
    for path in args.labels:
        result = sopr_from_stb_labels(_read(path), evaluate_times=args.evaluate_times, test_ids=test_ids)
        sopr = "–" if result["sopr"] is None else f"{result['sopr']:.1f}"
        std = "–" if result["std"] is None else f"{result['std']:.1f}"
        print(
            f"{path.name:<48}{result['n']:>6}{result['n_missing']:>9}{result['evaluate_times']:>6}{sopr:>8}{std:>7}"
        )
    return 0
