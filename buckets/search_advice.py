"""When a base search stops before N bases: what the bases found cover, and which settings would complete it.

A search stops when no remaining candidate puts a peak on a chosen trough (or a trough under a chosen
peak). The usual causes: a window reaching distances where the waveforms of all candidates are smooth (few,
shallow extrema far from each other), a base range too narrow for the peaks to move far enough, a grid too
coarse, or a tolerance too strict. Each remedy is *tried* here, by running the search again with one setting
changed, so the advice names only settings that were seen to work:

- a smaller window: the same window scaled by 1/2, 1/4, 1/8, 1/16 (a shorter context), down to the first
  that completes;
- a wider base range: the same step up to twice the span above `min_base`;
- a finer grid: half the step over the same range;
- a looser alignment: twice the tolerance.

Asking for *more* buckets never helps a stopped search (the next pick is the one that failed); fewer buckets
(the bases found) always works. Bases are numbers of the search's own grid; positions are effective.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from buckets.coverage import set_coverage
from buckets.search import BaseSearchResult, SearchSettings, search_bases


@dataclass(frozen=True)
class Alternative:
    """One changed setting and how far the search gets with it."""

    change: str  # what was changed, in words
    arguments: dict  # the changed `search_bases` arguments
    bases: tuple[float, ...]
    complete: bool


def alternatives(settings: SearchSettings) -> list[Alternative]:
    """Re-run the search with each remedy of the module docstring; one `Alternative` per run, in that order.

    The window is shrunk only as far as the first scale that completes the search.
    """
    tried: list[Alternative] = []
    low, high = settings.window
    for divisor in (2, 4, 8, 16):
        window = (low // divisor, high // divisor)
        if window[1] - window[0] < 2:
            break
        tried.append(_attempt(settings, f"a smaller window {window[0]}-{window[1]} (1/{divisor})", window=window))
        if tried[-1].complete:
            break
    span = settings.max_base - settings.min_base
    wider = settings.min_base + 2 * max(span, settings.step)
    tried.append(_attempt(settings, f"a wider base range up to {wider}", max_base=wider))
    if settings.step >= 2:
        tried.append(_attempt(settings, f"a finer step {settings.step // 2}", step=settings.step // 2))
    looser = 2 * settings.tolerance if settings.tolerance > 0 else 1
    tried.append(_attempt(settings, f"a tolerance of {number_text(looser)}", tolerance=looser))
    return tried


def explain_stop(
    partial: BaseSearchResult,
    tried: list[Alternative] | None = None,
    spell: Callable[[str, object], str] | None = None,
) -> str:
    """A message for a stopped search: where it stopped, what the bases found cover, what would complete it.

    `spell(name, value)` writes a setting the way the reader gives it (a CLI flag, a config key); the default
    writes `name=value` with `search_bases`' argument names.
    """
    spell = spell or (lambda name, value: f"{name}={_value(value)}")
    s = partial.settings
    found = len(partial.picks)
    lines = [f"the base search found {found} of {s.n} bases: {partial.stopped}."]
    if found:
        coverage = set_coverage(
            partial.bases, s.head_dim, s.window, s.tolerance, s.rule, rope=s.rope
        )
        lines.append(f"What the bases found cover: {coverage.summary(s.position_scale)}.")
    tried = alternatives(s) if tried is None else tried
    working = [a for a in tried if a.complete]
    if working:
        lines.append("Settings that complete the search (each tried):")
        lines += [
            f"  - {a.change}: {', '.join(spell(k, v) for k, v in a.arguments.items())} -> "
            f"[{', '.join(number_text(b) for b in a.bases)}]"
            for a in working
        ]
    failing = [a for a in tried if not a.complete]
    if failing:
        lines.append(
            "Tried without success: "
            + "; ".join(f"{a.change} ({len(a.bases)} of {s.n} bases)" for a in failing)
            + "."
        )
    if found:
        lines.append(
            f"Or run the {found} base(s) found: {spell('bases', partial.bases)}, or ask for "
            f"{spell('n', found)} (asking for more buckets cannot help: the next pick is the one that failed)."
        )
    return "\n".join(lines)


def _attempt(settings: SearchSettings, change: str, **changed) -> Alternative:
    arguments = {**settings.arguments(), **changed}
    result = search_bases(allow_partial=True, **arguments)
    return Alternative(change, changed, result.bases, result.complete)


def _value(value) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(number_text(v) for v in value)
    return number_text(value)


def number_text(value) -> str:
    """A base, tolerance or window end as a flag or config takes it: `17500`, `2.5`."""
    value = float(value)
    return str(int(value)) if value.is_integer() else f"{value:g}"
