"""A transformers `DynamicCache` whose layers are windows into buffers with room to spare.

`DynamicLayer.update` runs ``torch.cat([keys, new], dim=-2)`` on every decode step, so each step copies
the whole cache of every layer. With 8 contexts x 1.5k tokens on SmolLM2 that is ~0.55 GB read and
written per step, comparable to reading the weights: batched decoding on CPU pays for it twice.
Continuous batching adds two more whole-cache copies per model call: stacking a newcomer under the
contexts in flight, and dropping a finished context's rows.

A `GrowingLayer` keeps its keys and values as the window ``buffer[:rows, :, start:end]`` of buffers
with spare rows, spare columns on the right (decode steps write new tokens in place) and spare columns
on the left (a wider newcomer widens the window there). So:

- `update` appends in place; the buffer grows geometrically, so copies happen O(log n) times;
- `append_rows` stacks a newcomer right-aligned into the spare rows, copying only the newcomer, or nothing when
  the newcomer was prefilled straight into those rows (`spare_rows_layer`, `in_spare_rows`);
- `batch_select_indices` with an order that keeps survivors in place and moves rows from the tail into the
  holes (`compacting_order`) copies only the moved rows;
- `drop_leading_columns` narrows the window without copying.

When there is no room left, the window is copied into fresh buffers with new margins. A layer may also be
told to reserve rows up front (`reserve_rows`): on CPU a buffer's pages are only backed when first written,
so rows reserved for contexts that will join later cost nothing until they do, while regrowing a batch
copies every row in flight into freshly faulted memory (on a 2-core VM, 3-4 s per regrowth of 12-18
rows x 1.4k tokens x 30 layers of the default model with 6 buckets). Anything that
replaces `layer.keys` from outside (transformers' own cache methods) simply leaves the buffer behind: the
next operation sees the window is no longer the one it handed out and copies into a fresh buffer.
Values are bit-identical to `DynamicLayer`'s (same values, same layout, only strides differ).

>>> import torch
>>> layer = GrowingLayer()
>>> _ = layer.update(torch.zeros(1, 2, 5, 4), torch.zeros(1, 2, 5, 4))
>>> keys, _ = layer.update(torch.ones(1, 2, 1, 4), torch.ones(1, 2, 1, 4))
>>> keys.shape[-2], layer.capacity >= 6
(6, True)
"""

from __future__ import annotations

import copy

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

MIN_SPARE = 64  # tokens of head room on the first allocation (a typical reasoning step's output)
LEFT_MARGIN, RIGHT_MARGIN = 4, 2  # a regrown buffer's spare columns: width // 4 on the left, width // 2 on the right
SPARE_ROWS = 4  # a regrown buffer's spare rows: rows // 4 (at least the newcomer's)


