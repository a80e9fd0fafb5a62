"""Choosing Attention Buckets bases: the greedy complementary search, plus simple baselines.

The official search (`basic.py`, `base_choose_method1` and helpers) picks bases one at a time so that
the peaks of a new base land on the troughs of the bases already chosen, and the other way round:

* candidates are `range(min_base, max_base + 1, step)` minus the bases already chosen;
* a candidate's score (`cover`) counts pairs: (candidate peak, chosen trough) plus (chosen peak, candidate
  trough) with |peak - trough| <= `tolerance`; pairs are counted with multiplicity, like upstream's
  double loop, and the merged lists may hold a position twice;
* ties go to the smallest mean squared offset of the counted pairs, then to the smaller base;
* after each pick the merged lists become sorted(P + P_b) and sorted(T + T_b), and any position present in
  both lists (exact match) is removed from both;
* with an empty initial set, the best *pair* b1 < b2 (same score) starts the search.

When no candidate covers anything, upstream appends `None` and crashes later; we stop there. The bases
found so far are a `BaseSearchResult` with `stopped` set: `NoCoverageError.partial` carries it, or
`allow_partial=True` returns it; `buckets.coverage.set_coverage` says what it covers and
`buckets.search_advice` which settings would complete the search.

Upstream bug kept behind a flag: when choosing the starting pair, upstream does not record the offset of a
pair whose cover is strictly better, so a later pair with the same cover can replace it while having a
*larger* offset. We keep the true best pair by default; `upstream_pair_tiebreak=True` reproduces upstream.

Positions (window, peaks, troughs, tolerance) are effective RoPE positions: token distance divided by
`position_scale`; see `buckets.waveform`. Do not expect the published ToolBench set
[10000, 17500, 18000, 19000, 20000, 25000]: upstream hand-edited its sets.

Frequencies: the official formula b^(-2j/d) by default; with `rope` (the model's `buckets.rope.RopeSpec`) the
model's own scaled frequencies for each candidate base (llama3, YaRN, dynamic NTK, linear), as the bucketed
forward computes them. The settings then record the RoPE type and its parameters.

>>> result = search_bases(3, model_base=10000, head_dim=128, min_base=10000, max_base=30000, step=500)
>>> result.bases[0], len(result.bases)
(10000, 3)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from buckets.extrema import DEFAULT_WINDOW, ExtremaRule, base_extrema, check_window
from buckets.waveform import waveform_axis

# The official window [1000, 4090] over the 4,096 effective positions of ToolLLaMA (8,192 tokens at
# interpolation ratio 2); `window_for_context` keeps these fractions for other context lengths.
OFFICIAL_LOW_FRACTION = 1000 / 4096
OFFICIAL_HIGH_FRACTION = 4090 / 4096


class NoCoverageError(ValueError):
    """No candidate base puts a peak on a chosen trough (or a trough under a chosen peak).

    `partial` is the search as far as it got: a `BaseSearchResult` with the bases found and `stopped` set.
    """

    def __init__(self, message: str, partial: BaseSearchResult | None = None) -> None:
        super().__init__(message)
        self.partial = partial


@dataclass(frozen=True)
class BasePick:
    """One chosen base: where it came from, its extrema and, for searched picks, its score."""

    base: float
    origin: str  # "initial" | "pair" | "greedy"
    peaks: tuple[int, ...]
    troughs: tuple[int, ...]
    cover: int | None = None
    mean_squared_offset: float | None = None


@dataclass(frozen=True)
class SearchSettings:
    """Everything that determines a search result (recorded with it)."""

    n: int
    model_base: float
    head_dim: int
    position_scale: float
    min_base: int
    max_base: int
    step: int
    window: tuple[int, int]
    tolerance: float
    initial: tuple[float, ...]
    rule: ExtremaRule = field(default_factory=ExtremaRule)
    upstream_pair_tiebreak: bool = False
    rope: Any = None  # the model's buckets.rope.RopeSpec, or None for the official formula

    def arguments(self) -> dict:
        """Keyword arguments of `search_bases` that repeat this search (`n` included)."""
        arguments = {
            "n": self.n,
            "model_base": self.model_base,
            "min_base": self.min_base,
            "max_base": self.max_base,
            "step": self.step,
            "window": self.window,
            "tolerance": self.tolerance,
            "initial": list(self.initial),
            "rule": self.rule,
            "upstream_pair_tiebreak": self.upstream_pair_tiebreak,
        }
        if self.rope is None:
            return {**arguments, "head_dim": self.head_dim, "position_scale": self.position_scale}
        return {**arguments, "rope": self.rope}


@dataclass(frozen=True)
class BaseSearchResult:
    """Bases in pick order with each one's extrema and score, and the final merged peak/trough lists."""

    picks: tuple[BasePick, ...]
    merged_peaks: tuple[int, ...]
    merged_troughs: tuple[int, ...]
    settings: SearchSettings
    stopped: str | None = None  # why the search ended before n bases (None: it found all n)

    @property
    def bases(self) -> tuple[float, ...]:
        return tuple(pick.base for pick in self.picks)

    @property
    def complete(self) -> bool:
        return self.stopped is None

    def settings_dict(self) -> dict:
        """The settings as JSON-ready values (the RoPE as its type and parameters, only when the model's)."""
        scale = self.settings.position_scale
        settings = asdict(replace(self.settings, rope=None))
        del settings["rope"]
        if self.settings.rope is not None:
            settings["rope"] = rope_record(self.settings.rope)
        settings["window_tokens"] = [_tokens(p, scale) for p in self.settings.window]
        return settings

    def to_dict(self) -> dict:
        """A JSON-ready dict; positions are effective, `*_tokens` fields give token distances."""
        scale = self.settings.position_scale
        settings = self.settings_dict()
        stopped = {} if self.stopped is None else {"complete": False, "stopped": self.stopped}
        return {
            "bases": list(self.bases),
            "bases_sorted": sorted(self.bases),
            "picks": [
                {
                    **asdict(pick),
                    "peaks_tokens": _tokens(pick.peaks, scale),
                    "troughs_tokens": _tokens(pick.troughs, scale),
                }
                for pick in self.picks
            ],
            "merged_peaks": list(self.merged_peaks),
            "merged_troughs": list(self.merged_troughs),
            "settings": settings,
            **stopped,
        }

    def to_markdown(self) -> str:
        """A readable table of the picks (effective positions) with the settings above it."""
        s = self.settings
        rope = "" if s.rope is None else f", model RoPE {_rope_text(rope_record(s.rope))}"
        lines = [
            (
                f"Base search: head_dim {s.head_dim}, model base {_fmt(s.model_base)}, position scale "
                f"{_fmt(s.position_scale)}{rope}, N={s.n}, candidates {_grid(s.min_base, s.max_base, s.step)}, "
                f"window {s.window[0]}-{s.window[1]} effective positions (token distances "
                f"{_fmt(s.window[0] * s.position_scale)}-{_fmt(s.window[1] * s.position_scale)}), tolerance "
                f"{_fmt(s.tolerance)}, detector {s.rule.detector}."
            ),
            "",
            f"Chosen bases (pick order): {', '.join(_fmt(b) for b in self.bases)}",
            *([] if self.stopped is None else ["", f"Stopped after {len(self.picks)} of {s.n}: {self.stopped}"]),
            "",
            "| # | base | origin | cover | mean sq. offset | peaks | troughs |",
            "|---|---|---|---|---|---|---|",
        ]
        for number, pick in enumerate(self.picks, 1):
            cover = "" if pick.cover is None else str(pick.cover)
            offset = "" if pick.mean_squared_offset is None else f"{pick.mean_squared_offset:.2f}"
            lines.append(
                f"| {number} | {_fmt(pick.base)} | {pick.origin} | {cover} | {offset} | "
                f"{', '.join(map(str, pick.peaks))} | {', '.join(map(str, pick.troughs))} |"
            )
        lines += [
            "",
            f"Merged peaks ({len(self.merged_peaks)}): {', '.join(map(str, self.merged_peaks))}",
            "",
            f"Merged troughs ({len(self.merged_troughs)}): {', '.join(map(str, self.merged_troughs))}",
        ]
        return "\n".join(lines) + "\n"


def search_bases(
    n: int,
    *,
    model_base: float = 10000,
    head_dim: int | None = None,
    position_scale: float | None = None,
    min_base: int = 10000,
    max_base: int = 30000,
    step: int = 500,
    window: tuple[int, int] = DEFAULT_WINDOW,
    tolerance: float = 3,
    initial: Sequence[float] | None = None,
    detector: str = "official",
    rule: ExtremaRule | None = None,
    upstream_pair_tiebreak: bool = False,
    rope: Any = None,
    allow_partial: bool = False,
) -> BaseSearchResult:
    """Greedy complementary base search (official rules; see the module docstring).

    `initial` defaults to `[model_base]`; `[]` starts from the best pair. `rule` overrides the detector
    constants (its `detector` wins over the `detector` argument). `rope` (a `buckets.rope.RopeSpec`) makes
    the waveforms the model's own; `head_dim` and `position_scale` default to its values (else 128 and 1).
    When a step finds no covering candidate, raises `NoCoverageError` (its `partial` holds the bases found),
    or with `allow_partial=True` returns that partial result. `ValueError` for bad arguments.

    >>> search_bases(2, initial=[], min_base=10000, max_base=14000, step=500).picks[0].origin
    'pair'
    """
    rule = rule or ExtremaRule(detector=detector)
    window = check_window(window)
    head_dim, position_scale = waveform_axis(head_dim, position_scale, rope)
    initial_bases = [model_base] if initial is None else list(initial)
    candidates = _candidates(min_base, max_base, step)
    _check_arguments(n, initial_bases, tolerance, position_scale)
    settings = SearchSettings(
        n=n,
        model_base=_number(model_base),
        head_dim=head_dim,
        position_scale=position_scale,
        min_base=min_base,
        max_base=max_base,
        step=step,
        window=window,
        tolerance=tolerance,
        initial=tuple(_number(b) for b in initial_bases),
        rule=rule,
        upstream_pair_tiebreak=upstream_pair_tiebreak,
        rope=rope,
    )

    def extrema(base: float):
        # The rope goes last and only when given: callers (and tests) may stand in for base_extrema.
        return base_extrema(base, head_dim, window, rule, *([] if rope is None else [rope]))

    def stop(message: str, picks: list[BasePick], peaks=(), troughs=()) -> BaseSearchResult:
        partial = BaseSearchResult(tuple(picks), tuple(peaks), tuple(troughs), settings, stopped=message)
        if allow_partial:
            return partial
        raise NoCoverageError(message, partial)

    picks: list[BasePick] = []
    if initial_bases:
        picks = [BasePick(_number(b), "initial", *_astuple(extrema(b))) for b in initial_bases]
    else:
        picks = _best_pair(candidates, extrema, tolerance, upstream_pair_tiebreak)
        if not picks:
            return stop(
                f"base search pair start: no two candidates in {_grid(min_base, max_base, step)} cover each "
                f"other's troughs within {_fmt(tolerance)}; widen the base range, use a smaller step, a larger "
                f"tolerance or a wider window, or pass an initial base (e.g. the model's own)",
                [],
            )
    peaks, troughs = list(picks[0].peaks), list(picks[0].troughs)
    for pick in picks[1:]:
        peaks, troughs = merge_extrema(peaks, troughs, pick.peaks, pick.troughs)

    while len(picks) < n:
        chosen = {pick.base for pick in picks}
        remaining = [b for b in candidates if b not in chosen]
        best = _best_candidate(remaining, peaks, troughs, extrema, tolerance)
        if best is None:
            chosen_text = ", ".join(_fmt(p.base) for p in picks)
            return stop(
                f"base search step {len(picks) - len(initial_bases) + 1} (bucket {len(picks) + 1} of {n}): "
                f"none of the {len(remaining)} remaining candidates in {_grid(min_base, max_base, step)} "
                f"puts a peak within {_fmt(tolerance)} of a trough of the chosen bases [{chosen_text}] or a "
                f"trough within {_fmt(tolerance)} of their peaks, in window {window[0]}-{window[1]}; widen "
                f"the base range (min_base/max_base), use a smaller step, a larger tolerance or a wider "
                f"window, or ask for fewer buckets",
                picks,
                peaks,
                troughs,
            )
        base, cover, offset = best
        found = extrema(base)
        picks.append(BasePick(base, "greedy", found.peaks, found.troughs, cover, offset))
        peaks, troughs = merge_extrema(peaks, troughs, found.peaks, found.troughs)

    return BaseSearchResult(tuple(picks), tuple(peaks), tuple(troughs), settings)


def cover_score(peaks: Sequence[int], troughs: Sequence[int], tolerance: float) -> tuple[int, float]:
    """(number of (peak, trough) pairs with |peak - trough| <= tolerance, sum of their squared offsets).

    >>> cover_score([100, 200], [98, 103, 300], 3)
    (2, 13.0)
    """
    if len(peaks) == 0 or len(troughs) == 0:
        return 0, 0.0
    offsets = np.subtract.outer(np.asarray(peaks, dtype=np.float64), np.asarray(troughs, dtype=np.float64))
    close = np.abs(offsets) <= tolerance
    return int(close.sum()), float(np.square(offsets[close]).sum())


def candidate_score(
    peaks: Sequence[int],
    troughs: Sequence[int],
    candidate_peaks: Sequence[int],
    candidate_troughs: Sequence[int],
    tolerance: float,
) -> tuple[int, float]:
    """(cover, mean squared offset) of a candidate against the merged lists; offset is inf at cover 0.

    >>> candidate_score([500], [100], [101], [499, 900], 3)
    (2, 1.0)
    """
    cover_a, squares_a = cover_score(candidate_peaks, troughs, tolerance)
    cover_b, squares_b = cover_score(peaks, candidate_troughs, tolerance)
    cover = cover_a + cover_b
    return cover, (squares_a + squares_b) / cover if cover else math.inf


