"""Combine the per-length probe folders into one table (config x length, pooled over target positions) and
one figure. Run from the repository root: python results/probe/smollm2-extension/combine.py"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

from toolbench_eval.probe.report import paired_comparison
from toolbench_eval.probe.scoring import wilson_interval

HERE = Path(__file__).parent
LENGTHS = [("native", "native (gap 0)"), ("gap-3k", "gap 3,000"), ("gap-2x", "gap 15,700 (2x)")]
SCAN = [("g0", 0), ("g1000", 1000), ("g3000", 3000), ("g7500", 7500)]


def pooled(folder: Path) -> tuple[dict[str, tuple[int, int]], dict[str, str], list[dict]]:
    """{config label: (correct, n)} over all positions, label -> key, and the records."""
    rows = list(csv.DictReader((folder / "results.csv").open()))
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    keys = {}
    for r in rows:
        totals[r["config"]][0] += int(r["correct"])
        totals[r["config"]][1] += int(r["n"])
        keys[r["config"]] = r["config_key"]
    records = [json.loads(line) for line in (folder / "records.jsonl").read_text().splitlines() if line.strip()]
    return {k: (c, n) for k, (c, n) in totals.items()}, keys, records


def cell(correct: int, n: int) -> str:
    low, high = wilson_interval(correct, n)
    return f"{correct / n:.2f} [{low:.2f}, {high:.2f}] ({correct}/{n})"


def generic(label: str) -> str:
    """'buckets auto:3 {100k, 140k, 165k} · yarn:2' -> 'buckets auto:3 · yarn:2' (sets differ per length)."""
    if label.startswith("buckets"):
        head, _, rest = label.partition("{")
        tail = rest.partition("}")[2]
        return (head.strip() + tail).strip()
    return label


def main() -> None:
    data = {name: pooled(HERE / name) for name, _ in LENGTHS if (HERE / name / "results.csv").is_file()}
    order: list[str] = []
    for name in data:
        for label in data[name][0]:
            if generic(label) not in order:
                order.append(generic(label))
    lines = ["| config | " + " | ".join(title for name, title in LENGTHS if name in data) + " |",
             "|---|" + "---|" * len(data)]
    for g in order:
        values = []
        for name in data:
            found = [v for label, v in data[name][0].items() if generic(label) == g]
            values.append(cell(*found[0]) if found else "–")
        lines.append(f"| {g} | " + " | ".join(values) + " |")
    print("\n".join(lines))
    print()
    # Paired: each bucket set vs the single own base with the same scaling; each scaling vs none.
    for name, title in LENGTHS:
        if name not in data:
            continue
        totals, keys, records = data[name]
        for label, key in keys.items():
            g = generic(label)
            if g.startswith("buckets"):
                scaling = g.partition(" · ")[2]
                own = next(k for lab, k in keys.items() if not lab.startswith("buckets")
                           and lab.partition(" · ")[2] == scaling)
                a, b, n, p = paired_comparison(records, key, own)
                print(f"- {title}: {g} vs own base{(' · ' + scaling) if scaling else ''}: "
                      f"{a} wins / {b} losses on {n} prompts (sign test p = {p:.3g})")
            elif " · " in g:
                own = next(k for lab, k in keys.items() if lab == "base 100k (own)")
                a, b, n, p = paired_comparison(records, key, own)
                print(f"- {title}: {g} vs base 100k (own): {a} wins / {b} losses on {n} prompts (p = {p:.3g})")
    print()
    scan = []
    for folder, gap in SCAN:
        path = HERE / "gap-scan" / folder
        if not (path / "results.csv").is_file():
            continue
        totals, _, _ = pooled(path)
        correct, n = totals["base 100k (own)"]
        scan.append((gap, correct, n))
        print(f"| {gap} | {cell(correct, n)} |")
    print()
    print(cells_table(data))
    figure(data, order, scan)


def cells_table(data) -> str:
    """One line per (length, target index): accuracy (correct/n) of every config."""
    labels: list[str] = []
    for name in data:
        for label in data[name][0]:
            if generic(label) not in labels:
                labels.append(generic(label))
    lines = ["| length | index | distance | " + " | ".join(labels) + " |", "|---|---|---|" + "---|" * len(labels)]
    for name, title in LENGTHS:
        if name not in data:
            continue
        rows = list(csv.DictReader((HERE / name / "results.csv").open()))
        for position in sorted({int(r["position"]) for r in rows}):
            here = {generic(r["config"]): r for r in rows if int(r["position"]) == position}
            distance = float(next(iter(here.values()))["mean_target_distance"])
            values = [f"{float(here[g]['accuracy']):.2f} ({here[g]['correct']}/{here[g]['n']})" if g in here else "–"
                      for g in labels]
            lines.append(f"| {title} | {position} | {distance:.0f} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def figure(data, order, scan) -> None:
    from buckets.figure_style import PALETTE, interval_errors, new_figure, paper_style, save_figure

    with paper_style():
        fig = new_figure(3.2)
        left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.2, 1]})
        names = list(data)
        for index, g in enumerate(order):
            xs, ys, lows, highs = [], [], [], []
            for x, name in enumerate(names):
                found = [v for label, v in data[name][0].items() if generic(label) == g]
                if found:
                    correct, n = found[0]
                    low, high = wilson_interval(correct, n)
                    xs.append(x + (index - (len(order) - 1) / 2) * 0.07)
                    ys.append(correct / n)
                    lows.append(low)
                    highs.append(high)
            bucket = g.startswith("buckets")
            left.errorbar(xs, ys, yerr=interval_errors(ys, lows, highs), color=PALETTE[index % len(PALETTE)], marker="s" if bucket else "o",
                          linestyle="--" if bucket else "-", markersize=4, capsize=2, linewidth=1, label=g)
        left.set_xticks(range(len(names)), [dict(LENGTHS)[n] for n in names])
        left.set_ylim(-0.03, 1.03)
        left.set_ylabel("KV accuracy (K = 10, pooled over 3 positions)")
        left.set_title("extension methods x buckets, by position gap", loc="left")
        left.legend(fontsize=7, ncol=2, loc="upper right")
        if scan:
            gaps, correct, n = zip(*scan)
            ys = [c / m for c, m in zip(correct, n)]
            lows, highs = zip(*(wilson_interval(c, m) for c, m in zip(correct, n)))
            right.errorbar(gaps, ys, yerr=interval_errors(ys, lows, highs), color="black", marker="o", capsize=2)
            right.axvline(8192 - 300, color="tab:red", linestyle=":", linewidth=1, label="gap at which the\nanswer reaches 8,192")
            right.legend(loc="upper right", fontsize=7)
            right.set_ylim(-0.03, 1.03)
            right.set_xlabel("position gap (tokens)")
            right.set_title("own base, no scaling", loc="left")
        save_figure(fig, HERE / "extension.png")


if __name__ == "__main__":
    main()
