"""A transformers `DynamicCache` whose layers append into spare capacity instead of re-concatenating.

`DynamicLayer.update` runs ``torch.cat([keys, new], dim=-2)`` on every decode step, so each step copies
the whole cache of every layer. With 8 contexts x 1.5k tokens on SmolLM2 that is ~0.55 GB read and
written per step, comparable to reading the weights: batched decoding on CPU pays for it twice. A
`GrowingLayer` keeps a buffer with room to spare, writes new tokens in place and exposes the filled
prefix as a view; the buffer grows geometrically, so copies happen O(log n) times.

Anything that replaces `layer.keys` from outside (batch selection, cropping leading columns) simply
leaves the buffer behind: the next `update` sees the view no longer starts the buffer and copies into
a fresh one. Results are bit-identical to `DynamicLayer` (same values, same layout, only strides differ).

>>> import torch
>>> layer = GrowingLayer()
>>> _ = layer.update(torch.zeros(1, 2, 5, 4), torch.zeros(1, 2, 5, 4))
>>> keys, _ = layer.update(torch.ones(1, 2, 1, 4), torch.ones(1, 2, 1, 4))
>>> keys.shape[-2], layer.capacity >= 6
(6, True)
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

MIN_SPARE = 64  # tokens of head room on the first allocation (a typical reasoning step's output)


class GrowingLayer(DynamicLayer):
    """`DynamicLayer` with amortised O(1) appends; see the module docstring."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._key_buffer: torch.Tensor | None = None
        self._value_buffer: torch.Tensor | None = None

    @property
    def capacity(self) -> int:
        return 0 if self._key_buffer is None else self._key_buffer.shape[-2]

    def _owns_prefix(self, needed: int) -> bool:
        """True when `self.keys`/`self.values` are still the leading views of our buffers with room left."""
        buffers = (self._key_buffer, self._value_buffer)
        if buffers[0] is None or needed > self.capacity:
            return False
        for view, buffer in zip((self.keys, self.values), buffers):
            if (view.data_ptr() != buffer.data_ptr() or view.shape[:2] != buffer.shape[:2]
                    or view.shape[-1] != buffer.shape[-1] or view.stride() != buffer.stride()):
                return False
        return True

    def _regrow(self, needed: int, like: torch.Tensor) -> None:
        length = self.keys.shape[-2] if self.keys.numel() else 0
        capacity = needed + max(MIN_SPARE, needed // 2)
        shape = (*like.shape[:2], capacity, like.shape[-1])
        key_buffer = like.new_empty(shape)
        value_buffer = like.new_empty(shape)
        if length:
            key_buffer[..., :length, :] = self.keys
            value_buffer[..., :length, :] = self.values
        self._key_buffer, self._value_buffer = key_buffer, value_buffer

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        length = self.keys.shape[-2] if self.keys.numel() else 0
        needed = length + key_states.shape[-2]
        if length == 0 or not self._owns_prefix(needed):
            self._regrow(needed, key_states)
        self._key_buffer[..., length:needed, :] = key_states
        self._value_buffer[..., length:needed, :] = value_states
        self.keys = self._key_buffer[..., :needed, :]
        self.values = self._value_buffer[..., :needed, :]
        return self.keys, self.values

    def reset(self) -> None:
        self._key_buffer = self._value_buffer = None
        super().reset()


def stacked_layer(parts: list[DynamicLayer], width: int) -> GrowingLayer:
    """One `GrowingLayer` holding the rows of `parts` in order, each right-aligned in `width` columns.

    Columns left of a part's own length are zeros (attention masks them; zeros rather than garbage so a
    masked score times a value can never be NaN). One copy into a buffer with spare capacity, which is what
    continuous batching needs when contexts join a batch in flight.
    """
    filled = [part for part in parts if part.is_initialized and part.keys.numel()]
    if not filled:
        raise ValueError("stacked_layer needs at least one non-empty layer")
    like = filled[0].keys
    rows = sum(part.keys.shape[0] for part in filled)
    capacity = width + max(MIN_SPARE, width // 2)
    shape = (rows, like.shape[1], capacity, like.shape[-1])
    layer = GrowingLayer()
    layer.lazy_initialization(like, filled[0].values)
    layer._key_buffer, layer._value_buffer = like.new_empty(shape), like.new_empty(shape)
    start = 0
    for part in filled:
        stop, length = start + part.keys.shape[0], part.keys.shape[-2]
        if length > width:
            raise ValueError(f"a part of {length} columns does not fit in {width}")
        for buffer, source in ((layer._key_buffer, part.keys), (layer._value_buffer, part.values)):
            buffer[start:stop, :, : width - length].zero_()
            buffer[start:stop, :, width - length : width] = source
        start = stop
    layer.keys = layer._key_buffer[..., :width, :]
    layer.values = layer._value_buffer[..., :width, :]
    return layer


def growing_dynamic_cache(config) -> DynamicCache:
    """A `DynamicCache` for `config` whose plain (full-attention) layers are `GrowingLayer`s."""
    cache = DynamicCache(config=config)
    cache.layers = [GrowingLayer() if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache
