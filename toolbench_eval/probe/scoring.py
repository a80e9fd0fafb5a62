"""Scoring a KV-retrieval answer: exact match of the value after trimming.

Trimming removes what surrounds a value without changing it: whitespace, matching or dangling quotes
and backticks, and a trailing comma, period or semicolon. Anything else (an explanation, a second
value, a value with one digit wrong) is a miss: the probe measures retrieval, not phrasing.

>>> is_correct('  "70b3-d029",', "70b3-d029")
True
>>> is_correct("The value is 70b3-d029", "70b3-d029")
False
"""

from __future__ import annotations

import math

_QUOTES = "\"'`"
_TRAILING = ",.;"


def normalize_answer(text: str) -> str:
    """The first line of `text`, stripped of whitespace, surrounding quotes and trailing punctuation.

    >>> normalize_answer('`abc-123`.\\nmore text')
    'abc-123'
    """
    lines = [line for line in text.strip().splitlines() if line.strip()]
    answer = lines[0].strip() if lines else ""
    previous = None
    while answer != previous:  # quotes and punctuation may nest: '"x",' -> 'x'
        previous = answer
        answer = answer.rstrip(_TRAILING).strip().strip(_QUOTES).strip()
    return answer


def is_correct(prediction: str, value: str) -> bool:
    """Exact match of the normalised prediction with the expected value."""
    return normalize_answer(prediction) == value


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (95% by default); (nan, nan) when n = 0.

    >>> [round(x, 3) for x in wilson_interval(15, 30)]
    [0.332, 0.668]
    """
    if n <= 0:
        return math.nan, math.nan
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)
