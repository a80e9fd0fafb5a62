"""Choosing each context's token from its fused logits: greedy, or temperature / top-p sampling from the
context's own seeded stream (so its tokens do not depend on what else shares the batch)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

GREEDY_BELOW = 1e-5  # temperatures below this decode greedily (ToolBench's own threshold)


def row_seed(seed: int, index: int) -> int:
    """The seed of prompt `index` in a call seeded with `seed`: distinct per prompt, batch-independent.

    >>> row_seed(0, 0) != row_seed(0, 1)
    True
    """
    return (int(seed) * 1_000_003 + int(index)) % (2**63 - 1)


@dataclass(frozen=True)
class Sampler:
    """How one context picks its tokens; `rng` None draws from torch's global RNG."""

    temperature: float = 0.0
    top_p: float = 1.0
    rng: torch.Generator | None = None

    @classmethod
    def seeded(cls, temperature: float, top_p: float, seed: int | None, device: torch.device) -> Sampler:
        own_stream = seed is not None and temperature >= GREEDY_BELOW  # a greedy context never draws
        return cls(temperature, top_p, torch.Generator(device=device).manual_seed(seed) if own_stream else None)

    @property
    def greedy(self) -> bool:
        return self.temperature < GREEDY_BELOW


def choose_tokens(fused: Tensor, samplers: list[Sampler]) -> Tensor:
    """Row i's token from its fused logits `fused[i]` (`[contexts, V]`) under `samplers[i]`.

    >>> choose_tokens(torch.tensor([[0.0, 3.0, 1.0]]), [Sampler()]).tolist()
    [1]
    """
    tokens = fused.argmax(dim=-1)
    for row, sampler in enumerate(samplers):
        if sampler.greedy:
            continue
        scores = fused[row] / sampler.temperature
        if sampler.top_p < 1.0:
            scores = top_p_filter(scores, sampler.top_p)
        tokens[row] = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=sampler.rng)[0]
    return tokens


def top_p_filter(scores: Tensor, top_p: float) -> Tensor:
    """Set to -inf every score outside the smallest set whose probability mass reaches `top_p`.

    >>> top_p_filter(torch.log(torch.tensor([0.5, 0.3, 0.2])), 0.7).isinf().tolist()
    [False, False, True]
    """
    sorted_scores, order = torch.sort(scores, descending=True)
    probs = torch.softmax(sorted_scores, dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs
    drop_sorted = mass_before >= top_p  # the most likely token is always kept (its mass_before is 0)
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return scores.masked_fill(drop, float("-inf"))
