"""Per-row rotary position embeddings: each batch row can carry its own RoPE base.

A `RopeSpec` describes everything about a model's RoPE except the base (head dim, `rope_type`,
linear position-interpolation factor). `inverse_frequencies(base, spec)` is the one source of the
scaled per-frequency inverse frequencies (and the cos/sin attention factor) for a base.
`cos_sin_table(base, spec, length, dtype, device)` builds the `[length, head_dim]` cos/sin tables
ONCE per (base, spec, dtype, device) and caches them; a longer request grows the cached table
(doubling), it is never rebuilt per step or per layer. `PerRowRotary` is a drop-in for a
transformers Llama `rotary_emb` module: it returns cos/sin of shape `[rows, T, head_dim]` gathered
from the cached tables of each row's bucket.

Supported `rope_type`s, each giving bucket k what a model whose config has ``rope_theta = b_k``
computes:

- ``default``; ``linear`` (position interpolation: ``inv_freq / factor``, computed here);
- ``llama3`` and ``yarn`` (static per-frequency rescaling; YaRN also scales cos/sin by its
  attention factor), computed by transformers' own init function on a copy of the config with the
  base swapped, so the frequencies follow transformers exactly;
- ``dynamic`` (dynamic NTK): within ``max_position_embeddings`` the plain frequencies; beyond it
  transformers recomputes them with an enlarged base for the longest sequence of the forward (the
  whole batch shares it) and keeps them until a forward fits the original length again.
  `DynamicNtkLength` follows that rule; `PerRowRotary` then computes cos/sin from the enlarged
  frequencies instead of the cached tables.

Anything else (``longrope``, ``proportional``, ...) raises a ValueError naming the supported types.

>>> spec = RopeSpec(head_dim=8)
>>> cos, sin = cos_sin_table(10000.0, spec, length=4)     # at least 4 rows (the model's max by default)
>>> cos.shape[0] >= 4, cos.shape[1], float(cos[0, 0])
(True, 8, 1.0)
>>> cos_sin_table(10000.0, spec, length=4)[0] is cos          # cached, not rebuilt
True
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3", "yarn", "dynamic")
# Types whose frequencies transformers' own init functions compute from the config (base swapped in).
_TRANSFORMERS_COMPUTED = ("llama3", "yarn", "dynamic")


@dataclass(frozen=True)
class RopeSpec:
    """A model's RoPE apart from the base. `factor` is the linear position-interpolation ratio
    (``rope_type="linear"``); `config` is kept (out of equality) only for types whose frequencies
    transformers computes (``llama3``, ``yarn``, ``dynamic``); `params_key` tells those apart."""

    head_dim: int
    rope_type: str = "default"
    factor: float = 1.0
    attention_scaling: float = 1.0
    max_position_embeddings: int = 2048
    config: Any = field(default=None, compare=False, hash=False, repr=False)
    # Hashable copy of the type-specific parameters, so specs that differ only there do not share tables.
    params_key: tuple = ()

    def __post_init__(self) -> None:
        if self.rope_type not in SUPPORTED_ROPE_TYPES:
            raise ValueError(
                f"rope_type {self.rope_type!r} is not supported for Attention Buckets; supported: "
                f"{', '.join(SUPPORTED_ROPE_TYPES)}. Serve this model without buckets, or use a config "
                f"whose rope_parameters (rope_scaling) has one of these types"
            )
        if self.rope_type in _TRANSFORMERS_COMPUTED and self.config is None:
            raise ValueError(
                f"RopeSpec(rope_type={self.rope_type!r}) needs the model config (its frequencies come from "
                f"transformers); build it with rope_spec_from_config(config)"
            )
        if self.head_dim % 2:
            raise ValueError(f"head_dim must be even for RoPE, got {self.head_dim}")

    @property
    def position_scale(self) -> float:
        """The linear position-interpolation ratio (1.0 when positions are not scaled)."""
        return self.factor if self.rope_type == "linear" else 1.0


def rope_parameters(config) -> dict:
    """The model's RoPE parameters as a flat dict with at least ``rope_type`` and ``rope_theta``."""
    params = getattr(config, "rope_parameters", None)
    if params is None:  # older configs: top-level rope_theta / rope_scaling
        params = dict(getattr(config, "rope_scaling", None) or {})
        params.setdefault("rope_theta", getattr(config, "rope_theta", 10000.0))
    params = dict(params)
    if "rope_theta" not in params:
        raise ValueError(
            "the model config has per-layer-type RoPE parameters (e.g. sliding and full attention); "
            "Attention Buckets supports models with one rope_parameters dict"
        )
    params.setdefault("rope_type", params.pop("type", "default"))
    return params


