"""Prompt-lookup drafts: guess the next tokens by finding the current tail earlier in the context.

Tool-use completions copy a lot from their own prompt: function names from the tool list, parameter
names and values from the documentation and the query, observations into the final answer. If the
last n tokens of the sequence occurred before, the tokens that followed that occurrence are a cheap
guess of what comes next. The decoder feeds such a draft through the model in the same forward as the
current token and keeps the longest prefix the model itself would have produced greedily (`accepted_tokens`),
so the output is the greedy output (up to float rounding of a wider forward) in fewer decode steps.

`NgramIndex` keeps, for every n-gram (n <= `max_ngram`), the position that followed its latest
occurrence, so proposing a draft is a dict lookup, not a scan of the context.

>>> index = NgramIndex([5, 6, 7, 8, 9, 5, 6])
>>> index.propose(3)              # tail (5, 6) was last followed by 7, 8, 9
[7, 8, 9]
>>> index.extend([7, 1]); index.propose(3)    # tail (7, 1) is new, (1,) too: no draft
[]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class NgramIndex:
    """The token sequence so far and where each of its n-grams (1 <= n <= max_ngram) was last continued."""

    def __init__(self, tokens: Iterable[int] = (), max_ngram: int = 3) -> None:
        if max_ngram < 1:
            raise ValueError(f"max_ngram must be >= 1, got {max_ngram}")
        self.max_ngram = max_ngram
        self.tokens: list[int] = []
        self._continued_at: dict[tuple[int, ...], int] = {}
        self.extend(tokens)

    def extend(self, tokens: Iterable[int]) -> None:
        """Append tokens; each one makes the n-grams ending just before it 'continued at' its position."""
        seq, continued_at = self.tokens, self._continued_at
        for token in tokens:
            end = len(seq)
            for n in range(1, min(self.max_ngram, end) + 1):
                continued_at[tuple(seq[end - n : end])] = end
            seq.append(int(token))

    def propose(self, count: int) -> list[int]:
        """Up to `count` tokens that followed the latest earlier occurrence of the longest matching tail."""
        if count <= 0:
            return []
        seq = self.tokens
        for n in range(min(self.max_ngram, len(seq)), 0, -1):
            start = self._continued_at.get(tuple(seq[-n:]))
            if start is not None:
                return seq[start : start + count]
        return []


def accepted_tokens(draft: Sequence[int], greedy: Sequence[int]) -> list[int]:
    """What a context emits after feeding its token and `draft`, given `greedy[j]`, the greedy choice after fed
    column j: the longest prefix of `draft` that `greedy` confirms, then the model's own token after it.

    >>> accepted_tokens([7, 8, 9], [7, 8, 4, 5])    # 9 was not what the model would say: 4 instead
    [7, 8, 4]
    """
    accepted = 0
    while accepted < len(draft) and draft[accepted] == greedy[accepted]:
        accepted += 1
    return [*draft[:accepted], greedy[accepted]]
