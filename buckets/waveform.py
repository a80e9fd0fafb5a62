"""The RoPE attention "waveform": how much attention a query can give a key at relative distance m.

With rotary position embeddings, the pre-softmax score between a query and a key that are both all-ones
vectors depends only on their distance m. Each of the d/2 rotated 2-D pairs contributes 2*cos(m*theta_j),
so the score is

    f(m; b) = (1/sqrt(d)) * sum_{j=0}^{d/2-1} 2*cos(m * theta_j(b)),   theta_j(b) = b^(-2j/d).

This is the upper bound used by Attention Buckets (Chen et al., arXiv 2312.04455) to find the distances
where a model with RoPE base b under-attends (troughs) or over-attends (peaks). f(0) = sqrt(d).

Frequencies. Without `rope`, theta_j(b) = b^(-2j/d) as above: the official method's formula, which is what
our committed tables in results/buckets/ use. With `rope` (a `buckets.rope.RopeSpec` read from the model's
config), theta_j(b) are the model's own inverse frequencies for base b after its RoPE scaling (llama3, YaRN,
dynamic NTK, linear), from `buckets.rope.inverse_frequencies`, the function the bucketed forward uses; so a
base means the same thing in the search and in the forward. YaRN's attention factor multiplies every cos and
sin equally: it rescales the whole curve and moves no peak or trough, so it is left out (the detector's
absolute tolerances then see curves of the usual height).

Axes. RoPE rotates by the *effective* position, which is the token distance divided by the linear
position-interpolation ratio `position_scale` (ToolLLaMA runs with ratio 2, so 8,192 tokens map to
effective positions 0..4096). `attention_upper_bound` takes token distances and divides by the scale.
Everything downstream (windows, peaks, troughs, tolerances in `buckets.extrema` and `buckets.search`)
works on the effective axis, as the official code does: the official window [1000, 4090] is effective
positions, i.e. token distances 2000..8180 for ToolLLaMA. With no interpolation (scale 1) the two axes
are the same. A `rope` brings its own scale (its linear factor; 1 for the other types, whose scaling acts
per frequency, so their effective positions are token distances). `effective_to_tokens` /
`tokens_to_effective` convert.

>>> round(float(attention_upper_bound(0, 10000)), 4)
11.3137
>>> attention_upper_bound([0, 1, 2], [10000, 20000]).shape
(2, 3)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_HEAD_DIM = 128
# Positions are processed in chunks so that a long range never builds a (positions x d/2) array
# larger than about 8 MiB at d=128.
_CHUNK_POSITIONS = 16_384


def inverse_frequencies(base: float, head_dim: int) -> np.ndarray:
    """theta_j = base^(-2j/d) for j = 0 .. d/2-1, float64 (the unscaled RoPE inverse frequencies).

    >>> inverse_frequencies(10000, 4)
    array([1.  , 0.01])
    """
    _check_head_dim(head_dim)
    _check_base(base)
    exponents = -2.0 * np.arange(head_dim // 2, dtype=np.float64) / head_dim
    return np.power(np.float64(base), exponents)


def model_inverse_frequencies(base: float, rope: Any, *, seq_len: int | None = None) -> np.ndarray:
    """The model's inverse frequencies for `base` after its RoPE scaling, per effective position (float64).

    `rope` is a `buckets.rope.RopeSpec`; the values are `buckets.rope.inverse_frequencies(base, rope)` (float32,
    as the forward uses them) times the linear interpolation ratio, which moves them to the effective axis.
    `seq_len` reaches dynamic NTK only (its frequencies for a sequence that long).
    """
    from buckets import rope as rope_module

    _check_base(base)
    if seq_len is None:
        inv_freq, _attention_factor = rope_module.inverse_frequencies(float(base), rope)
    else:
        inv_freq, _attention_factor = rope_module.inverse_frequencies(float(base), rope, seq_len=seq_len)
    return inv_freq.double().numpy() * float(rope.position_scale)


def waveform_axis(head_dim: int | None, position_scale: float | None, rope: Any = None) -> tuple[int, float]:
    """(head_dim, position_scale) to use: the given ones, else the rope's, else 128 and 1.

    Given values must agree with `rope`: a search or plot must not mix one model's frequencies with
    another's head size or interpolation ratio.
    """
    if rope is None:
        head_dim = DEFAULT_HEAD_DIM if head_dim is None else head_dim
        position_scale = 1.0 if position_scale is None else position_scale
    else:
        if head_dim is not None and head_dim != rope.head_dim:
            raise ValueError(
                f"head_dim {head_dim} does not match the model's RoPE (head_dim {rope.head_dim}); leave "
                f"head_dim out when passing the model's RoPE"
            )
        if position_scale is not None and float(position_scale) != float(rope.position_scale):
            raise ValueError(
                f"position_scale {position_scale} does not match the model's RoPE (linear ratio "
                f"{rope.position_scale}); leave position_scale out when passing the model's RoPE"
            )
        head_dim, position_scale = rope.head_dim, float(rope.position_scale)
    _check_head_dim(head_dim)
    if not position_scale > 0:
        raise ValueError(f"position_scale must be > 0, got {position_scale}")
    return head_dim, position_scale


def waveform_frequencies(
    base: float, head_dim: int | None = None, rope: Any = None, *, seq_len: int | None = None
) -> np.ndarray:
    """The frequencies of the curve for `base`, per effective position: the model's with `rope`, else plain."""
    head_dim, _ = waveform_axis(head_dim, None, rope)
    if rope is None:
        return inverse_frequencies(base, head_dim)
    return model_inverse_frequencies(base, rope, seq_len=seq_len)


def attention_upper_bound(
    distances: float | Sequence[float] | np.ndarray,
    base: float | Sequence[float] | np.ndarray,
    head_dim: int | None = None,
    position_scale: float | None = None,
    *,
    rope: Any = None,
) -> np.ndarray:
    """f(m / position_scale; base) for each token distance m (float64).

    `distances` is a scalar or 1-D array of token distances; `base` a scalar (result shape
    `distances.shape`) or a sequence of bases (result shape `(len(bases), len(distances))`).
    `position_scale` is the linear position-interpolation ratio (2 for ToolLLaMA): the curve is
    evaluated at the effective position m / position_scale. `head_dim` defaults to 128 and
    `position_scale` to 1, or to the values of `rope` (the model's RoPE, see the module docstring).

    >>> f = attention_upper_bound(np.arange(0, 9), 10000, head_dim=128, position_scale=2.0)
    >>> bool(np.allclose(f[::2], attention_upper_bound(np.arange(0, 5), 10000)))
    True
    """
    head_dim, position_scale = waveform_axis(head_dim, position_scale, rope)
    positions = np.asarray(distances, dtype=np.float64) / position_scale
    bases = np.asarray(base, dtype=np.float64)
    if bases.ndim > 1:
        raise ValueError("base must be a number or a 1-D sequence of numbers")
    if bases.ndim == 0:
        return _curve(positions, waveform_frequencies(float(bases), head_dim, rope))
    out = np.empty((bases.size,) + positions.shape)
    for row, one_base in enumerate(bases):
        out[row] = _curve(positions, waveform_frequencies(float(one_base), head_dim, rope))
    return out


def window_curve(low: int, high: int, theta: np.ndarray) -> np.ndarray:
    """f at every integer effective position low..high (inclusive) for inverse frequencies `theta`.

    The same values as `attention_upper_bound` (to about 1e-11), much faster over long windows: writing
    m = low + a*B + r, cos(m*theta) = cos((low + a*B)*theta) * cos(r*theta) - sin(...) * sin(r*theta), so the
    sum over frequencies is two matrix products of (about sqrt(count) x d/2) tables instead of count x d/2
    cosines. A 100,000-position window at d=128 takes milliseconds instead of a tenth of a second.

    >>> theta = inverse_frequencies(10000, 128)
    >>> bool(np.allclose(window_curve(1000, 1010, theta), attention_upper_bound(np.arange(1000, 1011), 10000)))
    True
    """
    count = int(high) - int(low) + 1
    if count < 1:
        raise ValueError(f"empty window {low}..{high}")
    theta = np.asarray(theta, dtype=np.float64)
    block = int(np.ceil(np.sqrt(count)))
    starts = np.float64(low) + block * np.arange(-(-count // block), dtype=np.float64)
    offsets = np.arange(block, dtype=np.float64)
    start_angles, offset_angles = np.outer(starts, theta), np.outer(offsets, theta)
    grid = np.cos(start_angles) @ np.cos(offset_angles).T - np.sin(start_angles) @ np.sin(offset_angles).T
    return grid.reshape(-1)[:count] * (2.0 / np.sqrt(2 * theta.size))


def effective_to_tokens(positions, position_scale: float = 1.0) -> np.ndarray:
    """Effective RoPE positions -> token distances (multiply by the interpolation ratio)."""
    return np.asarray(positions, dtype=np.float64) * position_scale


def tokens_to_effective(distances, position_scale: float = 1.0) -> np.ndarray:
    """Token distances -> effective RoPE positions (divide by the interpolation ratio)."""
    return np.asarray(distances, dtype=np.float64) / position_scale


def _curve(positions: np.ndarray, theta: np.ndarray) -> np.ndarray:
    flat = positions.reshape(-1)
    out = np.empty_like(flat)
    for start in range(0, flat.size, _CHUNK_POSITIONS):
        chunk = flat[start : start + _CHUNK_POSITIONS]
        out[start : start + chunk.size] = np.cos(np.outer(chunk, theta)).sum(axis=1)
    return (out * (2.0 / np.sqrt(2 * theta.size))).reshape(positions.shape)


def _check_base(base: float) -> None:
    if not base > 1:
        raise ValueError(f"RoPE base must be > 1, got {base}")


def _check_head_dim(head_dim: int) -> None:
    if head_dim < 2 or head_dim % 2:
        raise ValueError(f"head_dim must be an even integer >= 2, got {head_dim}")