def config_head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def rope_spec_from_config(config) -> RopeSpec:
    """Read a transformers config into a `RopeSpec` (raises ValueError for unsupported RoPE types)."""
    params = rope_parameters(config)
    rope_type = params["rope_type"]
    if float(params.get("partial_rotary_factor", 1.0)) != 1.0:
        raise ValueError("partial rotary embeddings (partial_rotary_factor != 1) are not supported for buckets")
    extra = tuple(sorted((k, repr(v)) for k, v in params.items() if k not in ("rope_theta", "rope_type")))
    return RopeSpec(
        head_dim=config_head_dim(config),
        rope_type=rope_type,
        factor=float(params.get("factor", 1.0)) if rope_type == "linear" else 1.0,
        max_position_embeddings=int(getattr(config, "max_position_embeddings", 2048)),
        config=config if rope_type in _TRANSFORMERS_COMPUTED else None,
        params_key=extra,
    )


def inverse_frequencies(base: float, spec: RopeSpec, *, seq_len: int | None = None) -> tuple[Tensor, float]:
    """`(inv_freq [head_dim/2] float32, attention_scaling)` for one base, matching transformers bit for bit.

    `seq_len` matters only to ``dynamic``: the frequencies transformers uses once a forward's longest
    sequence is `seq_len` tokens (None: within ``max_position_embeddings``, the plain frequencies).
    """
    dim = spec.head_dim
    if spec.rope_type in ("default", "linear"):
        inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(torch.float) / dim))
        if spec.rope_type == "linear":
            inv_freq = inv_freq / spec.factor
        return inv_freq, spec.attention_scaling
    # llama3, yarn, dynamic: transformers' init function on a copy of the config with the base swapped.
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    config = _config_with_base(spec, float(base))
    if seq_len is None:
        inv_freq, scaling = ROPE_INIT_FUNCTIONS[spec.rope_type](config, None)
    else:
        # A 0-d int64 tensor, as transformers passes `max(position_ids) + 1`: its arithmetic then runs in
        # float32 like the model's own, not in Python floats.
        length = torch.tensor(int(seq_len), dtype=torch.int64)
        inv_freq, scaling = ROPE_INIT_FUNCTIONS[spec.rope_type](config, None, seq_len=length)
    return inv_freq.float(), float(scaling)


@functools.lru_cache(maxsize=256)
def _config_with_base(spec: RopeSpec, base: float):
    """A copy of the spec's config whose base is `base`, made once: dynamic NTK asks for new frequencies at every
    decode step past the original length, and copying a config costs more than computing them."""
    config = copy.deepcopy(spec.config)
    config.rope_parameters = {**rope_parameters(config), "rope_theta": base}
    return config


class DynamicNtkLength:
    """The sequence length whose frequencies a dynamic-NTK rotary module uses, updated per forward.

    transformers' rule (`dynamic_rope_update`): a forward whose longest sequence (over the whole batch)
    exceeds the length in use grows it to that sequence; a forward that fits within the original
    ``max_position_embeddings`` while a grown length is in use resets it; otherwise it stays. At the
    original length the frequencies are the plain ones.

    >>> ntk = DynamicNtkLength(16)
    >>> [ntk.observe(n) for n in (10, 20, 18, 25, 16, 12, 14)]
    [16, 20, 20, 25, 25, 16, 16]
    """

    def __init__(self, original: int) -> None:
        self.original = int(original)
        self.length = self.original

    def observe(self, seq_len: int) -> int:
        """Update with a forward's `max(position_ids) + 1`; returns the length whose frequencies it uses."""
        if seq_len > self.length:
            self.length = int(seq_len)
        elif seq_len < self.original < self.length:
            self.length = self.original
        return self.length

    @property
    def scaled(self) -> bool:
        return self.length > self.original


_TABLES: dict[tuple, tuple[Tensor, Tensor]] = {}
_TABLES_LOCK = threading.Lock()


def _round_up_length(length: int) -> int:
    return 1 << max(0, int(length) - 1).bit_length()


