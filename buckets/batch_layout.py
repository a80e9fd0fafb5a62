"""Where contexts in flight sit in one batch: tensor book-keeping for bucketed decoding, no model calls.

Rows are context-major: row ``i * N + k`` is context i under bucket k, in a transformers `DynamicCache`
whose layers grow in place (`buckets.growing_cache`).

Padding layout. Each context's sequence is ``[pad | cached prefix | pad | new suffix]``: cached
prefix KV (from the `PrefixCache`) is right-aligned in the first ``max_cached`` columns and the new
tokens right-aligned after it, so the last input column is every context's last prompt token. The
2-D attention mask marks real tokens and position ids come from its cumsum, so holes change
nothing but a little wasted compute.

New contexts are prefilled in a batch of their own, then stacked under the contexts already decoding
(`merge`), the narrower side padded on the left. A decode step appends a column per fed token (`feed`);
draft columns the model did not confirm become holes (`keep_fed`). Finished contexts leave (`select`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from transformers.cache_utils import DynamicCache

from buckets.growing_cache import GrowingLayer, compacting_order
from buckets.prefix_cache import LayerKV


@dataclass
class Batch:
    """Contexts in flight: `contexts[i]` owns rows ``i*N .. i*N+N-1`` of `cache`; `mask` is `[contexts, width]`
    and `last_positions` holds the position of each context's last fed token."""

    contexts: list  # the caller's per-context records, in row order
    cache: DynamicCache
    mask: Tensor
    last_positions: Tensor


def prefill_width(prefixes: Sequence[tuple[int, list[LayerKV] | None]], suffixes: Sequence[Sequence[int]]) -> int:
    """The KV columns a prefill of `suffixes` after their cached `prefixes` fills: the longest prefix, then the
    longest suffix (the layout `prefill_inputs` writes)."""
    return max(length for length, _ in prefixes) + max(map(len, suffixes))


def prefill_inputs(cache: DynamicCache, prefixes: Sequence[tuple[int, list[LayerKV] | None]],
                   suffixes: Sequence[Sequence[int]], n: int, pad_id: int, device: torch.device):
    """`(mask, positions, input_ids)` for prefilling `suffixes`, after writing each context's cached prefix
    (`(length, per-layer KV)`) right-aligned into the first columns of the empty `cache`."""
    cached = [length for length, _ in prefixes]
    max_cached, max_suffix = max(cached), max(len(s) for s in suffixes)
    width = prefill_width(prefixes, suffixes)
    mask = torch.zeros(len(suffixes), width, dtype=torch.long)
    input_ids = torch.full((len(suffixes), max_suffix), pad_id, dtype=torch.long)
    for i, (c, suffix) in enumerate(zip(cached, suffixes)):
        mask[i, max_cached - c : max_cached] = 1
        mask[i, width - len(suffix) :] = 1
        input_ids[i, max_suffix - len(suffix) :] = torch.tensor(suffix, dtype=torch.long)
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)[:, max_cached:]
    if max_cached > 0 and len(prefixes) == 1:  # one context: its prefix goes into the cache as it is
        for layer_idx, (k, v) in enumerate(prefixes[0][1]):
            cache.update(k[:, :, :max_cached], v[:, :, :max_cached], layer_idx)
    elif max_cached > 0:
        template = next(kv for _, kv in prefixes if kv is not None)
        for layer_idx, (k0, v0) in enumerate(template):
            keys = k0.new_zeros(len(suffixes) * n, k0.shape[1], max_cached, k0.shape[3])
            values = v0.new_zeros(len(suffixes) * n, v0.shape[1], max_cached, v0.shape[3])
            for i, (c, kv) in enumerate(prefixes):
                if kv is None:
                    continue
                k, v = kv[layer_idx]
                keys[i * n : (i + 1) * n, :, max_cached - c :] = k[:, :, :c]
                values[i * n : (i + 1) * n, :, max_cached - c :] = v[:, :, :c]
            cache.update(keys, values, layer_idx)
    return mask.to(device), positions.to(device), input_ids.to(device)


