"""Probe outputs: ``results.csv`` (one row per model/K/position/config), ``accuracy.png`` and ``summary.md``.

The plot has one panel per K: accuracy against the target's index, one line per single base or bucket
set. The model's own-base waveform (the RoPE attention upper bound, `buckets.waveform`) is drawn on a
secondary axis at each index's mean target distance, with its dominant troughs as dotted lines: RoPE
sees the distance between the answer's query and the target pair, and that is what the troughs are of.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toolbench_eval.probe.runner import ProbeConfig
from toolbench_eval.probe.scoring import wilson_interval

CSV_COLUMNS = (
    "model", "num_pairs", "position", "config", "config_key", "kind", "bases", "fusion", "n", "correct",
    "accuracy", "ci_low", "ci_high", "mean_prompt_tokens", "mean_target_distance",
)


def aggregate(records: Sequence[dict[str, Any]], configs: Sequence[ProbeConfig], model: str) -> list[dict[str, Any]]:
    """One row per (K, position, config) with accuracy, a 95% Wilson interval and mean token counts.

    Rows follow the order of `configs` within each (K, position); records of configs not listed
    (left in the folder by an earlier run) are ignored.
    """
    groups: dict[tuple[str, int, int], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[(record["config"], int(record["num_pairs"]), int(record["position"]))].append(record)
    cells = sorted({(k, p) for _, k, p in groups})
    rows = []
    for num_pairs, position in cells:
        for config in configs:
            found = groups.get((config.key, num_pairs, position))
            if not found:
                continue
            correct = sum(bool(r["correct"]) for r in found)
            low, high = wilson_interval(correct, len(found))
            rows.append({
                "model": model,
                "num_pairs": num_pairs,
                "position": position,
                "config": config.label,
                "config_key": config.key,
                "kind": config.kind,
                "bases": " ".join(f"{b:g}" for b in config.bases),
                "fusion": config.fusion if config.kind == "buckets" else "",
                "n": len(found),
                "correct": correct,
                "accuracy": round(correct / len(found), 4),
                "ci_low": round(low, 4),
                "ci_high": round(high, 4),
                "mean_prompt_tokens": round(float(np.mean([r["prompt_tokens"] for r in found])), 1),
                "mean_target_distance": round(float(np.mean([r["target_distance"] for r in found])), 1),
            })
    return rows


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def own_base_troughs(
    rows: Sequence[dict[str, Any]], own_base: float, head_dim: int, position_scale: float = 1.0
) -> dict[int, list[int]]:
    """Dominant troughs (token distances, official detector) of the own base inside each K's distance span."""
    from buckets.extrema import find_troughs

    troughs: dict[int, list[int]] = {}
    for num_pairs in sorted({r["num_pairs"] for r in rows}):
        distances = [r["mean_target_distance"] for r in rows if r["num_pairs"] == num_pairs]
        low = max(1, math.floor(min(distances) / position_scale))
        high = max(low + 2, math.ceil(max(distances) / position_scale))
        found = find_troughs(own_base, head_dim=head_dim, window=(low, high), detector="official")
        troughs[num_pairs] = [round(t * position_scale) for t in found]
    return troughs


def _interval(row: dict[str, Any]) -> tuple[float, float]:
    """The row's 95% Wilson interval (recomputed from correct/n when a row read back lacks it)."""
    if row.get("ci_low") is not None and row.get("ci_high") is not None:
        return float(row["ci_low"]), float(row["ci_high"])
    return wilson_interval(int(row["correct"]), int(row["n"]))