def cos_sin_table(
    base: float,
    spec: RopeSpec,
    length: int | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, Tensor]:
    """Cached `(cos, sin)`, each `[L, head_dim]` with `L >= length` (default: max positions).

    Computed in float32 as transformers does (`position * inv_freq`, then cos/sin, times the
    attention scaling) and cast to `dtype` once.
    """
    device = torch.device(device)
    needed = int(length if length is not None else spec.max_position_embeddings)
    key = (float(base), spec, dtype, device)
    with _TABLES_LOCK:
        cached = _TABLES.get(key)
        if cached is not None and cached[0].shape[0] >= needed:
            return cached
        size = max(_round_up_length(needed), spec.max_position_embeddings)
        inv_freq, scaling = inverse_frequencies(float(base), spec)
        positions = torch.arange(size, dtype=torch.int64, device=device).float()
        freqs = positions[:, None] * inv_freq.to(device)[None, :]
        angles = torch.cat((freqs, freqs), dim=-1)
        table = ((angles.cos() * scaling).to(dtype), (angles.sin() * scaling).to(dtype))
        _TABLES[key] = table
        return table


def clear_table_cache() -> None:
    """Drop every cached cos/sin table and config copy (tests; or to free memory after switching models)."""
    with _TABLES_LOCK:
        _TABLES.clear()
    _config_with_base.cache_clear()


class PerRowRotary(nn.Module):
    """Replacement for a Llama `rotary_emb`: row `r` of the batch uses base `bases[row_bucket[r]]`.

    `forward(x, position_ids)` returns `(cos, sin)` shaped `[rows, T, head_dim]` in `x.dtype`,
    gathered from one stacked `[N, L, head_dim]` table, so a step costs one gather, not a rebuild.
    Dynamic NTK past the original length is the exception: there the frequencies change with the
    sequence length, so cos/sin are computed from them per forward, as transformers does.
    """

    def __init__(
        self,
        bases: Sequence[float],
        spec: RopeSpec,
        *,
        dtype: torch.dtype,
        device: torch.device | str,
    ) -> None:
        super().__init__()
        self.bases = tuple(float(b) for b in bases)
        self.spec = spec
        self.dtype = dtype
        self.device = torch.device(device)
        self.row_bucket: Tensor | None = None
        self._stack(spec.max_position_embeddings)
        # dynamic NTK only: the length in use (shared by all rows, as the batch shares one module in
        # transformers) and the enlarged frequencies for it, `[N, head_dim/2]`
        self._ntk = DynamicNtkLength(spec.max_position_embeddings) if spec.rope_type == "dynamic" else None
        self._ntk_freqs: tuple[int, Tensor, Tensor] | None = None

    def _stack(self, length: int) -> None:
        tables = [cos_sin_table(b, self.spec, length, self.dtype, self.device) for b in self.bases]
        size = min(cos.shape[0] for cos, _ in tables)  # cached tables may have grown by different amounts
        self._cos = torch.stack([cos[:size] for cos, _ in tables])  # [N, L, D]
        self._sin = torch.stack([sin[:size] for _, sin in tables])

    def set_rows(self, row_bucket: Tensor) -> None:
        """Set which bucket each batch row uses (a long tensor `[rows]` of indices into `bases`)."""
        self.row_bucket = row_bucket.to(self.device)

    def forward(self, x: Tensor, position_ids: Tensor) -> tuple[Tensor, Tensor]:
        if self.row_bucket is None:
            raise RuntimeError("PerRowRotary.set_rows() must be called before the forward")
        needed = int(position_ids.max()) + 1
        if self._ntk is not None:
            self._ntk.observe(needed)
            if self._ntk.scaled:
                return self._enlarged_ntk(position_ids, self._ntk.length)
        if needed > self._cos.shape[1]:
            self._stack(needed)  # rare: a context longer than the model's declared maximum
        rows = self.row_bucket[:, None].expand_as(position_ids)
        return self._cos[rows, position_ids], self._sin[rows, position_ids]

    def _enlarged_ntk(self, position_ids: Tensor, length: int) -> tuple[Tensor, Tensor]:
        """cos/sin from each row's dynamic-NTK frequencies for a sequence of `length` tokens."""
        if self._ntk_freqs is None or self._ntk_freqs[0] != length:
            pairs = [inverse_frequencies(b, self.spec, seq_len=length) for b in self.bases]
            inv_freq = torch.stack([f for f, _ in pairs]).to(self.device)
            scaling = torch.tensor([s for _, s in pairs], dtype=torch.float32, device=self.device)
            self._ntk_freqs = (length, inv_freq, scaling)
        _, inv_freq, scaling = self._ntk_freqs
        # Same float32 operations as transformers' rotary forward: position * inv_freq, cos/sin, times scaling.
        freqs = position_ids[..., None].float() * inv_freq[self.row_bucket][:, None, :]
        angles = torch.cat((freqs, freqs), dim=-1)
        row_scaling = scaling[self.row_bucket][:, None, None]
        return (angles.cos() * row_scaling).to(self.dtype), (angles.sin() * row_scaling).to(self.dtype)