def peak_buffer_tokens(rows: int, width: int) -> int:
    """The most token slots (rows x columns) a layer's key buffer holds for a `rows` x `width` window: the
    buffer with its spare rows and margins, plus the old window while a regrowth copies it.
    `buckets.memory_budget` sizes batches with it."""
    if rows <= 0 or width <= 0:
        return 0
    columns = width + max(MIN_SPARE, width // LEFT_MARGIN) + max(MIN_SPARE, width // RIGHT_MARGIN) + 1
    return (rows + max(1, rows // SPARE_ROWS)) * columns + rows * width


def _same_storage(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def compacting_order(keep: list[int]) -> list[int]:
    """The rows to keep, ordered so that survivors stay where they are and the survivors beyond the new row
    count fill the holes left by dropped rows (the cheapest compaction: only those rows move).

    >>> compacting_order([0, 2, 3, 5])   # rows 1 and 4 go; row 5 moves into row 1's place
    [0, 5, 2, 3]
    """
    count = len(keep)
    kept = set(keep)
    holes = [row for row in range(count) if row not in kept]
    movers = [row for row in keep if row >= count]
    order = [row if row in kept else -1 for row in range(count)]
    for hole, mover in zip(holes, movers):
        order[hole] = mover
    return order


class GrowingLayer(DynamicLayer):
    """`DynamicLayer` with amortised O(1) appends, cheap row stacking and compaction; see the module docstring."""

    def __init__(self, reserve_rows: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.reserve_rows = int(reserve_rows)  # the fewest rows any buffer of this layer gets
        self._key_buffer: torch.Tensor | None = None
        self._value_buffer: torch.Tensor | None = None
        self._rows = self._start = self._end = 0
        self._issued: tuple[torch.Tensor, torch.Tensor] | None = None  # the window as last handed out

    @property
    def capacity(self) -> int:
        """Columns the window can reach on the right without a copy (from the buffer's first column)."""
        return 0 if self._key_buffer is None else self._key_buffer.shape[-2]

    @property
    def row_capacity(self) -> int:
        return 0 if self._key_buffer is None else self._key_buffer.shape[0]

    @property
    def width(self) -> int:
        return self.keys.shape[-2] if self.is_initialized and self.keys.numel() else 0

    def _owns_window(self) -> bool:
        """True when `self.keys`/`self.values` are still the window this layer handed out."""
        return self._issued is not None and self.keys is self._issued[0] and self.values is self._issued[1]

    def _issue(self) -> None:
        window = (slice(0, self._rows), slice(None), slice(self._start, self._end))
        self.keys, self.values = self._key_buffer[window], self._value_buffer[window]
        self._issued = (self.keys, self.values)

    def _reallocate(self, width: int, like: torch.Tensor, *, row_capacity: int, incoming: int = 0) -> None:
        """Copy the current window into fresh buffers of `row_capacity` rows, right-aligned in a `width`-column
        window, with room for `incoming` more columns on the right and margins on both sides."""
        old_rows, old_width = (self.keys.shape[0], self.width) if self.width else (0, 0)
        total = width + incoming
        left, right = max(MIN_SPARE, total // LEFT_MARGIN), incoming + max(MIN_SPARE, total // RIGHT_MARGIN)
        shape = (max(row_capacity, old_rows), like.shape[1], left + width + right, like.shape[-1])
        try:
            reserved = (max(shape[0], self.reserve_rows), *shape[1:])
            key_buffer, value_buffer = like.new_empty(reserved), like.new_empty(reserved)
        except RuntimeError:  # a reservation the allocator refuses (strict overcommit): only the rows needed
            self.reserve_rows = 0
            key_buffer, value_buffer = like.new_empty(shape), like.new_empty(shape)
        start, end = left, left + width
        if old_width:
            for buffer, source in ((key_buffer, self.keys), (value_buffer, self.values)):
                buffer[:old_rows, :, start : end - old_width].zero_()
                buffer[:old_rows, :, end - old_width : end] = source
        self._key_buffer, self._value_buffer = key_buffer, value_buffer
        self._rows, self._start, self._end = old_rows, start, end

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        rows, new = key_states.shape[0], key_states.shape[-2]
        if self.width and rows != self.keys.shape[0]:
            raise ValueError(f"update with {rows} rows for a cache of {self.keys.shape[0]}")
        if (self._key_buffer is None or rows != self._rows or not self._owns_window()
                or self._end + new > self.capacity):
            self._reallocate(self.width, key_states, row_capacity=max(rows, self.row_capacity), incoming=new)
            self._rows = rows
        self._key_buffer[: self._rows, :, self._end : self._end + new] = key_states
        self._value_buffer[: self._rows, :, self._end : self._end + new] = value_states
        self._end += new
        self._issue()
        return self.keys, self.values

    def spare_rows_layer(self, rows: int, width: int) -> GrowingLayer | None:
        """An empty layer whose buffers are our `rows` spare rows just under the window, placed so that a
        `width`-column prefill into it ends at our window's last column: exactly where `append_rows` would copy
        those rows, which then only has to adopt them. None when the spare rows or the columns on the left are
        not there (the newcomers then prefill into buffers of their own and are copied)."""
        if not self.width or not self._owns_window() or self._rows + rows > self.row_capacity or width > self._end:
            return None
        layer = GrowingLayer()
        layer.lazy_initialization(self.keys, self.values)
        layer._key_buffer = self._key_buffer[self._rows : self._rows + rows]
        layer._value_buffer = self._value_buffer[self._rows : self._rows + rows]
        layer._rows, layer._start = rows, self._end - width
        layer._end = layer._start
        layer._issue()
        return layer

    def _in_spare_rows(self, other: DynamicLayer) -> bool:
        """True when `other` is a `spare_rows_layer` of ours, filled up to our window's last column and untouched
        since (its rows are already in place)."""
        return (isinstance(other, GrowingLayer) and other._owns_window() and self._owns_window()
                and other._end == self._end and self._rows + other._rows <= self.row_capacity
                and other._key_buffer.data_ptr() == self._key_buffer[self._rows].data_ptr()
                and other._value_buffer.data_ptr() == self._value_buffer[self._rows].data_ptr())

    def append_rows(self, other: DynamicLayer) -> None:
        """Stack `other`'s rows under ours, both right-aligned in the wider of the two widths (the narrower side's
        extra columns on the left are zeros, so a masked score times a value is never NaN). Rows prefilled in
        place (`spare_rows_layer`) are adopted without a copy."""
        if not other.is_initialized or not other.keys.numel():
            return
        if self.width and self._in_spare_rows(other):
            self._adopt(other)
            return
        if not self.is_initialized:
            self.lazy_initialization(other.keys, other.values)
        sources = (other.keys, other.values)
        if self._key_buffer is not None and any(_same_storage(source, buffer) for source in sources
                                                 for buffer in (self._key_buffer, self._value_buffer)):
            sources = (other.keys.clone(), other.values.clone())  # our spare rows, out of place: may overlap
        rows, new_rows, other_width = self.keys.shape[0] if self.width else 0, other.keys.shape[0], other.keys.shape[-2]
        width = max(self.width, other_width)
        widen = width - self.width
        fits = (self.width and self._owns_window() and rows + new_rows <= self.row_capacity
                and widen <= self._start)
        if not fits:  # spare rows for the next newcomers: continuous batching admits one context at a time
            self._reallocate(width, other.keys, row_capacity=rows + new_rows + max(new_rows, rows // SPARE_ROWS))
        elif widen:
            for buffer in (self._key_buffer, self._value_buffer):
                buffer[:rows, :, self._start - widen : self._start].zero_()
            self._start -= widen
        for buffer, source in zip((self._key_buffer, self._value_buffer), sources):
            buffer[rows : rows + new_rows, :, self._start : self._end - other_width].zero_()
            buffer[rows : rows + new_rows, :, self._end - other_width : self._end] = source
        self._rows = rows + new_rows
        self._issue()

    def _adopt(self, other: GrowingLayer) -> None:
        """Take in `other`'s rows, which already sit right under ours and end at our last column: only the columns
        left of either window are zeroed (the buffer's spare rows may hold an earlier context's KV)."""
        rows, new_rows = self._rows, other._rows
        start = min(self._start, other._start)
        for buffer in (self._key_buffer, self._value_buffer):
            buffer[:rows, :, start : self._start].zero_()
            buffer[rows : rows + new_rows, :, start : other._start].zero_()
        self._start, self._rows = start, rows + new_rows
        self._issue()

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep rows `indices` in that order. In place (moving only the rows that change place) when every row
        either stays or comes from past the new row count, as `compacting_order` arranges; else a copy."""
        if not self.width:
            return
        order = [int(i) for i in indices]
        in_place = (self._owns_window() and all(0 <= src < self._rows for src in order)
                    and all(src == dst or src >= len(order) for dst, src in enumerate(order)))
        if not in_place:
            super().batch_select_indices(indices)
            return
        for dst, src in enumerate(order):
            if src != dst:
                for buffer in (self._key_buffer, self._value_buffer):
                    buffer[dst, :, self._start : self._end] = buffer[src, :, self._start : self._end]
        self._rows = len(order)
        self._issue()

    def drop_leading_columns(self, count: int) -> None:
        """Drop the window's first `count` columns (no copy)."""
        if count <= 0 or not self.width:
            return
        if not self._owns_window():
            self.keys, self.values = self.keys[:, :, count:], self.values[:, :, count:]
            return
        self._start = min(self._start + count, self._end)
        self._issue()

    def reset(self) -> None:
        self._key_buffer = self._value_buffer = self._issued = None
        self._rows = self._start = self._end = 0
        super().reset()


def growing_dynamic_cache(config, reserve_rows: int = 0) -> DynamicCache:
    """A `DynamicCache` for `config` whose plain (full-attention) layers are `GrowingLayer`s, each buffer with
    at least `reserve_rows` rows."""
    cache = DynamicCache(config=config)
    cache.layers = [GrowingLayer(reserve_rows) if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


def in_spare_rows(cache: DynamicCache, rows: int, width: int) -> DynamicCache | None:
    """A cache for prefilling `rows` rows of `width` columns straight into the spare rows of `cache`'s layers
    (`GrowingLayer.spare_rows_layer`), or None when a layer has no room for them or is of another kind."""
    layers = [layer.spare_rows_layer(rows, width) if type(layer) is GrowingLayer else None for layer in cache.layers]
    if any(layer is None for layer in layers):
        return None
    placed = copy.copy(cache)  # the same kind of cache (and config), holding the placed layers
    placed.layers = layers
    return placed
