"""Fusion rules: turn N per-bucket next-token logits into one distribution.

Every rule has the same shape contract::

    fuse(logits: Tensor[..., N, V], rule) -> (fused_logprobs: Tensor[..., V], weights: Tensor[..., N])

`...` is any batch shape (usually one entry per context), N the number of buckets, V the vocabulary.
The result is a normalised log-distribution (``fused_logprobs.exp().sum(-1) == 1``) and the
per-bucket confidence weights (``weights.sum(-1) == 1``). Everything is computed in float32
whatever the input dtype: the official code mixed a float32 weight with fp16 logits in
``torch.mm`` and fails there.

Rules
-----
``max_logit`` (the official code, the default)
    weights = softmax over buckets of each bucket's largest raw logit; fused logits = the
    weighted sum of the raw logits; returns ``log_softmax`` of that. Because each bucket's
    log-partition is constant over the vocabulary this is log-linear (geometric) pooling:
    ``p ∝ Π_k p_k^{w_k}``.
``prob_mixture`` (the paper's Figure 2 caption)
    the same weights, but an arithmetic mixture of probabilities ``p = Σ_k w_k p_k``; returns
    ``log p`` (computed stably with ``logsumexp``).
``entropy`` (a variant the authors tried and left commented out)
    weights = softmax over buckets of the negative entropy of each bucket's distribution (a
    confident bucket has low entropy); pooled log-linearly like ``max_logit``, which is what
    the official code did with every confidence it tried.

One implementation serves every caller (the transformers engine here and the vLLM plugin).

>>> import torch
>>> logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])          # N=2 buckets, V=2
>>> logprobs, weights = fuse(logits, "max_logit")
>>> [round(w, 4) for w in weights.tolist()]                 # softmax([2, 1])
[0.7311, 0.2689]
>>> round(float(logprobs.exp().sum()), 6)
1.0
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

FusionRule = Callable[[Tensor], tuple[Tensor, Tensor]]


def _pooled(weights: Tensor, logits: Tensor) -> Tensor:
    """``Σ_k w_k logits_k`` (unnormalised): the weighted sum as a [1 x N] @ [N x V] product per row, which reads
    the logits once instead of writing an [..., N, V] product first (64 contexts x 6 buckets x 49k vocabulary:
    29 vs 57-84 ms per decode step on 2 CPU cores)."""
    return torch.matmul(weights.unsqueeze(-2), logits).squeeze(-2)


def _max_logit(logits: Tensor) -> tuple[Tensor, Tensor]:
    weights = torch.softmax(logits.amax(dim=-1), dim=-1)  # [..., N]
    return _pooled(weights, logits), weights


def _prob_mixture(logits: Tensor) -> tuple[Tensor, Tensor]:
    weights = torch.softmax(logits.amax(dim=-1), dim=-1)
    bucket_logprobs = torch.log_softmax(logits, dim=-1)  # [..., N, V]
    # log Σ_k w_k p_k; log(0) = -inf weights simply drop out of the logsumexp.
    mixture = torch.logsumexp(torch.log(weights).unsqueeze(-1) + bucket_logprobs, dim=-2)
    return mixture, weights


def _entropy(logits: Tensor) -> tuple[Tensor, Tensor]:
    bucket_logprobs = torch.log_softmax(logits, dim=-1)
    probs = bucket_logprobs.exp()
    # p log p with 0 log 0 = 0, so masked (-inf) vocabulary entries do not turn into NaN.
    plogp = torch.where(probs > 0, probs * bucket_logprobs, torch.zeros_like(probs))
    entropy = -plogp.sum(dim=-1)  # [..., N]
    weights = torch.softmax(-entropy, dim=-1)
    return _pooled(weights, bucket_logprobs), weights


FUSION_RULES: dict[str, FusionRule] = {
    "max_logit": _max_logit,
    "prob_mixture": _prob_mixture,
    "entropy": _entropy,
}


def check_fusion_rule(rule: str) -> str:
    """Return `rule` if it names a fusion rule, else raise a ValueError listing the known ones."""
    if rule not in FUSION_RULES:
        known = ", ".join(sorted(FUSION_RULES))
        raise ValueError(f"unknown fusion rule {rule!r}; choose one of: {known}")
    return rule


# Rules whose pooled scores are already log-probabilities (the others' are, up to a constant per row).
_NORMALISED_RULES = frozenset({"prob_mixture"})


def fuse(logits: Tensor, rule: str = "max_logit", *, normalize: bool = True) -> tuple[Tensor, Tensor]:
    """Fuse per-bucket logits `[..., N, V]` into float32 `(log-probabilities [..., V], weights [..., N])`.

    A single bucket (N=1) returns its own `log_softmax` and a weight of 1. With ``normalize=False`` the
    scores are the log-probabilities plus an unspecified constant per row, which is all that choosing a
    token needs (argmax, and softmax with a temperature, are shift-invariant); the decode loop uses that to
    skip a pass over [contexts, V] per step.

    >>> import torch
    >>> same = torch.randn(2, 1, 7).expand(2, 3, 7)              # batch 2, three identical buckets
    >>> fused, weights = fuse(same, "prob_mixture")
    >>> bool(torch.allclose(fused, torch.log_softmax(same[:, 0], -1), atol=1e-6))
    True
    """
    apply = FUSION_RULES[check_fusion_rule(rule)]
    if logits.dim() < 2:
        raise ValueError(f"fuse() needs logits shaped [..., N, V], got shape {tuple(logits.shape)}")
    logits = logits.float()
    if logits.shape[-2] == 1:
        scores = logits[..., 0, :]
        weights = torch.ones(logits.shape[:-1], dtype=torch.float32, device=logits.device)
    else:
        scores, weights = apply(logits)
    if normalize and (logits.shape[-2] == 1 or rule not in _NORMALISED_RULES):
        scores = torch.log_softmax(scores, dim=-1)
    return scores, weights
