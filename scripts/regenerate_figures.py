"""Redraw every committed figure under results/ (PNG + SVG + PDF) without re-running a model.

    python scripts/regenerate_figures.py            # all of them
    python scripts/regenerate_figures.py probe      # one part: leaderboards, toolsmol, buckets, probe

- `leaderboards`: results/leaderboard/{quickstart,protocol_ablation}/ re-exported from their runs under
  results/runs/ (git-ignored; made by `toolbench-eval ablate configs/<name>.yaml`), as `ablate` exports them.
  Export rewrites the tables too; they come out byte-identical when the runs are the committed ones
  (`git diff --stat results/leaderboard` shows only figures).
- `toolsmol`: results/leaderboard/toolsmol/** redrawn from each leaderboard.json (its runs were made on a lent
  GPU and are not kept). Those files predate N in the JSON; the sizes below are the ones NOTES.md states.
- `buckets`: results/buckets/*.png by the commands of results/buckets/README.md.
- `probe`: results/probe/smollm2/accuracy.png from its records.jsonl (`toolbench_eval.probe.replot`).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"

# Queries per group of each toolsmol run, from results/leaderboard/toolsmol/NOTES.md: "ReAct 20 queries per
# group (120), DFSDT 10 per group (60)"; the G1 runs used `limit: 60` on each of the three G1 groups.
TOOLSMOL_GROUP_SIZES = {
    "toolsmol": lambda row: 20 if row.method == "react" else 10,
    "toolsmol/g1-all-cpu": lambda row: 60,
    "toolsmol/g1-constrained-cpu": lambda row: 60,
}


def leaderboards() -> None:
    from toolbench_eval.commands.ablate import export_table

    for name in ("quickstart", "protocol_ablation"):
        out = RESULTS / "leaderboard" / name
        runs = [r["run"] for r in json.loads((out / "leaderboard.json").read_text())["rows"] if not r["published"]]
        spec = {"score": {"judge": "rule", "evaluate_times": 1}, "grid": {"protocol": []}}
        export_table(spec, [RESULTS / "runs" / name / run for run in runs], out)


def _with_sizes(row, group_size: int):
    """The row with N filled in where its JSON left it out (the average's N is its groups')."""
    cells = {g: dataclasses.replace(c, n=c.n if c.n is not None else group_size) for g, c in row.pass_rate.items()}
    average = row.average
    if average is not None and average.n is None:
        average = dataclasses.replace(average, n=group_size * len(cells))
    return dataclasses.replace(row, pass_rate=cells, average=average)


def toolsmol() -> None:
    from toolbench_eval.scoring.export import plot_buckets, plot_pass_rates
    from toolbench_eval.scoring.saved_rows import rows_from_leaderboard_json

    for name, size in TOOLSMOL_GROUP_SIZES.items():
        folder = RESULTS / "leaderboard" / name
        rows = [_with_sizes(r, size(r)) for r in rows_from_leaderboard_json(folder / "leaderboard.json")]
        print(plot_pass_rates(rows, folder / "pass_rate.png"), plot_buckets(rows, folder / "buckets_vs_none.png"))


def buckets() -> None:
    from toolbench_eval.cli import main

    out = RESULTS / "buckets"
    toolllama = ["--model-base", "10000", "--head-dim", "128", "--position-scale", "2", "--n", "6", "--min-base",
                 "10000", "--max-base", "30000", "--step", "500", "--window", "1000:4090", "--tolerance", "3"]
    commands = [["buckets", "plot", *toolllama, "--out", str(out / "toolllama_waveforms.png")]]
    for n in (3, 6):
        smollm2 = ["--model-base", "100000", "--head-dim", "64", "--position-scale", "1", "--n", str(n),
                   "--min-base", "100000", "--max-base", "300000", "--step", "5000", "--context-tokens", "8192",
                   "--tolerance", "3"]
        commands.append(["buckets", "plot", *smollm2, "--out", str(out / f"smollm2_n{n}_waveforms.png")])
    commands.append(["buckets", "plot", "--bases", "10000,17500,18000,19000,20000,25000", "--head-dim", "128",
                     "--position-scale", "2", "--window", "1000:4090",
                     "--out", str(out / "published_toolbench_set_waveforms.png")])
    for argv in commands:
        if main(argv) != 0:
            raise SystemExit(f"failed: toolbench-eval {' '.join(argv)}")


def probe() -> None:
    from toolbench_eval.probe.replot import replot_accuracy

    print(replot_accuracy(RESULTS / "probe" / "smollm2"))


PARTS = {"leaderboards": leaderboards, "toolsmol": toolsmol, "buckets": buckets, "probe": probe}

if __name__ == "__main__":
    chosen = sys.argv[1:] or list(PARTS)
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        raise SystemExit(f"unknown part(s) {unknown}; choose from {', '.join(PARTS)}")
    for part in chosen:
        PARTS[part]()
