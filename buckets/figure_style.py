"""One look for every figure the project writes: paper-sized, readable at 100%, and byte-reproducible.

Every plot (leaderboard bars, probe curves, waveforms) draws inside `paper_style()` on a figure from
`new_figure()` and writes through `save_figure()`, which puts a 200 dpi PNG, an SVG and a PDF side by side.
The sizes are those of a one-column paper page (6.5 in wide) with no text under 8 pt, so a figure pasted
into a paper needs no rescaling. Saved files carry no date or version stamp and the SVG ids come from a
fixed salt, so drawing the same data twice gives the same bytes (a figure committed to git only changes
when its numbers do).

This module lives in `buckets` because `buckets/plot.py` uses it and `buckets` imports nothing of the
pipeline; the pipeline's plots import it from here. matplotlib is imported inside the functions, so
importing `buckets` never pulls it in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PAPER_WIDTH_IN = 6.5  # a one-column page's text width
FONT_PT = 8.5  # body text; nothing is drawn smaller than SMALL_FONT_PT
SMALL_FONT_PT = 8.0
PNG_DPI = 200
FORMATS = ("png", "svg", "pdf")

# Okabe-Ito: distinguishable with the common colour-vision deficiencies and in greyscale print.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
NO_BUCKETS_COLOR = "#7F7F7F"
BUCKETS_COLOR = "#E69F00"
INTERVAL_COLOR = "#222222"

_RC: dict[str, Any] = {
    "font.size": FONT_PT,
    "axes.titlesize": FONT_PT + 0.5,
    "axes.labelsize": FONT_PT,
    "xtick.labelsize": SMALL_FONT_PT,
    "ytick.labelsize": SMALL_FONT_PT,
    "legend.fontsize": SMALL_FONT_PT,
    "legend.title_fontsize": FONT_PT,
    "figure.titlesize": FONT_PT + 1,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.2,
    "errorbar.capsize": 2.5,
    "legend.frameon": False,
    "savefig.dpi": PNG_DPI,
    # Reproducible bytes: SVG element ids are hashed from this salt instead of a random one.
    "svg.hashsalt": "toolbench-eval",
    "svg.fonttype": "path",  # text as outlines: the SVG looks the same without our fonts installed
    "pdf.fonttype": 42,  # TrueType, so the PDF's text stays selectable and editable
}

# No timestamps or library versions in the files: the same figure gives the same bytes on every run.
_METADATA: dict[str, dict[str, Any]] = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
    "pdf": {"CreationDate": None, "ModDate": None, "Creator": None, "Producer": None},
}


@contextmanager
def paper_style() -> Iterator[None]:
    """The house style for the figure drawn (and saved) inside the block; global settings are restored after."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        yield


def new_figure(height_in: float, width_in: float = PAPER_WIDTH_IN):
    """A bare Figure (no pyplot, so no global figure list and no GUI backend) with constrained layout,
    which keeps tick labels, titles and legends from overlapping each other."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), layout="constrained")


def figure_paths(png_path: str | Path) -> dict[str, Path]:
    """The three files of one figure: `x.png` -> {png: x.png, svg: x.svg, pdf: x.pdf}."""
    png = Path(png_path)
    return {fmt: png.with_suffix(f".{fmt}") for fmt in FORMATS}


def save_figure(figure, png_path: str | Path) -> Path:
    """Write the figure as PNG (200 dpi), SVG and PDF beside each other, reproducibly; returns the PNG path.

    Call it inside `paper_style()`: the SVG salt is read when the file is written."""
    paths = figure_paths(png_path)
    paths["png"].parent.mkdir(parents=True, exist_ok=True)
    for fmt, path in paths.items():
        figure.savefig(path, format=fmt, dpi=PNG_DPI, metadata=_METADATA[fmt])
    return paths["png"]


# ---- bases: parsed, sorted and written short ------------------------------------------------------
def parse_bases(text: str | Sequence[float]) -> tuple[float, ...]:
    """Bases as numbers from a table's `100000, 180000, 120000` (or `none`/`–`: no bases).

    >>> parse_bases("100000, 180000, 120000"), parse_bases("none")
    ((100000.0, 180000.0, 120000.0), ())
    """
    if not isinstance(text, str):
        return tuple(float(b) for b in text)
    return tuple(float(part) for part in re.findall(r"\d+(?:\.\d+)?(?:[eE][+-]?\d+)?", text))


def short_base(base: float) -> str:
    """100000 -> '100k', 17500 -> '17.5k', 2500000 -> '2.5M', 500 -> '500'."""
    base = float(base)
    if base >= 1_000_000:
        return f"{base / 1_000_000:g}M"
    if base >= 1000:
        return f"{base / 1000:g}k"
    return f"{base:g}"


def sorted_bases_text(bases: str | Sequence[float]) -> str:
    """The bases in increasing order, written short: `100k, 120k, 180k`; `none` without bases."""
    values = sorted(parse_bases(bases))
    return ", ".join(short_base(b) for b in values) if values else "none"


def bases_sort_key(bases: str | Sequence[float]) -> tuple[int, tuple[float, ...]]:
    """Order base sets as a reader scans them: no buckets first, then by size, then numerically
    (so `100000, 180000, 120000` sorts by 100k, 120k, 180k, not by the characters of its text)."""
    values = tuple(sorted(parse_bases(bases)))
    return len(values), values


# ---- drawing helpers ------------------------------------------------------------------------------
def mark_zero(axes, position: float, extent: float, color: str, *, horizontal: bool = False) -> None:
    """Make a bar of height 0 visible: a thick stub along the baseline, in the bar's colour and
    black-edged, so 0 reads as a measurement and not as a missing bar."""
    low, high = position - extent / 2, position + extent / 2
    if horizontal:
        axes.plot([0, 0], [low, high], color=color, linewidth=3, solid_capstyle="butt", zorder=4)
    else:
        axes.plot([low, high], [0, 0], color=color, linewidth=3, solid_capstyle="butt", zorder=4,
                  clip_on=False)


def interval_errors(values: Sequence[float], lows: Sequence[float], highs: Sequence[float]) -> list[list[float]]:
    """matplotlib's `yerr`/`xerr` ([below], [above]) from values and interval ends; never negative."""
    return [[max(0.0, v - lo) for v, lo in zip(values, lows)], [max(0.0, hi - v) for v, hi in zip(values, highs)]]
