"""Attention variants for the lab's small Llama model: RoPE, CoPE, CoPE+RoPE and DIFF.

Every module maps hidden states (batch, time, d_model) to the same shape and is causal. The maths lives in
small pure functions (`rope_rotate`, `cope_positions`, `interpolate_positions`, `diff_weights`) so the
property tests can check each equation on its own; the modules only own the parameters.

Our own implementations from the papers' equations:
- RoPE: Su et al. 2021, rotate-half form with inverse frequencies base^(-2i/d).
- CoPE: Golovneva et al. 2024, "Contextual Position Encoding: Learning to Count What's Important".
- DIFF: Ye et al. 2024, "Differential Transformer".
"""

from __future__ import annotations

import math

import torch
from torch import nn

ATTENTIONS = ("rope", "cope", "cope+rope", "diff")


# ---- pure functions ---------------------------------------------------------------------------------
def causal_mask(length: int, device=None) -> torch.Tensor:
    """Boolean (T, T) matrix, True where key j may be seen from query i (j <= i)."""
    return torch.ones(length, length, dtype=torch.bool, device=device).tril()


def rope_tables(length: int, head_dim: int, base: float = 10000.0, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of shape (T, head_dim) for standard RoPE, angle_{t,i} = t * base^(-2i/head_dim)."""
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32, device=device) / head_dim)
    angles = torch.outer(torch.arange(length, dtype=torch.float32, device=device), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)  # rotate-half layout: pair i with i + head_dim/2
    return angles.cos(), angles.sin()


def rope_rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate each (x_i, x_{i+d/2}) pair of the last dimension by its position's angle."""
    half = x.shape[-1] // 2
    rotated_half = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated_half * sin


def softmax_weights(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Causal softmax over keys of (…, T, T) logits."""
    return scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)


def cope_positions(gates: torch.Tensor, mask: torch.Tensor, npos_max: int) -> torch.Tensor:
    """Contextual positions p_ij = sum_{t=j..i} g_it, clamped to npos_max - 1 (0 above the diagonal).

    A reversed cumulative sum along the key axis counts, for each key j, the gates from j up to the query
    itself; with every gate at 1 this is i - j + 1, the ordinary relative position (plus one)."""
    gates = gates.masked_fill(~mask, 0.0)
    positions = gates.flip(-1).cumsum(-1).flip(-1)
    return positions.clamp(max=npos_max - 1)


def interpolate_positions(position_logits: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """q_i·e[p_ij] for fractional p: linear interpolation between the integer embeddings' logits.

    position_logits (…, T, npos) holds q_i·e[n] for every integer n; computing those once and interpolating
    the logits is the same as interpolating the embeddings (the dot product is linear) and far cheaper."""
    floor = positions.floor()
    weight_ceil = positions - floor
    logit_floor = position_logits.gather(-1, floor.long())
    logit_ceil = position_logits.gather(-1, positions.ceil().long())
    return logit_ceil * weight_ceil + logit_floor * (1 - weight_ceil)


def diff_lambda_init(layer: int) -> float:
    """λ_init = 0.8 - 0.6·exp(-0.3·(l - 1)) for the l-th layer, counting from 1."""
    return 0.8 - 0.6 * math.exp(-0.3 * (layer - 1))


def diff_weights(scores_1: torch.Tensor, scores_2: torch.Tensor, lam: torch.Tensor | float,
                 mask: torch.Tensor) -> torch.Tensor:
    """Differential attention map softmax(S1) - λ softmax(S2); with λ = 0 it is plain softmax attention."""
    return softmax_weights(scores_1, mask) - lam * softmax_weights(scores_2, mask)


# ---- modules ----------------------------------------------------------------------------------------
class _Projections(nn.Module):
    """q, k, v and output projections, shared by every variant so parameter counts stay comparable."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not a multiple of n_heads {n_heads}")
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out = nn.Linear(d_model, d_model, bias=False)

    def split_heads(self, x: torch.Tensor, heads: int) -> tuple[torch.Tensor, ...]:
        """(B, T, 3·D) -> q, k, v each (B, heads, T, D/heads)."""
        batch, length, _ = x.shape
        return tuple(part.view(batch, length, heads, -1).transpose(1, 2) for part in x.chunk(3, dim=-1))

    def merge_heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, length, _ = x.shape
        return self.out(x.transpose(1, 2).reshape(batch, length, -1))


class RopeAttention(_Projections):
    """Causal softmax attention with standard RoPE on q and k."""

    def __init__(self, d_model: int, n_heads: int, rope_base: float = 10000.0, **_):
        super().__init__(d_model, n_heads)
        self.rope_base = rope_base

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.split_heads(self.qkv(x), self.n_heads)
        cos, sin = rope_tables(x.shape[1], self.head_dim, self.rope_base, x.device)
        q, k = rope_rotate(q, cos, sin), rope_rotate(k, cos, sin)
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)
        return self.merge_heads(softmax_weights(scores, causal_mask(x.shape[1], x.device)) @ v)