def merge_extrema(
    peaks: Sequence[int], troughs: Sequence[int], new_peaks: Sequence[int], new_troughs: Sequence[int]
) -> tuple[list[int], list[int]]:
    """sorted(P + P_b), sorted(T + T_b), then drop every position present in both (exact match).

    >>> merge_extrema([10, 30], [20], [20, 40], [30, 50])
    ([10, 40], [50])
    """
    merged_peaks = sorted([*peaks, *new_peaks])
    merged_troughs = sorted([*troughs, *new_troughs])
    in_peaks, in_troughs = set(merged_peaks), set(merged_troughs)
    return [p for p in merged_peaks if p not in in_troughs], [t for t in merged_troughs if t not in in_peaks]


def window_for_context(
    max_tokens: int,
    position_scale: float = 1.0,
    low_fraction: float = OFFICIAL_LOW_FRACTION,
    high_fraction: float = OFFICIAL_HIGH_FRACTION,
) -> tuple[int, int]:
    """The effective-position window for a context of `max_tokens` tokens, proportional to the official one.

    The official [1000, 4090] covers fractions 1000/4096 .. 4090/4096 of ToolLLaMA's 4,096 effective
    positions (8,192 tokens / ratio 2); we keep those fractions: low = round(E * low_fraction),
    high = floor(E * high_fraction) with E = max_tokens / position_scale.

    >>> window_for_context(8192, position_scale=2)
    (1000, 4090)
    >>> window_for_context(8192)
    (2000, 8180)
    """
    if max_tokens < 1 or not position_scale > 0:
        raise ValueError(f"need max_tokens >= 1 and position_scale > 0, got {max_tokens}, {position_scale}")
    if not 0 <= low_fraction < high_fraction <= 1:
        raise ValueError(f"need 0 <= low_fraction < high_fraction <= 1, got {low_fraction}, {high_fraction}")
    effective = max_tokens / position_scale
    return check_window((round(effective * low_fraction), math.floor(effective * high_fraction)))


def default_search_range(model_base: float) -> tuple[int, int, int]:
    """(min_base, max_base, step): the model's base to 3x it in 41 steps, as upstream does for 10000.

    >>> default_search_range(10000)
    (10000, 30000, 500)
    >>> default_search_range(100000)
    (100000, 300000, 5000)
    """
    if not model_base > 1:
        raise ValueError(f"model_base must be > 1, got {model_base}")
    step = max(1, round(model_base / 20))
    low = round(model_base)
    return low, low + 40 * step, step


