"""`toolbench-eval diagnose`: where a scored run's unsolved LocalToolBench queries were lost.

    toolbench-eval score results/runs/toolsmol/react-nobuckets --judge rule
    toolbench-eval diagnose results/runs/toolsmol/react-nobuckets

Prints one row per group (solved, unsure, then the first failure of each unsolved query: no answer file, the
facts were observed but not stated, no call, an unknown function first, a wrong sibling API first, the planned API
first without reaching the facts) and writes `RUN_DIR/scores/diagnosis_<judge>.json` with each query's stage.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from toolbench_eval.atomic import write_text_atomic
from toolbench_eval.errors import UserError, located


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "diagnose",
        help="where the unsolved queries of a scored LocalToolBench run were lost (first failure per query)",
        description="Reads the saved pass-rate labels (run `score` first) and the benchmark's ground truth.",
    )
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR", help="scored run directories")
    parser.add_argument("--judge-id", default="rule",
                        help="whose labels to read: scores/pass_rate_<judge-id>.json (default rule)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from toolbench_eval.scoring.diagnosis import diagnose_group, format_diagnosis
    from toolbench_eval.scoring.passrate_report import load_report, report_path
    from toolbench_eval.scoring.rundir import load_queries, load_run

    for run_dir in args.run_dirs:
        run_info = load_run(run_dir)
        report = load_report(run_info.scores_dir, args.judge_id)
        if report is None:
            raise UserError(f"{report_path(run_info.scores_dir, args.judge_id)} not found: score the run first "
                            f"(toolbench-eval score {run_dir} --judge rule)")
        groups = [group for group in run_info.groups if group in report.groups]
        benchmark = load_queries(run_info.manifest.benchmark_root, groups, required=True)
        results, labels = {}, {}
        for group in groups:
            entry = report.groups[group]
            labels[group] = entry.label
            # The most frequent status over evaluation rounds (the rule judge gives the same one every round).
            statuses = {qid: Counter(s.value for s in label.statuses).most_common(1)[0][0]
                        for qid, label in entry.labels.items()}
            queries = benchmark.get(group, {})
            missing_truth = [qid for qid, status in statuses.items()
                             if status == "Unsolved" and (qid not in queries or queries[qid].ground_truth is None)]
            if missing_truth:
                raise located(run_info.path / "manifest.json", f"queries without ground truth in {group} "
                              f"({', '.join(missing_truth[:3])}...): diagnosis needs LocalToolBench-style "
                              "`ground_truth`", field="benchmark.root")
            results[group] = diagnose_group(queries, run_info.answers(group), statuses)
        out = run_info.scores_dir / f"diagnosis_{args.judge_id}.json"
        write_text_atomic(out, json.dumps({"run_id": run_info.run_id, "judge_id": args.judge_id, "groups": results},
                                          indent=2, ensure_ascii=False) + "\n")
        print(format_diagnosis(run_info.run_id, results, labels))
        print(f"wrote {out}")
    return 0
