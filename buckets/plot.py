"""A picture of a bucket set: each base's waveform with its peaks and troughs, and which troughs are covered.

A trough of one bucket is *covered* when another bucket has a peak within `tolerance` effective positions
of it (`buckets.coverage`): that is what the base search optimises, and what a reader wants to check at a
glance. matplotlib is imported inside the function, so importing `buckets` never pulls it in.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from buckets.coverage import trough_coverage
from buckets.extrema import DEFAULT_WINDOW, ExtremaRule, base_extrema, check_window, window_frequencies
from buckets.waveform import waveform_axis, window_curve


def plot_waveforms(
    bases: Sequence[float],
    head_dim: int | None = None,
    position_scale: float | None = None,
    window: tuple[int, int] = DEFAULT_WINDOW,
    out_png: str | Path = "waveforms.png",
    *,
    tolerance: float = 3,
    rule: ExtremaRule | None = None,
    title: str | None = None,
    dpi: int = 130,
    rope: Any = None,
) -> Path:
    """Write a PNG: waveforms with peaks (^) and troughs (v), and a strip of trough coverage per bucket.

    Positions on the x axis are effective RoPE positions; when `position_scale` is not 1 a second axis on
    top gives token distances. `head_dim` and `position_scale` default to 128 and 1, or to those of `rope`
    (the model's RoPE, whose scaled frequencies then draw the curves). Returns the path written.
    """
    # A bare Figure (no pyplot) renders through Agg without touching global backend state.
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    if not bases:
        raise ValueError("plot_waveforms needs at least one base")
    rule = rule or ExtremaRule()
    head_dim, position_scale = waveform_axis(head_dim, position_scale, rope)
    low, high = check_window(window)
    positions = np.arange(low, high + 1)
    # The curves the extrema were found on (same frequencies, same evaluation), so markers sit on the lines.
    curves = [window_curve(low, high, window_frequencies(b, head_dim, (low, high), rope)) for b in bases]
    coverage = trough_coverage(bases, head_dim, (low, high), tolerance, rule, rope=rope)
    found = [base_extrema(b, head_dim, (low, high), rule, rope) for b in bases]
    colors = [matplotlib.colormaps["tab10"](i % 10) for i in range(len(bases))]

    figure = Figure(figsize=(13, 7.5 + 0.25 * len(bases)), layout="constrained")
    curve_axes, strip_axes = figure.subplots(2, 1, sharex=True, height_ratios=[3, 0.6 + 0.28 * len(bases)])
    for base, curve, extrema, color in zip(bases, curves, found, colors):
        curve_axes.plot(
            positions, curve, color=color, linewidth=0.7, alpha=0.55, label=f"base {_label(base)}"
        )
        peaks, troughs = np.asarray(extrema.peaks, dtype=int), np.asarray(extrema.troughs, dtype=int)
        curve_axes.scatter(
            peaks, curve[peaks - low], marker="^", s=60, color=color, edgecolor="black", zorder=3
        )
        curve_axes.scatter(
            troughs, curve[troughs - low], marker="v", s=60, color=color, edgecolor="black", zorder=3
        )
    curve_axes.axhline(0, color="grey", linewidth=0.6, linestyle=":")
    curve_axes.set_ylabel("attention upper bound (pre-softmax score)")
    curve_axes.grid(alpha=0.25)
    handles, _labels = curve_axes.get_legend_handles_labels()
    handles += [
        Line2D([], [], marker="^", linestyle="", color="grey", markeredgecolor="black", label="peak"),
        Line2D([], [], marker="v", linestyle="", color="grey", markeredgecolor="black", label="trough"),
    ]
    curve_axes.legend(handles=handles, loc="upper right", ncol=2, fontsize=8, framealpha=0.9)

    total = sum(len(c.troughs) for c in coverage)
    covered = sum(c.covered for c in coverage)
    row_of = {base: len(bases) - 1 - row for row, base in enumerate(bases)}
    for row, (cov, extrema, color) in enumerate(zip(coverage, found, colors)):
        y = row_of[cov.base]
        for trough, by, peak in zip(cov.troughs, cov.covered_by, cov.covering_peaks):
            if by is not None:  # connect the covered trough to the peak that covers it
                strip_axes.plot([trough, peak], [y, row_of[by]], color="black", linewidth=0.8, alpha=0.5)
        strip_axes.axhline(y, color=color, linewidth=0.8, alpha=0.4)
        strip_axes.scatter(extrema.peaks, [y] * len(extrema.peaks), marker="|", s=80, color=color)
        hit = [t for t, by in zip(cov.troughs, cov.covered_by) if by is not None]
        miss = [t for t, by in zip(cov.troughs, cov.covered_by) if by is None]
        strip_axes.scatter(hit, [y] * len(hit), marker="o", s=55, color=color, edgecolor="black", zorder=3)
        strip_axes.scatter(
            miss,
            [y] * len(miss),
            marker="o",
            s=55,
            facecolor="white",
            edgecolor=color,
            linewidth=1.5,
            zorder=3,
        )
    strip_axes.set_yticks(
        range(len(bases)),
        [f"{_label(b)} ({c.covered}/{len(c.troughs)})" for b, c in zip(reversed(bases), reversed(coverage))],
        fontsize=8,
    )
    strip_axes.set_ylim(-0.7, len(bases) - 0.3)
    strip_axes.set_xlim(low, high)
    strip_axes.grid(axis="x", alpha=0.25)
    strip_axes.set_xlabel("relative distance (effective RoPE position = token distance / position scale)")
    strip_axes.set_ylabel("bucket (troughs covered)", fontsize=9)
    figure.legend(
        handles=[
            Line2D(
                [],
                [],
                marker="o",
                linestyle="",
                color="grey",
                markeredgecolor="black",
                label=f"trough covered by another bucket's peak (within {_label(tolerance)})",
            ),
            Line2D(
                [],
                [],
                marker="o",
                linestyle="",
                markerfacecolor="white",
                markeredgecolor="grey",
                label="trough not covered",
            ),
            Line2D([], [], marker="|", linestyle="", color="grey", markersize=10, label="peak"),
            Line2D([], [], color="black", alpha=0.5, label="trough - covering peak"),
        ],
        loc="outside lower center",
        ncol=4,
        fontsize=8,
        frameon=False,
    )
    if position_scale != 1:
        tokens = curve_axes.secondary_xaxis(
            "top", functions=(lambda m: m * position_scale, lambda t: t / position_scale)
        )
        tokens.set_xlabel(f"token distance (position interpolation ratio {_label(position_scale)})")
    figure.suptitle(
        title
        or (
            f"Attention waveforms: head_dim {head_dim}, position scale {_label(position_scale)}, "
            f"window {low}-{high}, {len(bases)} bases, detector {rule.detector}; "
            f"troughs covered {covered}/{total} (tolerance {_label(tolerance)})"
        ),
        fontsize=11,
    )
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_png, dpi=dpi)
    return out_png


def _label(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:g}"
