"""Dominant peaks and troughs of the attention waveform inside a window of effective positions.

Two detectors, selected by name:

``"official"`` (default) reproduces the rules of the Attention Buckets code (`basic.py`,
`find_peak_points` / `find_trough_points`) with every constant a parameter:

* Peaks. Candidates are the strict local maxima (a sample greater than both neighbours; window edges
  never qualify). The first target is the highest local maximum. Scanning left to right, a candidate
  whose value is within `tolerance` of the target is *matched*: it is kept if it lies more than
  `min_separation` after the last kept peak, and the next target becomes the maximum of the `lookahead`
  samples that start at min(candidate + `skip`, next local maximum). The scan stops at `max_count` peaks.
  In effect it follows the record-high envelope from the global maximum rightwards.
* Troughs. The mirror image, scanning right to left from the global minimum over local minima: the next
  target is the minimum of *everything* left of min(candidate - `skip`, previous local minimum) (note
  `min`, i.e. the farther of the two, and no lookahead limit, exactly as upstream), kept troughs are more
  than `min_separation` (60) apart, and the scan stops when that boundary reaches the window start.

Brittleness observed (and how we differ from upstream, which raises instead):
  - when the next target is a sample that is not a local extremum (typically the window edge while the
    curve is still rising), no candidate ever matches again; upstream then runs off its candidate list
    with an IndexError, we return the extrema found so far (fewer than `max_count`);
  - likewise upstream crashes when the last local extremum is matched (it reads the one after it) or
    when the lookahead window is empty; we treat a missing neighbour as absent and stop on an empty window;
  - `tolerance` is absolute while the curve's scale grows with sqrt(head_dim) and the envelope's slope
    with the base, so the same constants pick different kinds of peaks for other models; a matched
    candidate that is too close to the last kept one still moves the target on (upstream behaviour);
  - results depend on the window edges: moving the window by one position can change the target chain.

``"prominence"`` is a simpler alternative: the `max_count` most *prominent* local maxima (minima of
the negated curve), greedily, most prominent first, each more than `min_separation` from those kept.
Prominence is the topographic one of `scipy.signal.peak_prominences` (height above the higher of the
two lowest points between the peak and the nearest higher sample on either side, or the window edge),
computed here with numpy so scipy is not needed. It never stops early while candidates remain and does
not depend on a scan order. Unlike "the highest extrema" (which all sit at the start of the window for
peaks and at its end for troughs, because the curve decays, so no base covers another), prominent
extrema spread over the window; for the ToolLLaMA setting the search then covers 3 pairs per step
instead of 1-2 with the official detector.

Positions are effective RoPE positions (token distance / position-interpolation ratio); see
`buckets.waveform`. A curve passed as an array is taken to be sampled at consecutive integer positions
`window[0], window[0]+1, ...` (or 0, 1, ... when no window is given); `skip` and `lookahead` count samples.
A base passed instead of a curve is turned into its curve over the window with the plain frequencies
b^(-2j/d), or with the model's own (scaled) frequencies when `rope` (a `buckets.rope.RopeSpec`) is given.

>>> curve = np.array([0, 3, 0, 1, 0, 2.9995, 0, 5, 0])
>>> find_peaks(curve, max_count=6, min_separation=1, tolerance=0.001, lookahead=3, skip=1).tolist()
[7]
>>> find_peaks(curve, max_count=2, min_separation=1, detector="prominence").tolist()
[1, 7]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from buckets.waveform import waveform_axis, waveform_frequencies, window_curve

DETECTORS = ("official", "prominence")
DEFAULT_WINDOW = (1000, 4090)


@dataclass(frozen=True)
class ExtremaRule:
    """The constants of a peak/trough detector; the defaults are the official code's."""

    detector: str = "official"
    max_count: int = 6
    peak_separation: int = 50
    trough_separation: int = 60
    tolerance: float = 1e-3
    lookahead: int = 500
    skip: int = 50

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(f"unknown detector {self.detector!r}; choose one of {', '.join(DETECTORS)}")
        if self.max_count < 1:
            raise ValueError(f"max_count must be >= 1, got {self.max_count}")
        if self.lookahead < 1 or self.skip < 1:
            raise ValueError("lookahead and skip must be >= 1")
        if self.tolerance < 0 or self.peak_separation < 0 or self.trough_separation < 0:
            raise ValueError("tolerance and separations must be >= 0")


@dataclass(frozen=True)
class Extrema:
    """One base's dominant peaks and troughs (ascending effective positions)."""

    peaks: tuple[int, ...]
    troughs: tuple[int, ...]