def plot_accuracy(
    rows: Sequence[dict[str, Any]],
    path: Path,
    *,
    own_base: float,
    head_dim: int,
    position_scale: float = 1.0,
    troughs: dict[int, list[int]] | None = None,
    title: str | None = None,
    panel: str = "K = {} pairs",
    xlabel: str = "target pair index (0 = first in the JSON object)",
    unit: str = "prompts",
) -> Path:
    """Accuracy vs target index, one panel per K (stacked, so each gets the page's width), every point
    with its 95% Wilson interval and n, the own-base waveform and its troughs behind. Writes PNG, SVG and
    PDF (`buckets.figure_style`); returns the PNG path."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    from buckets.figure_style import (
        PALETTE,
        interval_errors,
        new_figure,
        paper_style,
        save_figure,
    )
    from buckets.waveform import attention_upper_bound

    ks = sorted({r["num_pairs"] for r in rows})
    troughs = troughs if troughs is not None else own_base_troughs(rows, own_base, head_dim, position_scale)
    configs = list(dict.fromkeys(r["config"] for r in rows))
    others = [c for c in configs if not c.endswith("(own)")]
    drawn_troughs: set[int] = set()
    with paper_style():
        fig = new_figure(0.8 + 2.45 * len(ks))
        axes = fig.subplots(len(ks), 1, squeeze=False)[:, 0]
        for ax, num_pairs in zip(axes, ks):
            cell_rows = [r for r in rows if r["num_pairs"] == num_pairs]
            positions = sorted({r["position"] for r in cell_rows})
            distance = {r["position"]: r["mean_target_distance"] for r in cell_rows}
            gap = min((b - a for a, b in itertools.pairwise(positions)), default=1)
            for index, config in enumerate(configs):
                line = sorted(((r["position"], r) for r in cell_rows if r["config"] == config), key=lambda pr: pr[0])
                if not line:
                    continue
                own = config.endswith("(own)")
                # Side by side around each index, so the intervals of configs with equal accuracy stay apart.
                shift = (index - (len(configs) - 1) / 2) * 0.09 * gap
                xs = [p + shift for p, _ in line]
                accuracy = [float(r["accuracy"]) for _, r in line]
                lows, highs = zip(*(_interval(r) for _, r in line))
                color = "black" if own else PALETTE[others.index(config) % len(PALETTE)]
                ax.errorbar(xs, accuracy, yerr=interval_errors(accuracy, lows, highs), color=color,
                            marker="o" if own else "s^vDP*"[others.index(config) % 6], markersize=4,
                            linewidth=2.0 if own else 1.1, elinewidth=0.7, capsize=2, label=config, zorder=3)
            ax.set_ylim(-0.03, 1.03)
            ax.set_ylabel("accuracy (exact match)")
            sizes = sorted({int(r["n"]) for r in cell_rows})
            n_text = f"n = {sizes[0]}" if len(sizes) == 1 else f"n = {sizes[0]}–{sizes[-1]}"
            ax.set_title(f"{panel.format(num_pairs)} · {n_text} {unit} per point · whiskers: 95% Wilson interval",
                         loc="left")
            ax.grid(alpha=0.3)
            # Index <-> mean token distance from the answer, interpolated between measured positions.
            xs = np.array(positions, dtype=float)
            ds = np.array([distance[p] for p in positions], dtype=float)
            if len(xs) >= 2:
                grid = np.linspace(xs.min(), xs.max(), 400)
                wave = attention_upper_bound(np.interp(grid, xs, ds), own_base, head_dim, position_scale)
                twin = ax.twinx()
                twin.plot(grid, wave, color="grey", alpha=0.35, linewidth=0.8)
                twin.set_ylabel(f"RoPE bound, base {own_base:g}", color="grey")
                twin.tick_params(axis="y", colors="grey")
                twin.spines["right"].set_visible(True)
                order = np.argsort(ds)
                for trough in troughs.get(num_pairs, []):
                    if ds.min() <= trough <= ds.max():
                        # Named in the legend, not beside the line: text here collides with the top axis.
                        drawn_troughs.add(trough)
                        x = float(np.interp(trough, ds[order], xs[order]))
                        ax.axvline(x, color="tab:red", linestyle=":", linewidth=1, alpha=0.8, zorder=1)
                secondary = ax.secondary_xaxis(
                    "top",
                    functions=(lambda x, xs=xs, ds=ds: np.interp(x, xs, ds),
                               lambda d, xs=xs, ds=ds, o=order: np.interp(d, ds[o], xs[o])),
                )
                ticks = MaxNLocator(6).tick_values(ds.min(), ds.max())
                secondary.set_xticks([t for t in ticks if ds.min() <= t <= ds.max()])  # no extrapolated labels
                secondary.set_xlabel("mean token distance from the answer to the target", labelpad=10)
            ax.set_xlabel(xlabel)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_zorder(2)
            ax.patch.set_visible(False)
        handles, labels = axes[0].get_legend_handles_labels()
        handles += [Line2D([], [], color="grey", alpha=0.5, linewidth=0.8)]
        labels += ["own-base RoPE bound (right axis)"]
        if drawn_troughs:
            handles += [Line2D([], [], color="tab:red", linestyle=":", linewidth=1)]
            labels += ["its troughs, distance " + ", ".join(str(t) for t in sorted(drawn_troughs))]
        fig.legend(handles, labels, loc="outside lower center", ncol=3, handlelength=1.6,
                   columnspacing=1.2)
        if title:
            fig.suptitle(title)
        return save_figure(fig, path)


# ---- the Markdown summary -----------------------------------------------------------------------
def accuracy_table(rows: Sequence[dict[str, Any]], troughs: dict[int, list[int]] | None = None) -> str:
    """Markdown: one line per (K, position), one column per config, cells 'acc (correct/n)'."""
    configs = list(dict.fromkeys(r["config"] for r in rows))
    by_cell: dict[tuple[int, int], dict[str, dict]] = defaultdict(dict)
    for r in rows:
        by_cell[(r["num_pairs"], r["position"])][r["config"]] = r
    header = ["K", "index", "distance", "prompt tokens", *configs]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (num_pairs, position), cell in sorted(by_cell.items()):
        first = next(iter(cell.values()))
        distance = first["mean_target_distance"]
        mark = " ▼" if troughs and near_trough(distance, troughs.get(num_pairs, []), spacing(rows, num_pairs)) else ""
        values = [f"{cell[c]['accuracy']:.2f} ({cell[c]['correct']}/{cell[c]['n']})" if c in cell else "" for c in configs]
        lines.append(f"| {num_pairs} | {position} | {distance:.0f}{mark} | {first['mean_prompt_tokens']:.0f} | "
                     + " | ".join(values) + " |")
    for num_pairs in sorted({r["num_pairs"] for r in rows}):
        means = []
        for c in configs:
            cells = [r for r in rows if r["num_pairs"] == num_pairs and r["config"] == c]
            total, n = sum(r["correct"] for r in cells), sum(r["n"] for r in cells)
            means.append(f"**{total / n:.3f}** ({total}/{n})" if n else "")
        lines.append(f"| {num_pairs} | all | | | " + " | ".join(means) + " |")
    return "\n".join(lines) + "\n"


def spacing(rows: Sequence[dict[str, Any]], num_pairs: int) -> float:
    """Mean tokens between adjacent target indices for one K (distance falls as the index grows)."""
    points = sorted({(r["position"], r["mean_target_distance"]) for r in rows if r["num_pairs"] == num_pairs})
    if len(points) < 2:
        return 0.0
    (p0, d0), (p1, d1) = points[0], points[-1]
    return abs(d0 - d1) / max(1, p1 - p0)


def near_trough(distance: float, troughs: Sequence[int], pair_tokens: float) -> bool:
    """Whether a target distance lies within half a pair's tokens of a trough."""
    return any(abs(distance - t) <= pair_tokens / 2 for t in troughs)


