"""How much of a search window a bucket set covers: which troughs another bucket's peak fills.

A trough of one bucket is *covered* when another bucket of the set has a peak within `tolerance` effective
positions of it: that is what the base search optimises. Peaks of the official detector sit in the early
part of a window (the curve decays with distance, and the detector follows its record-high envelope), so a
set can only cover troughs up to its last peak; the summary says where that is, so a reader can tell which
part of the window the set serves and which it leaves alone.

Positions are effective RoPE positions (token distance / position-interpolation ratio), as in
`buckets.extrema`; `rope` (a `buckets.rope.RopeSpec`) selects the model's own frequencies.

>>> coverage = set_coverage([10000, 18000, 20500], window=(1000, 4090))
>>> coverage.covered, coverage.total
(3, 18)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from buckets.extrema import DEFAULT_WINDOW, ExtremaRule, base_extrema, check_window


@dataclass(frozen=True)
class TroughCoverage:
    """One bucket's troughs and, for each, the first other bucket (and its peak) covering it, or None."""

    base: float
    troughs: tuple[int, ...]
    covered_by: tuple[float | None, ...]
    covering_peaks: tuple[int | None, ...]

    @property
    def covered(self) -> int:
        return sum(other is not None for other in self.covered_by)


@dataclass(frozen=True)
class SetCoverage:
    """A set's troughs, which of them are covered, and where its peaks lie, inside one window."""

    window: tuple[int, int]
    tolerance: float
    buckets: tuple[TroughCoverage, ...]
    peaks: tuple[int, ...]  # every bucket's peaks, ascending (duplicates kept)

    @property
    def bases(self) -> tuple[float, ...]:
        return tuple(bucket.base for bucket in self.buckets)

    @property
    def total(self) -> int:
        return sum(len(bucket.troughs) for bucket in self.buckets)

    @property
    def covered(self) -> int:
        return sum(bucket.covered for bucket in self.buckets)

    @property
    def covered_troughs(self) -> tuple[int, ...]:
        return tuple(sorted(t for b in self.buckets for t, by in zip(b.troughs, b.covered_by) if by is not None))

    @property
    def uncovered_troughs(self) -> tuple[int, ...]:
        return tuple(sorted(t for b in self.buckets for t, by in zip(b.troughs, b.covered_by) if by is None))

    @property
    def reach(self) -> int | None:
        """The last position a trough can be covered at: the set's last peak plus the tolerance (None: no peaks)."""
        return None if not self.peaks else min(self.window[1], int(self.peaks[-1] + self.tolerance))

    def summary(self, position_scale: float = 1.0) -> str:
        """One sentence: what is covered, where, and which part of the window no peak of the set reaches."""
        low, high = self.window
        text = (
            f"{len(self.buckets)} base(s) [{', '.join(_fmt(b) for b in self.bases)}] cover {self.covered} of "
            f"{self.total} troughs (a peak of another base within {_fmt(self.tolerance)}) in window {low}-{high}"
            f"{_tokens_note((low, high), position_scale)}"
        )
        covered = self.covered_troughs
        if covered:
            text += f"; covered troughs at {', '.join(map(str, covered))}"
        if self.reach is None:
            return text + "; the set has no peak in the window"
        if self.reach < high:
            text += (
                f"; their peaks end at {self.peaks[-1]}, so troughs in {self.reach + 1}-{high}"
                f"{_tokens_note((self.reach + 1, high), position_scale)} cannot be covered by this set"
            )
        return text

    def to_dict(self) -> dict:
        return {
            "window": list(self.window),
            "tolerance": self.tolerance,
            "troughs": self.total,
            "covered": self.covered,
            "covered_troughs": list(self.covered_troughs),
            "uncovered_troughs": list(self.uncovered_troughs),
            "peaks_span": [self.peaks[0], self.peaks[-1]] if self.peaks else None,
            "per_base": [
                {"base": bucket.base, "troughs": len(bucket.troughs), "covered": bucket.covered}
                for bucket in self.buckets
            ],
        }


def trough_coverage(
    bases: Sequence[float],
    head_dim: int | None = None,
    window: tuple[int, int] = DEFAULT_WINDOW,
    tolerance: float = 3,
    rule: ExtremaRule | None = None,
    *,
    rope: Any = None,
) -> list[TroughCoverage]:
    """Which troughs of each bucket lie within `tolerance` of another bucket's peak.

    >>> [c.covered for c in trough_coverage([10000], head_dim=128)]
    [0]
    """
    rule = rule or ExtremaRule()
    window = check_window(window)
    found = [base_extrema(b, head_dim, window, rule, rope) for b in bases]
    coverage = []
    for i, base in enumerate(bases):
        covered_by, covering_peaks = [], []
        for trough in found[i].troughs:
            cover = next(
                (
                    (bases[j], p)
                    for j in range(len(bases))
                    if j != i
                    for p in found[j].peaks
                    if abs(p - trough) <= tolerance
                ),
                (None, None),
            )
            covered_by.append(cover[0])
            covering_peaks.append(cover[1])
        coverage.append(TroughCoverage(base, found[i].troughs, tuple(covered_by), tuple(covering_peaks)))
    return coverage


def set_coverage(
    bases: Sequence[float],
    head_dim: int | None = None,
    window: tuple[int, int] = DEFAULT_WINDOW,
    tolerance: float = 3,
    rule: ExtremaRule | None = None,
    *,
    rope: Any = None,
) -> SetCoverage:
    """The coverage of a whole set in `window` (see `SetCoverage`)."""
    rule = rule or ExtremaRule()
    window = check_window(window)
    buckets = trough_coverage(bases, head_dim, window, tolerance, rule, rope=rope)
    peaks = sorted(p for b in bases for p in base_extrema(b, head_dim, window, rule, rope).peaks)
    return SetCoverage(window, tolerance, tuple(buckets), tuple(peaks))


def _tokens_note(window: tuple[int, int], position_scale: float) -> str:
    if position_scale == 1:
        return ""
    return f" (token distances {_fmt(window[0] * position_scale)}-{_fmt(window[1] * position_scale)})"


def _fmt(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:g}"