def local_maxima(values: np.ndarray) -> np.ndarray:
    """Indices of samples strictly greater than both neighbours (edges excluded).

    >>> local_maxima(np.array([1, 2, 1, 1, 3, 3, 1, 0, 4])).tolist()
    [1]
    """
    values = np.asarray(values)
    inner = values[1:-1]
    return np.flatnonzero((inner > values[:-2]) & (inner > values[2:])) + 1


def local_minima(values: np.ndarray) -> np.ndarray:
    """Indices of samples strictly smaller than both neighbours (edges excluded)."""
    return local_maxima(-np.asarray(values))


def find_peaks(
    source: float | Sequence[float] | np.ndarray,
    *,
    head_dim: int | None = None,
    window: tuple[int, int] | None = None,
    max_count: int = 6,
    min_separation: int = 50,
    tolerance: float = 1e-3,
    lookahead: int = 500,
    skip: int = 50,
    detector: str = "official",
    rope: Any = None,
) -> np.ndarray:
    """Dominant peak positions (ascending) of a waveform.

    `source` is a RoPE base (the curve is the attention upper bound at integer effective positions of
    `window`, default (1000, 4090); `head_dim` defaults to 128 or the `rope`'s) or a 1-D curve (see the
    module docstring for its positions).

    >>> find_peaks(10000, head_dim=128, window=(1000, 4090)).shape
    (6,)
    """
    rule = ExtremaRule(detector, max_count, min_separation, 0, tolerance, lookahead, skip)  # validates
    positions, values = _sampled_curve(source, head_dim, window, rope)
    return _peaks(values, positions, rule)


def find_troughs(
    source: float | Sequence[float] | np.ndarray,
    *,
    head_dim: int | None = None,
    window: tuple[int, int] | None = None,
    max_count: int = 6,
    min_separation: int = 60,
    tolerance: float = 1e-3,
    skip: int = 50,
    detector: str = "official",
    rope: Any = None,
) -> np.ndarray:
    """Dominant trough positions (ascending): the mirror of `find_peaks` (no lookahead limit upstream).

    >>> find_troughs(np.array([0, -1, 0, -3, 0, -2, 0]), max_count=6, min_separation=0, skip=1).tolist()
    [3]
    """
    rule = ExtremaRule(detector, max_count, 0, min_separation, tolerance, 1, skip)
    positions, values = _sampled_curve(source, head_dim, window, rope)
    return _troughs(values, positions, rule)


@lru_cache(maxsize=8192)
def base_extrema(
    base: float,
    head_dim: int | None = None,
    window: tuple[int, int] = DEFAULT_WINDOW,
    rule: ExtremaRule = ExtremaRule(),
    rope: Any = None,
) -> Extrema:
    """Peaks and troughs of one base under `rule`, cached because a base search reuses them many times.

    The curve is computed once for both. `rope` (a `buckets.rope.RopeSpec`, hashable) selects the model's
    own frequencies; `head_dim` defaults to 128 or the rope's.

    >>> base_extrema(10000).peaks == tuple(find_peaks(10000).tolist())
    True
    """
    positions, values = _sampled_curve(base, head_dim, window, rope)
    peaks = _peaks(values, positions, rule)
    troughs = _troughs(values, positions, rule)
    return Extrema(tuple(int(p) for p in peaks), tuple(int(t) for t in troughs))


def check_window(window: tuple[int, int]) -> tuple[int, int]:
    """Validate an inclusive (low, high) window of effective positions and return it as ints."""
    low, high = (int(window[0]), int(window[1]))
    if low != window[0] or high != window[1]:
        raise ValueError(f"window bounds must be integers, got {window}")
    if low < 0 or high - low < 2:
        raise ValueError(f"window must satisfy 0 <= low and high - low >= 2, got {window}")
    return low, high


def window_frequencies(base: float, head_dim: int | None, window: tuple[int, int], rope: Any = None) -> np.ndarray:
    """The frequencies that give `base`'s curve over `window` (effective positions).

    Dynamic NTK is the one RoPE whose frequencies depend on the sequence: past the model's original length it
    enlarges the base for the whole sequence. A window reaching past that length is taken at its longest
    distance (a sequence of high + 1 tokens); within it, the plain frequencies.
    """
    seq_len = None
    if rope is not None and rope.rope_type == "dynamic":
        longest = int(np.ceil(window[1] * rope.position_scale)) + 1
        seq_len = longest if longest > rope.max_position_embeddings else None
    return waveform_frequencies(base, head_dim, rope, seq_len=seq_len)