class CopeAttention(_Projections):
    """Causal softmax attention whose logits are q_i·k_j + q_i·e[p_ij] with contextual positions p_ij.

    With `use_rope`, q and k are also RoPE-rotated for the content term q_i·k_j (the 'cope+rope' variant);
    the gates and the position term keep the unrotated q and k, so positions count content, not offsets."""

    def __init__(self, d_model: int, n_heads: int, npos_max: int = 64, use_rope: bool = False,
                 rope_base: float = 10000.0, **_):
        super().__init__(d_model, n_heads)
        self.npos_max, self.use_rope, self.rope_base = npos_max, use_rope, rope_base
        # One learned vector per integer position, shared by the heads of the layer (as in the paper).
        self.position_embeddings = nn.Parameter(torch.randn(npos_max, self.head_dim) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.split_heads(self.qkv(x), self.n_heads)
        scale = 1 / math.sqrt(self.head_dim)
        mask = causal_mask(x.shape[1], x.device)
        content = q @ k.transpose(-1, -2) * scale
        positions = cope_positions(torch.sigmoid(content), mask, self.npos_max)
        position_term = interpolate_positions(q @ self.position_embeddings.T * scale, positions)
        if self.use_rope:
            cos, sin = rope_tables(x.shape[1], self.head_dim, self.rope_base, x.device)
            content = rope_rotate(q, cos, sin) @ rope_rotate(k, cos, sin).transpose(-1, -2) * scale
        return self.merge_heads(softmax_weights(content + position_term, mask) @ v)


class DiffAttention(_Projections):
    """Differential attention with RoPE: half as many heads, each with two q/k halves and a double-width v.

    Keeping the projection shapes of the other variants (n_heads/2 heads of 2·head_dim) keeps the parameter
    count the same, as the paper does against its Transformer baseline."""

    def __init__(self, d_model: int, n_heads: int, layer: int = 1, rope_base: float = 10000.0, **_):
        if n_heads % 2:
            raise ValueError(f"DIFF attention needs an even number of heads, got {n_heads}")
        super().__init__(d_model, n_heads)
        self.diff_heads, self.rope_base = n_heads // 2, rope_base
        self.lambda_init = diff_lambda_init(layer)
        self.lambda_q1, self.lambda_k1, self.lambda_q2, self.lambda_k2 = (
            nn.Parameter(torch.randn(self.head_dim) * 0.1) for _ in range(4))
        self.subln = nn.RMSNorm(2 * self.head_dim, eps=1e-5)

    def lam(self) -> torch.Tensor:
        return (torch.exp(self.lambda_q1 @ self.lambda_k1) - torch.exp(self.lambda_q2 @ self.lambda_k2)
                + self.lambda_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.split_heads(self.qkv(x), self.diff_heads)  # q, k: (B, h/2, T, 2·dh); v likewise
        cos, sin = rope_tables(x.shape[1], self.head_dim, self.rope_base, x.device)
        q1, q2 = (rope_rotate(part, cos, sin) for part in q.chunk(2, dim=-1))
        k1, k2 = (rope_rotate(part, cos, sin) for part in k.chunk(2, dim=-1))
        scale = 1 / math.sqrt(self.head_dim)
        weights = diff_weights(q1 @ k1.transpose(-1, -2) * scale, q2 @ k2.transpose(-1, -2) * scale,
                               self.lam(), causal_mask(x.shape[1], x.device))
        heads = self.subln(weights @ v) * (1 - self.lambda_init)
        return self.merge_heads(heads)


def make_attention(name: str, d_model: int, n_heads: int, *, layer: int, npos_max: int) -> nn.Module:
    """The attention module called `name` (one of ATTENTIONS) for the `layer`-th layer (from 1)."""
    if name == "rope":
        return RopeAttention(d_model, n_heads)
    if name in ("cope", "cope+rope"):
        return CopeAttention(d_model, n_heads, npos_max=npos_max, use_rope=name == "cope+rope")
    if name == "diff":
        return DiffAttention(d_model, n_heads, layer=layer)
    raise ValueError(f"unknown attention {name!r}; choose one of {', '.join(ATTENTIONS)}")