def arithmetic_bases(n: int, start: float, stop: float) -> list[float]:
    """n evenly spaced bases from start to stop inclusive (integers when they are whole numbers).

    >>> arithmetic_bases(4, 10000, 25000)
    [10000, 15000, 20000, 25000]
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not (start > 1 and stop > 1):
        raise ValueError(f"bases must be > 1, got {start}..{stop}")
    return [_number(b) for b in np.linspace(start, stop, n)]


def random_bases(n: int, min_base: int, max_base: int, step: int, seed: int) -> list[int]:
    """n distinct bases drawn from range(min_base, max_base + 1, step) with a seeded generator, sorted.

    >>> random_bases(3, 10000, 30000, 500, seed=0) == random_bases(3, 10000, 30000, 500, seed=0)
    True
    """
    grid = _candidates(min_base, max_base, step)
    if not 1 <= n <= len(grid):
        raise ValueError(
            f"n must be between 1 and the {len(grid)} bases in range({min_base}, {max_base}+1, {step})"
        )
    picked = np.random.default_rng(seed).choice(len(grid), size=n, replace=False)
    return sorted(grid[i] for i in picked)


def _best_candidate(candidates, peaks, troughs, extrema, tolerance) -> tuple[float, int, float] | None:
    # Strict comparisons starting from (0, inf), as upstream: a base must cover something, and on an exact
    # tie (same cover and offset) the earlier, smaller candidate stays.
    best, best_cover, best_offset = None, 0, math.inf
    for base in candidates:
        found = extrema(base)
        cover, offset = candidate_score(peaks, troughs, found.peaks, found.troughs, tolerance)
        if cover > best_cover or (cover == best_cover and offset < best_offset):
            best, best_cover, best_offset = base, cover, offset
    return None if best is None else (best, best_cover, best_offset)


def _best_pair(candidates, extrema, tolerance, upstream_tiebreak: bool) -> list[BasePick]:
    best_pair, best_cover, best_offset = None, 0, math.inf
    for i, first in enumerate(candidates):
        found = extrema(first)
        partner = _best_candidate(candidates[i + 1 :], found.peaks, found.troughs, extrema, tolerance)
        if partner is None:
            continue
        second, cover, offset = partner
        if cover > best_cover:
            best_pair, best_cover = (first, second), cover
            if not upstream_tiebreak:  # upstream forgets to record the offset here
                best_offset = offset
        elif cover == best_cover and offset < best_offset:
            best_pair, best_offset = (first, second), offset
    if best_pair is None:
        return []
    first, second = best_pair
    a, b = extrema(first), extrema(second)
    cover, offset = candidate_score(a.peaks, a.troughs, b.peaks, b.troughs, tolerance)
    return [
        BasePick(first, "pair", a.peaks, a.troughs),
        BasePick(second, "pair", b.peaks, b.troughs, cover, offset),
    ]


def _candidates(min_base: int, max_base: int, step: int) -> list[int]:
    if step < 1 or int(step) != step:
        raise ValueError(f"step must be a positive integer, got {step}")
    if int(min_base) != min_base or int(max_base) != max_base:
        raise ValueError(f"min_base and max_base must be integers, got {min_base}, {max_base}")
    if min_base <= 1 or max_base < min_base:
        raise ValueError(f"need 1 < min_base <= max_base, got {min_base}..{max_base}")
    return list(range(int(min_base), int(max_base) + 1, int(step)))


def _check_arguments(n: int, initial: list[float], tolerance: float, position_scale: float) -> None:
    if n < 1:
        raise ValueError(f"n (the number of buckets) must be >= 1, got {n}")
    if len(initial) > n:
        raise ValueError(f"the initial set has {len(initial)} bases but only n={n} buckets were asked for")
    if not initial and n < 2:
        raise ValueError("an empty initial set starts from a pair, so n must be >= 2")
    if len(set(initial)) != len(initial):
        raise ValueError(f"the initial set repeats a base: {initial}")
    if any(not b > 1 for b in initial):
        raise ValueError(f"every base must be > 1, got {initial}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if not position_scale > 0:
        raise ValueError(f"position_scale must be > 0, got {position_scale}")


def rope_record(rope: Any) -> dict:
    """A model's RoPE (a `buckets.rope.RopeSpec`) as JSON-ready facts: its type, head dim, original length and
    the scaling parameters of its config (the base excluded: the search varies it)."""
    parameters: dict[str, Any] = {}
    if rope.config is not None:
        from buckets.rope import rope_parameters

        parameters = dict(rope_parameters(rope.config))
    elif rope.rope_type == "linear":
        parameters = {"factor": rope.factor}
    for key in ("rope_theta", "rope_type", "type"):
        parameters.pop(key, None)
    scalars = {key: value for key, value in sorted(parameters.items())
               if value is None or isinstance(value, (bool, int, float, str))}
    return {"rope_type": rope.rope_type, "head_dim": rope.head_dim,
            "max_position_embeddings": rope.max_position_embeddings, **scalars}


def _rope_text(record: dict) -> str:
    extra = {k: v for k, v in record.items() if k not in ("rope_type", "head_dim", "max_position_embeddings")}
    details = ", ".join(f"{key} {_fmt(value) if isinstance(value, (int, float)) else value}"
                        for key, value in extra.items() if value is not None and not isinstance(value, bool))
    return record["rope_type"] + (f" ({details})" if details else "")


def _astuple(found) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return found.peaks, found.troughs


def _number(value: float) -> float:
    """Whole numbers as int (10000, not 10000.0), so JSON and tables read naturally."""
    value = float(value)
    return int(value) if value.is_integer() else value


def _grid(min_base: int, max_base: int, step: int) -> str:
    return f"range({min_base}, {max_base}+1, {step})"


def _fmt(value: float) -> str:
    return str(_number(value))


def _tokens(positions, scale: float):
    if isinstance(positions, (int, float)):
        return _number(positions * scale)
    return [_number(p * scale) for p in positions]