def feed(batch: Batch, fed: Sequence[list[int]], pad_id: int) -> tuple[Tensor, Tensor]:
    """`(input_ids, positions)` of a decode step that feeds context i the tokens `fed[i]` (its chosen token, then
    its draft) and pads after them up to the longest; the mask grows by as many columns. Pads follow a context's
    real columns, so causal attention keeps them out of every column that counts."""
    columns = max(map(len, fed))
    padded = [tokens + [pad_id] * (columns - len(tokens)) for tokens in fed]
    input_ids = torch.tensor(padded, dtype=torch.long, device=batch.mask.device)
    batch.mask = torch.cat([batch.mask, batch.mask.new_ones(len(fed), columns)], dim=1)
    offsets = torch.arange(1, columns + 1, device=batch.last_positions.device)
    return input_ids, batch.last_positions[:, None] + offsets


def keep_fed(batch: Batch, kept: Sequence[int], columns: int) -> None:
    """After a decode step that fed `columns` columns: context i keeps its first `kept[i]`; the rest become
    holes in the mask, which the layout tolerates (positions come from the mask)."""
    width = batch.mask.shape[1]
    kept_t = torch.tensor(kept, device=batch.mask.device)
    if columns > 1:
        fed_column = torch.arange(columns, device=batch.mask.device)
        batch.mask[:, width - columns :] *= (fed_column[None, :] < kept_t[:, None]).to(batch.mask.dtype)
    batch.last_positions = batch.last_positions + kept_t.to(batch.last_positions.device)


def merge(first: Batch, second: Batch) -> Batch:
    """One batch holding both batches' contexts: `second`'s rows are stacked under `first`'s in `first`'s
    cache (in place where it has room), the narrower side padded on the left (mask 0)."""
    width = max(first.mask.shape[1], second.mask.shape[1])
    masks = [torch.nn.functional.pad(b.mask, (width - b.mask.shape[1], 0)) for b in (first, second)]
    for layer, incoming in zip(growing_layers(first.cache), second.cache.layers):
        layer.append_rows(incoming)
    return Batch(first.contexts + second.contexts, first.cache, torch.cat(masks),
                 torch.cat([first.last_positions, second.last_positions]))


def select(batch: Batch, keep: list[int], n: int) -> Batch:
    """The batch of contexts `keep`, without the leading columns none of them uses. Survivors keep their rows
    except those past the new count, which move into the freed rows (`compacting_order`), so only the moved
    rows are copied."""
    device = batch.mask.device
    order = compacting_order(keep)
    batch.cache.batch_select_indices(torch.tensor([r * n + k for r in order for k in range(n)], device=device))
    order_t = torch.tensor(order, device=device)
    mask = batch.mask.index_select(0, order_t)
    used = mask.any(dim=0).nonzero()
    start = int(used[0]) if len(used) else 0
    if start > 0:
        mask = mask[:, start:]
        for layer in growing_layers(batch.cache):
            layer.drop_leading_columns(start)
    return Batch([batch.contexts[r] for r in order], batch.cache, mask, batch.last_positions.index_select(0, order_t))


def context_kv(batch: Batch, row: int, n: int) -> list[LayerKV]:
    """A copy of context `row`'s KV, real columns only, per layer `[N, kv_heads, real tokens, head_dim]`."""
    columns = batch.mask[row].nonzero().squeeze(-1)
    kv = []
    for layer in batch.cache.layers:  # a model spread over devices (device_map) keeps each layer's KV on its own
        on_device = columns.to(layer.keys.device)
        kv.append((layer.keys[row * n : (row + 1) * n].index_select(2, on_device),
                   layer.values[row * n : (row + 1) * n].index_select(2, on_device)))
    return kv


def growing_layers(cache: DynamicCache) -> list[GrowingLayer]:
    """`cache.layers`, any layer of the model's own kind (plain decoding: a sliding-window layer, say) first
    copied into a `GrowingLayer`, which batches can stack into and compact."""
    for index, layer in enumerate(cache.layers):
        if not isinstance(layer, GrowingLayer):
            grown = GrowingLayer()
            grown.append_rows(layer)
            cache.layers[index] = grown
    return cache.layers
