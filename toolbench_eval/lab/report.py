"""Build `report.md` and one figure per task from the lab's results table (`results.jsonl`).

`lab eval` appends one row per evaluated model; the report keeps the newest row of each
(task, attention, size, seed) so a re-run replaces, and it lists the commands that produced each row.
"""

from __future__ import annotations

import json
from pathlib import Path

from toolbench_eval.lab.attention import ATTENTIONS
from toolbench_eval.lab.tasks import TASKS

REPORT_COMMAND = "toolbench-eval lab report"


def read_rows(table: Path) -> list[dict]:
    """The newest row per (task, attention, size, seed), in task then attention order."""
    latest: dict[tuple, dict] = {}
    if table.exists():
        for line in table.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                latest[(row["task"], row["attention"], row["size"], row["seed"])] = row
    order = {name: i for i, name in enumerate(TASKS)}
    methods = {name: i for i, name in enumerate(ATTENTIONS)}
    return sorted(latest.values(), key=lambda r: (order.get(r["task"], 99), r["size"],
                                                  methods.get(r["attention"], 99), r["seed"]))


def _cell(result: dict | None) -> str:
    if result is None:
        return "–"
    return f"{100 * result['accuracy']:.1f} [{100 * result['ci_low']:.1f}, {100 * result['ci_high']:.1f}]"


def task_table(rows: list[dict]) -> list[str]:
    splits = list(dict.fromkeys(split for row in rows for split in row["results"]))
    header = ["method", "size", "seed", "params", *(f"{s} acc % [95% CI]" for s in splits), "n/split", "steps",
              "tokens", "train min", "threads", "device"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        record = row["train"]
        cells = [row["attention"], row["size"], str(row["seed"]), f"{record['params']:,}",
                 *(_cell(row["results"].get(s)) for s in splits),
                 str(next(iter(row["results"].values()))["n"]), str(record["steps"]),
                 f"{record['tokens_seen']:,}", f"{record['wall_minutes']:.1f}", str(record["threads"]),
                 record["device"]]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def plot_task(task: str, rows: list[dict], png: Path) -> Path:
    """Grouped bars: one group per split, one bar per method, 95% Wilson intervals as error bars."""
    from buckets.figure_style import PALETTE, interval_errors, mark_zero, new_figure, paper_style, save_figure

    splits = list(dict.fromkeys(split for row in rows for split in row["results"]))
    width = 0.8 / max(1, len(rows))
    with paper_style():
        figure = new_figure(2.6)
        axes = figure.subplots()
        for index, row in enumerate(rows):
            results = [row["results"].get(split) for split in splits]
            xs = [i + (index - (len(rows) - 1) / 2) * width for i, r in enumerate(results) if r]
            values = [r["accuracy"] for r in results if r]
            errors = interval_errors(values, [r["ci_low"] for r in results if r], [r["ci_high"] for r in results if r])
            # One colour per method on every task's figure; further seeds of a method are hatched.
            color = PALETTE[ATTENTIONS.index(row["attention"]) % len(PALETTE)]
            label = row["attention"] + ("" if row["seed"] == 0 else f" (seed {row['seed']})")
            axes.bar(xs, values, width, yerr=errors, color=color, label=label, ecolor="#222222",
                     hatch="///" if row["seed"] else None, edgecolor="white" if row["seed"] else None)
            for x, value in zip(xs, values):
                if value == 0:
                    mark_zero(axes, x, width, color)
        axes.set_xticks(range(len(splits)), [s + "\n" + _describe(task, s, sep="\n") for s in splits])
        axes.set_ylim(0, 1.05)
        axes.set_ylabel("exact-match accuracy")
        axes.set_title(f"{task}: accuracy with 95% Wilson intervals")
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return save_figure(figure, png)


def _describe(task: str, split: str, sep: str = ", ") -> str:
    params = TASKS[task].splits.get(split, {}) if task in TASKS else {}
    return sep.join(f"{k}={v}" for k, v in params.items())


def build_report(table: Path, *, plots: bool = True) -> Path:
    """Write report.md (and <task>.png/.svg/.pdf) beside the results table; returns the report's path."""
    root = table.parent
    rows = read_rows(table)
    lines = ["# Lab: position encodings and differential attention on synthetic tasks", "",
             ("Small Llama-architecture models trained from scratch (`toolbench-eval lab train`) and scored by "
             "exact match on every answer token (`toolbench-eval lab eval`). Intervals are 95% Wilson intervals "
             "over the n evaluation examples of each split; all methods of a task see the same examples. "
             "'id' is the training distribution; the other splits are out of distribution."), "",
             f"Generated by `toolbench-eval lab report` from `{table.name}`; do not edit by hand.", ""]
    findings = root / "findings.md"  # hand-written reading of the numbers, kept across regenerations
    if findings.exists():
        lines += [findings.read_text().strip(), ""]
    for task in dict.fromkeys(row["task"] for row in rows):
        task_rows = [row for row in rows if row["task"] == task]
        lines += [f"## {task}", "", f"Splits: {_splits_text(task)}.", "", *task_table(task_rows), ""]
        if plots:
            png = plot_task(task, task_rows, root / f"{task}.png")
            lines += [f"![{task}]({png.relative_to(root)})", ""]
    lines += ["## Regenerate", "", "```"]
    for row in rows:
        lines += [row["train"].get("command") or "# (train command not recorded)", row["eval_command"]]
    lines += [REPORT_COMMAND, "```", ""]
    report = root / "report.md"
    report.write_text("\n".join(lines))
    return report


def _splits_text(task: str) -> str:
    if task not in TASKS:
        return "unknown task"
    return "; ".join(f"`{split}` ({_describe(task, split)})" for split in TASKS[task].splits) + \
        f" — {TASKS[task].describe}"