def _sampled_curve(
    source, head_dim: int | None, window: tuple[int, int] | None, rope: Any = None
) -> tuple[np.ndarray, np.ndarray]:
    if np.ndim(source) == 0:
        low, high = check_window(window if window is not None else DEFAULT_WINDOW)
        head_dim, _ = waveform_axis(head_dim, None, rope)
        theta = window_frequencies(float(source), head_dim, (low, high), rope)
        return np.arange(low, high + 1), window_curve(low, high, theta)
    values = np.asarray(source, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"a curve must be 1-D, got shape {values.shape}")
    start = 0
    if window is not None:
        start, high = check_window(window)
        if high - start + 1 != values.size:
            raise ValueError(
                f"window {window} covers {high - start + 1} positions but the curve has {values.size}"
            )
    return np.arange(start, start + values.size), values


def _peaks(values: np.ndarray, positions: np.ndarray, rule: ExtremaRule) -> np.ndarray:
    if rule.detector == "prominence":
        chosen = _most_prominent(values, local_maxima(values), positions, rule.max_count, rule.peak_separation)
    else:
        chosen = _official_peaks(values, positions, rule)
    return positions[np.sort(np.asarray(chosen, dtype=int))]


def _troughs(values: np.ndarray, positions: np.ndarray, rule: ExtremaRule) -> np.ndarray:
    if rule.detector == "prominence":
        chosen = _most_prominent(-values, local_minima(values), positions, rule.max_count, rule.trough_separation)
    else:
        chosen = _official_troughs(values, positions, rule)
    return positions[np.sort(np.asarray(chosen, dtype=int))]


def _official_peaks(values: np.ndarray, positions: np.ndarray, rule: ExtremaRule) -> list[int]:
    candidates = local_maxima(values)
    if candidates.size == 0:
        return []
    target = values[candidates].max()
    kept: list[int] = []
    for i, index in enumerate(candidates):
        if len(kept) == rule.max_count:
            break
        if abs(values[index] - target) > rule.tolerance:
            continue
        if not kept or positions[index] - positions[kept[-1]] > rule.peak_separation:
            kept.append(int(index))
        start = index + rule.skip
        if i + 1 < candidates.size:
            start = min(start, candidates[i + 1])
        ahead = values[start : start + rule.lookahead]
        if ahead.size == 0:
            break
        target = ahead.max()
    return kept


def _official_troughs(values: np.ndarray, positions: np.ndarray, rule: ExtremaRule) -> list[int]:
    candidates = local_minima(values)
    if candidates.size == 0:
        return []
    target = values[candidates].min()
    kept: list[int] = []
    for i in range(candidates.size - 1, -1, -1):
        if len(kept) == rule.max_count:
            break
        index = candidates[i]
        if abs(values[index] - target) > rule.tolerance:
            continue
        if not kept or positions[kept[-1]] - positions[index] > rule.trough_separation:
            kept.append(int(index))
        stop = index - rule.skip
        if i > 0:
            stop = min(stop, candidates[i - 1])
        if stop <= 0:
            break
        target = values[:stop].min()
    return kept


def prominences(values: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Topographic prominence of each peak index (as `scipy.signal.peak_prominences` with no `wlen`).

    >>> prominences(np.array([0, 10, 0, 3, 0, 0, 7, 6.8, 7.2, 0]), np.array([1, 3, 6, 8])).round(6).tolist()
    [10.0, 3.0, 0.2, 7.2]
    """
    values = np.asarray(values, dtype=np.float64)
    out = np.empty(len(peaks))
    for k, index in enumerate(peaks):
        height = values[index]
        left, right = values[:index], values[index + 1 :]
        higher_left, higher_right = np.flatnonzero(left > height), np.flatnonzero(right > height)
        if higher_left.size:
            left = left[higher_left[-1] + 1 :]
        if higher_right.size:
            right = right[: higher_right[0]]
        left_low = left.min() if left.size else height
        right_low = right.min() if right.size else height
        out[k] = height - max(left_low, right_low)
    return out


def _most_prominent(
    values: np.ndarray, candidates: np.ndarray, positions: np.ndarray, max_count: int, separation: int
) -> list[int]:
    # Most prominent first; a stable sort keeps the leftmost of equal prominences first.
    order = candidates[np.argsort(-prominences(values, candidates), kind="stable")]
    kept: list[int] = []
    for index in order:
        if len(kept) == max_count:
            break
        if all(abs(positions[index] - positions[other]) > separation for other in kept):
            kept.append(int(index))
    return kept
