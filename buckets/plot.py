"""A picture of a bucket set: each base's waveform with its peaks and troughs, and which troughs are covered.

A trough of one bucket is *covered* when another bucket has a peak within `tolerance` effective positions
of it (`buckets.coverage`): that is what the base search optimises, and what a reader wants to check at a
glance. matplotlib is imported inside the function, so importing `buckets` never pulls it in.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from buckets.coverage import trough_coverage
from buckets.extrema import DEFAULT_WINDOW, ExtremaRule, base_extrema, check_window, window_frequencies
from buckets.figure_style import PALETTE, new_figure, paper_style, save_figure
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
    rope: Any = None,
) -> Path:
    """Write PNG, SVG and PDF: waveforms with peaks (^) and troughs (v), and a strip of trough coverage per
    bucket, on a 6.5 in page (`buckets.figure_style`).

    Positions on the x axis are effective RoPE positions; when `position_scale` is not 1 a second axis on
    top gives token distances. `head_dim` and `position_scale` default to 128 and 1, or to those of `rope`
    (the model's RoPE, whose scaled frequencies then draw the curves). Returns the PNG's path; the SVG and
    PDF lie beside it.
    """
    if not bases:
        raise ValueError("plot_waveforms needs at least one base")
    # Drawn in increasing order (legend, colours, strip rows), whatever the search's pick order: coverage is a
    # property of the set, and a reader scans bases by size. The search tables keep the pick order.
    bases = sorted(float(b) for b in bases)
    rule = rule or ExtremaRule()
    head_dim, position_scale = waveform_axis(head_dim, position_scale, rope)
    low, high = check_window(window)
    positions = np.arange(low, high + 1)
    # The curves the extrema were found on (same frequencies, same evaluation), so markers sit on the lines.
    curves = [window_curve(low, high, window_frequencies(b, head_dim, (low, high), rope)) for b in bases]
    coverage = trough_coverage(bases, head_dim, (low, high), tolerance, rule, rope=rope)
    found = [base_extrema(b, head_dim, (low, high), rule, rope) for b in bases]
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(bases))]

    with paper_style():
        figure = new_figure(4.4 + 0.22 * len(bases))
        _draw(figure, bases, positions, curves, found, coverage, colors, low, high, tolerance, position_scale)
        total = sum(len(c.troughs) for c in coverage)
        covered = sum(c.covered for c in coverage)
        default = (
            f"Attention waveforms: head_dim {head_dim}, position scale {_label(position_scale)}, "
            f"window {low}-{high}, {len(bases)} bases, detector {rule.detector}; "
            f"troughs covered {covered}/{total} (tolerance {_label(tolerance)})"
        )
        # Wrapped to the page: a one-line title this long would run off both edges.
        figure.suptitle(textwrap.fill(title or default, 90))
        return save_figure(figure, out_png)


def _draw(figure, bases, positions, curves, found, coverage, colors, low, high, tolerance, position_scale):
    """The curves with their extrema above, the coverage strip below, one legend under both."""
    from matplotlib.lines import Line2D

    curve_axes, strip_axes = figure.subplots(2, 1, sharex=True, height_ratios=[3, 0.5 + 0.3 * len(bases)])
    for base, curve, extrema, color in zip(bases, curves, found, colors):
        curve_axes.plot(positions, curve, color=color, linewidth=0.6, alpha=0.6, label=f"base {_label(base)}")
        peaks, troughs = np.asarray(extrema.peaks, dtype=int), np.asarray(extrema.troughs, dtype=int)
        curve_axes.scatter(peaks, curve[peaks - low], marker="^", s=16, color=color, edgecolor="black",
                           linewidth=0.4, zorder=3)
        curve_axes.scatter(troughs, curve[troughs - low], marker="v", s=16, color=color, edgecolor="black",
                           linewidth=0.4, zorder=3)
    curve_axes.axhline(0, color="grey", linewidth=0.6, linestyle=":")
    curve_axes.set_ylabel("attention upper bound\n(pre-softmax score)")
    curve_axes.grid(alpha=0.25)
    base_handles, _labels = curve_axes.get_legend_handles_labels()

    row_of = {base: len(bases) - 1 - row for row, base in enumerate(bases)}
    for cov, extrema, color in zip(coverage, found, colors):
        y = row_of[cov.base]
        for trough, by, peak in zip(cov.troughs, cov.covered_by, cov.covering_peaks):
            if by is not None:  # connect the covered trough to the peak that covers it
                strip_axes.plot([trough, peak], [y, row_of[by]], color="black", linewidth=0.6, alpha=0.5)
        strip_axes.axhline(y, color=color, linewidth=0.6, alpha=0.4)
        strip_axes.scatter(extrema.peaks, [y] * len(extrema.peaks), marker="|", s=30, color=color, linewidth=0.8)
        hit = [t for t, by in zip(cov.troughs, cov.covered_by) if by is not None]
        miss = [t for t, by in zip(cov.troughs, cov.covered_by) if by is None]
        strip_axes.scatter(hit, [y] * len(hit), marker="o", s=18, color=color, edgecolor="black", linewidth=0.5,
                           zorder=3)
        strip_axes.scatter(miss, [y] * len(miss), marker="o", s=18, facecolor="white", edgecolor=color,
                           linewidth=1.0, zorder=3)
    strip_axes.set_yticks(
        range(len(bases)),
        [f"{_label(b)} ({c.covered}/{len(c.troughs)})" for b, c in zip(reversed(bases), reversed(coverage))],
    )
    strip_axes.set_ylim(-0.7, len(bases) - 0.3)
    strip_axes.set_xlim(low, high)
    strip_axes.grid(axis="x", alpha=0.25)
    strip_axes.set_xlabel("relative distance (effective RoPE position = token distance / position scale)")
    strip_axes.set_ylabel("bucket (troughs\ncovered)")
    marker_handles = [
        Line2D([], [], marker="^", linestyle="", color="grey", markeredgecolor="black", label="peak"),
        Line2D([], [], marker="v", linestyle="", color="grey", markeredgecolor="black", label="trough"),
        Line2D([], [], marker="o", linestyle="", color="grey", markeredgecolor="black",
               label=f"trough covered (a peak within {_label(tolerance)})"),
        Line2D([], [], marker="o", linestyle="", markerfacecolor="white", markeredgecolor="grey",
               label="trough not covered"),
        Line2D([], [], marker="|", linestyle="", color="grey", markersize=8, label="peak (strip)"),
        Line2D([], [], color="black", alpha=0.5, label="trough to covering peak"),
    ]
    # One legend (two would be stacked on each other by the layout): the bases, then what the marks mean.
    figure.legend(handles=[*base_handles, *marker_handles], loc="outside lower center", ncol=4,
                  handlelength=1.4, columnspacing=1.0)
    if position_scale != 1:
        tokens = curve_axes.secondary_xaxis(
            "top", functions=(lambda m: m * position_scale, lambda t: t / position_scale)
        )
        tokens.set_xlabel(f"token distance (position interpolation ratio {_label(position_scale)})")


def _label(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:g}"
