"""Recording a run's Attention Buckets weights (the run option `record_bucket_weights`).

With the option on, the model client of each trajectory keeps the fused bucket weights of every completion
it asked for (`CallWeights`), beside the trajectory rather than inside it, so the reasoner and the answer
file see exactly what they see without the option. When the query is finished, the driver writes one
sidecar per query, `<run>/bucket_weights/<group>/<query_id>.json` (`sidecar`):

    {"bases": [b1, ..., bN], "fusion": "max_logit",
     "calls": [{"call": 0, "tokens": T, "mean": [w1..wN], "decided": [c1..cN], "per_token": [[w1..wN], ...]}, ...]}

one entry per model call of the trajectory, in call order. `mean` averages the weights over the call's
generated tokens, `decided[k]` counts the tokens where bucket k had the largest weight (the first one on a
tie), `per_token` keeps each token's weights rounded to 3 decimals (the file stays small: about 20 bytes per
token with 3 buckets). A call that generated no token has `tokens: 0` and zeros for `mean` and `decided`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

# Engines that can hand back the fused weights of each generated token. `hf` fuses in Python where the weights
# are at hand; `scripted` reports uniform weights. vLLM fuses inside the model's forward and its sampler
# returns tokens only: exposing the weights would mean a side channel per request out of the model runner.
ENGINES_WITH_WEIGHTS = ("hf", "scripted")

PER_TOKEN_DECIMALS = 3
MEAN_DECIMALS = 4


class CallWeights:
    """The per-token bucket weights of one trajectory's model calls, by call index.

    A client takes an index when it sends a call (`begin`) and files the completion's weights under it
    (`record`), so the order is the order of the calls even if completions came back in another order."""

    def __init__(self) -> None:
        self._calls: dict[int, list[list[float]]] = {}
        self._sent = 0

    def begin(self) -> int:
        index, self._sent = self._sent, self._sent + 1
        return index

    def record(self, index: int, weights: Sequence[Sequence[float]] | None) -> None:
        """File a completion's `[tokens][N]` weights (None, from an engine that gave none: no tokens)."""
        self._calls[index] = [list(map(float, row)) for row in weights or ()]

    def calls(self) -> list[list[list[float]]]:
        """Each answered call's weights in call order (a call still in flight, or one that failed, has none)."""
        return [self._calls[index] for index in sorted(self._calls)]


def summarize_call(index: int, per_token: Sequence[Sequence[float]], n: int) -> dict[str, Any]:
    """One `calls` entry of the sidecar from a call's full-precision `[tokens][n]` weights.

    >>> summarize_call(0, [[0.7, 0.2, 0.1], [0.2, 0.5, 0.3]], 3)
    {'call': 0, 'tokens': 2, 'mean': [0.45, 0.35, 0.2], 'decided': [1, 1, 0], 'per_token': [[0.7, 0.2, 0.1], [0.2, 0.5, 0.3]]}
    """
    tokens = len(per_token)
    for row in per_token:
        if len(row) != n:
            raise ValueError(f"call {index}: a token has {len(row)} bucket weights, the run has {n} buckets")
    sums, decided = [0.0] * n, [0] * n
    for row in per_token:
        for k, weight in enumerate(row):
            sums[k] += weight
        decided[max(range(n), key=row.__getitem__)] += 1
    return {
        "call": index,
        "tokens": tokens,
        "mean": [round(total / tokens, MEAN_DECIMALS) if tokens else 0.0 for total in sums],
        "decided": decided,
        "per_token": [[round(weight, PER_TOKEN_DECIMALS) for weight in row] for row in per_token],
    }


def sidecar(bases: Sequence[float], fusion: str, calls: Sequence[Sequence[Sequence[float]]]) -> dict[str, Any]:
    """The sidecar document of one query: the run's bases and fusion rule, and one entry per model call."""
    n = len(bases)
    return {"bases": [float(base) for base in bases], "fusion": fusion,
            "calls": [summarize_call(index, per_token, n) for index, per_token in enumerate(calls)]}
