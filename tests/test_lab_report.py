"""The lab report: newest row per run wins, every split gets a column, hand-written findings are kept."""

from __future__ import annotations

import json

from toolbench_eval.lab.report import build_report, read_rows


def _row(attention: str, accuracy: float, seed: int = 0) -> dict:
    result = {"correct": int(accuracy * 100), "n": 100, "accuracy": accuracy, "ci_low": accuracy - 0.05,
              "ci_high": min(1.0, accuracy + 0.05)}
    return {"task": "flipflop", "attention": attention, "size": "small", "seed": seed, "eval_seed": 0,
            "results": {"id": result, "ood-long": result},
            "train": {"params": 1000, "steps": 10, "tokens_seen": 640, "wall_minutes": 0.1, "threads": 1,
                      "device": "cpu", "command": f"toolbench-eval lab train --task flipflop --attention {attention}"},
            "eval_command": f"toolbench-eval lab eval --task flipflop --attention {attention}"}


def test_report_keeps_newest_row_and_findings(tmp_path):
    table = tmp_path / "results.jsonl"
    rows = [_row("cope", 0.2), _row("rope", 0.4), _row("cope", 0.8), _row("cope", 0.7, seed=1)]
    table.write_text("".join(json.dumps(row) + "\n" for row in rows))
    kept = read_rows(table)
    assert [(r["attention"], r["seed"], r["results"]["id"]["accuracy"]) for r in kept] == [
        ("rope", 0, 0.4), ("cope", 0, 0.8), ("cope", 1, 0.7)]
    (tmp_path / "findings.md").write_text("## Findings\n\nCoPE generalises.\n")
    report = build_report(table, plots=False).read_text()
    assert "CoPE generalises." in report
    assert "| cope | small | 0 | 1,000 | 80.0 [75.0, 85.0] | 80.0 [75.0, 85.0] |" in report
    assert "ood-long acc % [95% CI]" in report
    assert report.count("toolbench-eval lab train --task flipflop") == 3
