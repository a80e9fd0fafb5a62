"""The RoPE attention "waveform": how much attention a query can give a key at relative distance m.

With rotary position embeddings, the pre-softmax score between a query and a key that are both all-ones
vectors depends only on their distance m. Each of the d/2 rotated 2-D pairs contributes 2*cos(m*theta_j),
so the score is

    f(m; b) = (1/sqrt(d)) * sum_{j=0}^{d/2-1} 2*cos(m * theta_j(b)),   theta_j(b) = b^(-2j/d).

This is the upper bound used by Attention Buckets (Chen et al., arXiv 2312.04455) to find the distances
where a model with RoPE base b under-attends (troughs) or over-attends (peaks). f(0) = sqrt(d).

Axes. RoPE rotates by the *effective* position, which is the token distance divided by the linear
position-interpolation ratio `position_scale` (ToolLLaMA runs with ratio 2, so 8,192 tokens map to
effective positions 0..4096). `attention_upper_bound` takes token distances and divides by the scale.
Everything downstream (windows, peaks, troughs, tolerances in `buckets.extrema` and `buckets.search`)
works on the effective axis, as the official code does: the official window [1000, 4090] is effective
positions, i.e. token distances 2000..8180 for ToolLLaMA. With no interpolation (scale 1) the two axes
are the same. `effective_to_tokens` / `tokens_to_effective` convert.

>>> round(float(attention_upper_bound(0, 10000)), 4)
11.3137
>>> attention_upper_bound([0, 1, 2], [10000, 20000]).shape
(2, 3)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Positions are processed in chunks so that a long range never builds a (positions x d/2) array
# larger than about 8 MiB at d=128.
_CHUNK_POSITIONS = 16_384


def inverse_frequencies(base: float, head_dim: int) -> np.ndarray:
    """theta_j = base^(-2j/d) for j = 0 .. d/2-1, float64 (the RoPE inverse frequencies).

    >>> inverse_frequencies(10000, 4)
    array([1.  , 0.01])
    """
    _check_head_dim(head_dim)
    if not base > 1:
        raise ValueError(f"RoPE base must be > 1, got {base}")
    exponents = -2.0 * np.arange(head_dim // 2, dtype=np.float64) / head_dim
    return np.power(np.float64(base), exponents)


def attention_upper_bound(
    distances: float | Sequence[float] | np.ndarray,
    base: float | Sequence[float] | np.ndarray,
    head_dim: int = 128,
    position_scale: float = 1.0,
) -> np.ndarray:
    """f(m / position_scale; base) for each token distance m (float64).

    `distances` is a scalar or 1-D array of token distances; `base` a scalar (result shape
    `distances.shape`) or a sequence of bases (result shape `(len(bases), len(distances))`).
    `position_scale` is the linear position-interpolation ratio (2 for ToolLLaMA): the curve is
    evaluated at the effective position m / position_scale.

    >>> f = attention_upper_bound(np.arange(0, 9), 10000, head_dim=128, position_scale=2.0)
    >>> bool(np.allclose(f[::2], attention_upper_bound(np.arange(0, 5), 10000)))
    True
    """
    _check_head_dim(head_dim)
    if not position_scale > 0:
        raise ValueError(f"position_scale must be > 0, got {position_scale}")
    positions = np.asarray(distances, dtype=np.float64) / position_scale
    bases = np.asarray(base, dtype=np.float64)
    if bases.ndim > 1:
        raise ValueError("base must be a number or a 1-D sequence of numbers")
    if bases.ndim == 0:
        return _curve(positions, float(bases), head_dim)
    out = np.empty((bases.size,) + positions.shape)
    for row, one_base in enumerate(bases):
        out[row] = _curve(positions, float(one_base), head_dim)
    return out


def effective_to_tokens(positions, position_scale: float = 1.0) -> np.ndarray:
    """Effective RoPE positions -> token distances (multiply by the interpolation ratio)."""
    return np.asarray(positions, dtype=np.float64) * position_scale


def tokens_to_effective(distances, position_scale: float = 1.0) -> np.ndarray:
    """Token distances -> effective RoPE positions (divide by the interpolation ratio)."""
    return np.asarray(distances, dtype=np.float64) / position_scale


def _curve(positions: np.ndarray, base: float, head_dim: int) -> np.ndarray:
    theta = inverse_frequencies(base, head_dim)
    flat = positions.reshape(-1)
    out = np.empty_like(flat)
    for start in range(0, flat.size, _CHUNK_POSITIONS):
        chunk = flat[start : start + _CHUNK_POSITIONS]
        out[start : start + chunk.size] = np.cos(np.outer(chunk, theta)).sum(axis=1)
    return (out * (2.0 / np.sqrt(head_dim))).reshape(positions.shape)


def _check_head_dim(head_dim: int) -> None:
    if head_dim < 2 or head_dim % 2:
        raise ValueError(f"head_dim must be an even integer >= 2, got {head_dim}")
