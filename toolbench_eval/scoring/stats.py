"""The arithmetic of pass rates: SoPR over evaluation runs, population std, bootstrap intervals.

Conventions (stated once, used everywhere):

* SoPR of one evaluation run r is `(#Solved + 0.5 * #Unsure) / N`; the reported SoPR is the mean over
  runs x 100 and the std is the **population** std (ddof=0) over runs x 100, as StableToolBench's
  `eval_pass_rate.py` computes it.
* The bootstrap 95% interval resamples *queries* with replacement (each query's score being its mean
  over runs), `DEFAULT_RESAMPLES` times with a seeded generator, and reports the 2.5th and 97.5th
  percentiles x 100. It says how much the number would move with another draw of queries; the std says
  how much it moves with another draw of the evaluator.
* A multi-group average is the unweighted mean of the group SoPRs; its std is the mean of the group
  stds (StableToolBench's leaderboard); its interval comes from a stratified bootstrap (each group
  resampled within itself, then averaged).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0
CONFIDENCE = 0.95


def sopr(run_scores: Sequence[float]) -> tuple[float, float]:
    """(mean x 100, population std x 100) of per-run pass rates.

    >>> [round(x, 3) for x in sopr([0.5, 0.6, 0.7])]
    [60.0, 8.165]
    """
    if not run_scores:
        raise ValueError("no evaluation runs")
    values = np.asarray(run_scores, dtype=float)
    return float(values.mean() * 100), float(values.std(ddof=0) * 100)


def run_scores(per_query_values: Sequence[Sequence[float]], runs: int, denominator: int) -> list[float]:
    """Per-run pass rates: `per_query_values[q][r]` is query q's value (1 / 0.5 / 0) in run r.

    `denominator` is N (it may exceed the number of rows: missing queries count 0).

    >>> run_scores([[1, 1], [0.5, 0], [0, 0]], runs=2, denominator=4)
    [0.375, 0.25]
    """
    if denominator <= 0:
        return []
    return [sum(values[r] for values in per_query_values) / denominator for r in range(runs)]


def _percentiles(samples: np.ndarray) -> tuple[float, float]:
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low * 100), float(high * 100)


def bootstrap_ci(
    query_scores: Sequence[float], *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> tuple[float, float] | None:
    """95% percentile-bootstrap interval (in %) of the mean of per-query scores; None for no queries.

    >>> bootstrap_ci([1.0, 1.0, 1.0])
    (100.0, 100.0)
    """
    return stratified_bootstrap_ci([query_scores], resamples=resamples, seed=seed)


def stratified_bootstrap_ci(
    groups: Sequence[Sequence[float]], *, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED
) -> tuple[float, float] | None:
    """95% interval (in %) of the unweighted mean of group means, resampling within each group."""
    arrays = [np.asarray(g, dtype=float) for g in groups if len(g)]
    if not arrays:
        return None
    rng = np.random.default_rng(seed)
    total = np.zeros(resamples)
    for values in arrays:
        picks = rng.integers(0, len(values), size=(resamples, len(values)))
        total += values[picks].mean(axis=1)
    return _percentiles(total / len(arrays))


def majority(values: Sequence[str], tie: str) -> str:
    """The most frequent value; `tie` when two or more values share the top count.

    >>> majority(["a", "b", "a"], tie="?"), majority(["a", "b"], tie="?")
    ('a', '?')
    """
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    if not counts:
        return tie
    top = max(counts.values())
    leaders = [v for v, c in counts.items() if c == top]
    return leaders[0] if len(leaders) == 1 else tie
