"""GrowingLayer: the same keys/values as transformers' DynamicLayer through appends, selection and crops."""

import pytest
import torch
from conftest import build_tiny_llama
from transformers.cache_utils import DynamicLayer

from buckets.growing_cache import GrowingLayer, growing_dynamic_cache


def _step(layers, length, batch=3):
    keys, values = torch.randn(batch, 2, length, 4), torch.randn(batch, 2, length, 4)
    return [layer.update(keys, values) for layer in layers]


def test_growing_layer_matches_dynamic_layer_through_appends_selects_and_crops():
    torch.manual_seed(0)
    grown, plain = GrowingLayer(), DynamicLayer()
    layers = (grown, plain)
    for length in (7, 1, 1, 3):
        (gk, gv), (pk, pv) = _step(layers, length)
        assert torch.equal(gk, pk) and torch.equal(gv, pv)
    buffer = grown._key_buffer
    _step(layers, 1)
    assert grown._key_buffer is buffer  # appended in place: no reallocation while capacity lasts
    for layer in layers:  # what the generator does when contexts finish and leading pad columns go
        layer.batch_select_indices(torch.tensor([0, 2]))
        layer.keys, layer.values = layer.keys[:, :, 2:], layer.values[:, :, 2:]
    for length in (1, 1, 200):
        (gk, gv), (pk, pv) = _step(layers, length, batch=2)
        assert torch.equal(gk, pk) and torch.equal(gv, pv)
    assert grown.capacity >= grown.keys.shape[-2] == plain.keys.shape[-2] == 11 + 202
    grown.reset()
    assert grown.capacity == 0 and grown.get_seq_length() == 0


def test_a_model_decodes_the_same_with_growing_and_dynamic_caches(tiny_tokenizer):
    from transformers import DynamicCache

    model = build_tiny_llama(tiny_tokenizer, init_range=0.3, seed=3)
    ids = torch.randint(3, len(tiny_tokenizer), (2, 9))
    outputs = []
    for cache in (growing_dynamic_cache(model.config), DynamicCache(config=model.config)):
        with torch.no_grad():
            logits = [model(ids, past_key_values=cache, use_cache=True).logits[:, -1]]
            for _ in range(5):
                logits.append(model(logits[-1].argmax(-1, keepdim=True), past_key_values=cache,
                                    use_cache=True).logits[:, -1])
        outputs.append(torch.stack(logits))
    assert isinstance(growing_dynamic_cache(model.config).layers[0], GrowingLayer)
    assert torch.allclose(outputs[0], outputs[1], atol=1e-6)


def _right_aligned(parts, width):
    """The reference layout: every part's rows right-aligned in `width` columns, zeros on the left."""
    return torch.cat([torch.nn.functional.pad(p, (0, 0, width - p.shape[-2], 0)) for p in parts])


def test_stacking_compacting_and_trimming_copy_only_what_moves_and_equal_the_reference_layout():
    torch.manual_seed(1)
    layer = GrowingLayer()
    first = torch.randn(2, 2, 40, 4)
    layer.update(first, first + 1)
    newcomer = DynamicLayer()
    newcomer.update(torch.randn(1, 2, 30, 4), torch.randn(1, 2, 30, 4))
    layer.append_rows(newcomer)  # no spare rows yet: one copy into buffers with room for more
    buffer = layer._key_buffer
    assert layer.row_capacity > 3

    wider = DynamicLayer()
    wider.update(torch.randn(1, 2, 45, 4), torch.randn(1, 2, 45, 4))
    layer.append_rows(wider)  # 5 columns wider: the left margin absorbs it
    expected = _right_aligned([first, newcomer.keys, wider.keys], 45)
    assert layer._key_buffer is buffer and torch.equal(layer.keys, expected)
    assert torch.equal(layer.values, _right_aligned([first + 1, newcomer.values, wider.values], 45))

    order = [0, 3, 2]  # row 1 finished: the last row moves into its place
    layer.batch_select_indices(torch.tensor(order))
    assert layer._key_buffer is buffer and torch.equal(layer.keys, expected[order])
    layer.drop_leading_columns(5)
    step = torch.randn(3, 2, 1, 4)
    keys, _ = layer.update(step, step)
    assert layer._key_buffer is buffer
    expected = torch.cat([expected[order][:, :, 5:], step], dim=2)
    assert torch.equal(keys, expected)

    spare_rows = layer.row_capacity
    long_step = torch.randn(3, 2, 500, 4)  # past the right margin: a copy that keeps the spare rows
    keys, _ = layer.update(long_step, long_step)
    assert layer._key_buffer is not buffer and layer.row_capacity == spare_rows
    expected = torch.cat([expected, long_step], dim=2)
    assert torch.equal(keys, expected)

    with pytest.raises(IndexError):  # a row past the window is an error, not a stale buffer row
        layer.batch_select_indices(torch.tensor([0, 3]))
    layer.batch_select_indices(torch.tensor([2, 0]))  # not a compaction: falls back to a copy, still right
    keys, _ = layer.update(step[:2], step[:2])
    assert torch.equal(keys, torch.cat([expected[[2, 0]], step[:2]], dim=2))


def test_compacting_order_keeps_survivors_in_place():
    from buckets.growing_cache import compacting_order

    assert compacting_order([0, 1, 2]) == [0, 1, 2]
    assert compacting_order([1, 2]) == [2, 1]
    assert compacting_order([3]) == [3]
    assert compacting_order([0, 1, 3, 4, 6]) == [0, 1, 6, 3, 4]


def test_newcomers_prefilled_into_spare_rows_are_adopted_without_a_copy():
    torch.manual_seed(2)
    layer = GrowingLayer(reserve_rows=6)
    first = torch.randn(2, 2, 40, 4)
    layer.update(first, first + 1)
    layer._key_buffer[2:] = float("nan")  # spare rows may hold an earlier context's KV: stale, not zeros
    layer._value_buffer[2:] = float("nan")
    assert layer.spare_rows_layer(5, 45) is None  # 2 + 5 rows: more than the buffer has
    assert layer.spare_rows_layer(2, layer._end + 1) is None  # wider than the columns left of the window's end

    placed = layer.spare_rows_layer(2, 45)  # 5 columns wider than the window
    prefix, suffix = torch.randn(2, 2, 30, 4), torch.randn(2, 2, 15, 4)
    placed.update(prefix, prefix + 1)
    keys, values = placed.update(suffix, suffix + 1)  # what a prefill after a cached prefix does
    assert torch.equal(keys, torch.cat([prefix, suffix], dim=2))
    assert keys.data_ptr() == layer._key_buffer[2, :, layer._end - 45].data_ptr()  # written in the batch's rows

    buffer = layer._key_buffer
    layer.append_rows(placed)
    assert layer._key_buffer is buffer
    assert torch.equal(layer.keys, _right_aligned([first, keys], 45))
    assert torch.equal(layer.values, _right_aligned([first + 1, values], 45))

    # The batch decoded a step before the merge: the placed rows no longer end at its last column, so they are copied.
    late = layer.spare_rows_layer(1, 20)
    late.update(suffix[:1, :, :10], suffix[:1, :, :10])
    late.update(suffix[:1, :, 10:], suffix[:1, :, 10:])
    step = torch.randn(4, 2, 1, 4)
    expected = torch.cat([layer.keys, step], dim=2)
    layer.update(step, step)
    layer.append_rows(late)
    assert torch.equal(layer.keys, _right_aligned([expected, suffix[:1]], 46))