def paired_comparison(records: Sequence[dict[str, Any]], key_a: str, key_b: str) -> tuple[int, int, int, float]:
    """(samples only A got right, only B got right, samples compared, two-sided sign-test p-value)."""
    answers: dict[str, dict[tuple, bool]] = {key_a: {}, key_b: {}}
    for r in records:
        if r["config"] in answers:
            answers[r["config"]][(r["num_pairs"], r["position"], r["sample"])] = bool(r["correct"])
    shared = answers[key_a].keys() & answers[key_b].keys()
    only_a = sum(answers[key_a][s] and not answers[key_b][s] for s in shared)
    only_b = sum(answers[key_b][s] and not answers[key_a][s] for s in shared)
    return only_a, only_b, len(shared), sign_test(only_a, only_b)


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided binomial sign test p-value (ties dropped).

    >>> round(sign_test(9, 1), 4)
    0.0215
    """
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def automatic_reading(
    rows: Sequence[dict[str, Any]],
    records: Sequence[dict[str, Any]],
    configs: Sequence[ProbeConfig],
    troughs: dict[int, list[int]],
) -> list[str]:
    """Plain statements computed from the numbers (no judgement beyond what they show)."""
    own = next(c for c in configs if c.own)
    lines = []
    for num_pairs in sorted({r["num_pairs"] for r in rows}):
        own_rows = [r for r in rows if r["num_pairs"] == num_pairs and r["config_key"] == own.key]
        if not own_rows:
            continue
        accs = [r["accuracy"] for r in own_rows]
        worst = min(own_rows, key=lambda r: r["accuracy"])
        lines.append(f"K={num_pairs}: own base {own.label.split()[1]} ranges {min(accs):.2f}-{max(accs):.2f} over "
                     f"target indices (lowest at index {worst['position']}, distance {worst['mean_target_distance']:.0f}).")
        pair_tokens = spacing(rows, num_pairs)
        near = [r for r in own_rows if near_trough(r["mean_target_distance"], troughs.get(num_pairs, []), pair_tokens)]
        far = [r for r in own_rows if r not in near]
        if near and far:
            near_acc, far_acc = _pooled(near), _pooled(far)
            verdict = "lower" if near_acc < far_acc else "not lower"
            lines.append(f"K={num_pairs}: at the {len(near)} indices within half a pair ({pair_tokens / 2:.0f} tokens) "
                         f"of an own-base trough {troughs.get(num_pairs)}, own-base accuracy is {near_acc:.3f} vs "
                         f"{far_acc:.3f} at the other {len(far)} indices ({verdict}).")
            # The first and last index carry primacy/recency effects that have nothing to do with RoPE.
            ends = {min(r["position"] for r in own_rows), max(r["position"] for r in own_rows)}
            inner_near = [r for r in near if r["position"] not in ends]
            inner_far = [r for r in far if r["position"] not in ends]
            if inner_near and inner_far:
                a, b = _pooled(inner_near), _pooled(inner_far)
                lines.append(f"K={num_pairs}: without the first and last index (primacy/recency): {a:.3f} near a "
                             f"trough ({len(inner_near)} indices) vs {b:.3f} elsewhere ({len(inner_far)}) "
                             f"({'lower' if a < b else 'not lower'}).")
        else:
            lines.append(f"K={num_pairs}: no measured index splits cleanly into near/far from the own-base troughs "
                         f"{troughs.get(num_pairs)}; the trough test is not informative here.")
    own_total = _overall(rows, own.key)
    for config in configs:
        if config.key == own.key:
            continue
        total = _overall(rows, config.key)
        only_c, only_own, n, p = paired_comparison(records, config.key, own.key)
        if n == 0 or total is None or own_total is None:
            continue
        lines.append(f"{config.label}: overall {total:.3f} vs own base {own_total:.3f} ({total - own_total:+.3f}); "
                     f"on the same {n} prompts it alone is right {only_c} times, the own base alone {only_own} "
                     f"times (sign test p = {p:.3g}).")
    return lines


def _pooled(rows: Sequence[dict[str, Any]]) -> float:
    return sum(r["correct"] for r in rows) / sum(r["n"] for r in rows)


def _overall(rows: Sequence[dict[str, Any]], key: str) -> float | None:
    chosen = [r for r in rows if r["config_key"] == key]
    n = sum(r["n"] for r in chosen)
    return sum(r["correct"] for r in chosen) / n if n else None


def write_summary(
    path: Path,
    *,
    rows: Sequence[dict[str, Any]],
    records: Sequence[dict[str, Any]],
    configs: Sequence[ProbeConfig],
    troughs: dict[int, list[int]],
    settings: dict[str, Any],
    run_info: dict[str, Any],
    notes: str | None = None,
    title: str = "KV-retrieval probe",
    sections: str | None = None,
) -> Path:
    """The Markdown summary: settings, configurations, the table, timing, versions and the reading
    (`sections`: more Markdown, placed after the reading)."""
    lines = [f"# {title}: {settings.get('model')}", ""]
    lines += ["## Settings", ""]
    lines += [f"- `{key}`: {value}" for key, value in settings.items()]
    lines += ["", "## Configurations", ""]
    for config in configs:
        detail = f"N={len(config.bases)}, fusion {config.fusion}" if config.kind == "buckets" else "N=1"
        lines.append(f"- **{config.label}**: bases {', '.join(f'{b:g}' for b in config.bases)} ({detail})")
    if run_info.get("search"):
        lines.append(f"- base search (auto:N): {run_info['search']}")
    lines += ["", "## Accuracy", "",
              ("Accuracy (correct/n) per K and target index; `distance` is the mean token distance from the last "
              "prompt token to the target pair; ▼ marks indices within half a pair of a dominant trough of the "
              f"own base's waveform (troughs: {troughs})."), "", accuracy_table(rows, troughs)]
    lines += ["## Automatic reading", ""]
    lines += [f"- {line}" for line in automatic_reading(rows, records, configs, troughs)]
    if sections:
        lines += ["", sections.strip()]
    if notes:
        lines += ["", "## Notes", "", notes.strip()]
    lines += ["", "## Run", ""]
    lines += [f"- `{key}`: {value}" for key, value in run_info.items() if key != "search"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
