"""The copy-free GQA attention equals transformers' expanded form, and generators switch to it only while serving."""

import pytest
import torch
from transformers.integrations.sdpa_attention import repeat_kv

from buckets import attention
from buckets.generation import BucketedGenerator


class _Module:
    num_key_value_groups = 3
    is_causal = True


@pytest.mark.parametrize("columns", [1, 5], ids=["decode-step-enable-gqa", "several-columns-folded"])
def test_folded_groups_equal_repeated_keys_and_values_under_a_padding_mask(columns):
    torch.manual_seed(0)
    batch, kv_heads, width, dim = 2, 2, 40, 8
    query = torch.randn(batch, kv_heads * 3, columns, dim)
    key, value = torch.randn(batch, kv_heads, width, dim), torch.randn(batch, kv_heads, width, dim)
    mask = torch.ones(batch, 1, columns, width, dtype=torch.bool).tril(width - columns)
    mask[0, ..., :7] = False  # left padding of the first row
    mask[1, ..., 20:23] = False  # a hole (rejected draft columns)
    out, _ = attention.gqa_folded_sdpa_forward(_Module(), query, key, value, mask, scaling=0.3)
    expected = torch.nn.functional.scaled_dot_product_attention(
        query, repeat_kv(key, 3), repeat_kv(value, 3), attn_mask=mask, scale=0.3).transpose(1, 2)
    assert out.shape == (batch, columns, kv_heads * 3, dim)
    assert torch.allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("masked", [True, False], ids=["padding-mask", "no-mask"])
def test_a_one_column_step_equals_the_expanded_form(dtype, masked, monkeypatch):
    """bfloat16 steps on CPU are folded (SDPA's enable_gqa path costs ~8x there); a step of one unpadded
    context (no mask) is folded too instead of falling back to transformers' copying `repeat_kv`."""
    torch.manual_seed(2)
    query = torch.randn(4, 6, 1, 16, dtype=dtype)
    key, value = (torch.randn(4, 2, 70, 16, dtype=dtype) for _ in range(2))
    mask = None
    if masked:
        mask = torch.ones(4, 1, 1, 70, dtype=torch.bool)
        mask[1, ..., :9] = False
    calls = []
    monkeypatch.setattr(attention, "sdpa_attention_forward", lambda *a, **k: calls.append(a) or (None, None))
    out, _ = attention.gqa_folded_sdpa_forward(_Module(), query, key, value, mask)
    expected = torch.nn.functional.scaled_dot_product_attention(
        query.float(), repeat_kv(key, 3).float(), repeat_kv(value, 3).float(), attn_mask=mask).transpose(1, 2)
    assert not calls and out.shape == (4, 1, 6, 16)
    assert torch.allclose(out.float(), expected, atol=1e-6 if dtype == torch.float32 else 2e-2)


def test_an_unmasked_prefill_keeps_the_stock_causal_path(monkeypatch):
    calls = []
    monkeypatch.setattr(attention, "sdpa_attention_forward", lambda *a, **k: calls.append(a) or ("stock", None))
    query, key = torch.randn(1, 6, 5, 8), torch.randn(1, 2, 5, 8)
    assert attention.gqa_folded_sdpa_forward(_Module(), query, key, key, None)[0] == "stock" and len(calls) == 1


def test_the_additive_mask_is_built_once_per_mask_and_gives_bit_identical_bfloat16_outputs():
    torch.manual_seed(1)
    query = torch.randn(3, 6, 4, 16, dtype=torch.bfloat16)
    key, value = (torch.randn(3, 2, 50, 16, dtype=torch.bfloat16) for _ in range(2))
    mask = torch.rand(3, 1, 4, 50) > 0.3
    mask[0, 0, 0] = False  # a fully masked row
    out, _ = attention.gqa_folded_sdpa_forward(_Module(), query, key, value, mask)
    expected = torch.nn.functional.scaled_dot_product_attention(
        query, repeat_kv(key, 3), repeat_kv(value, 3), attn_mask=mask).transpose(1, 2)
    assert torch.equal(out, expected)  # SDPA turns a boolean mask into the same additive one itself

    first = attention.additive_mask(mask, 3, torch.bfloat16)
    assert attention.additive_mask(mask, 3, torch.bfloat16) is first  # the next layer reuses it
    assert first.shape == (3, 1, 12, 50) and first.dtype == torch.bfloat16
    assert torch.equal(first[:, :, 4:8], first[:, :, :4]) and torch.isinf(first[~mask.repeat(1, 1, 3, 1)]).all()
    fresh = mask.clone()  # the next forward's mask is another tensor, even with equal values
    assert attention.additive_mask(fresh, 3, torch.bfloat16) is not first
    assert attention.additive_mask(fresh, 3, torch.float32).dtype == torch.float32


def test_generators_use_it_only_while_serving(divergent_llama, tiny_tokenizer, monkeypatch):
    seen = []
    real = attention.gqa_folded_sdpa_forward

    def spy(module, query, *args, **kwargs):
        seen.append(query.shape[2])
        return real(module, query, *args, **kwargs)

    monkeypatch.setitem(attention.AttentionInterface._global_mapping, attention.NAME, spy)
    assert divergent_llama.config._attn_implementation == "sdpa"
    BucketedGenerator(divergent_llama, tiny_tokenizer).generate(["The quick brown fox"], max_new_tokens=3)
    assert seen and divergent_llama.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("groups", [1, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_prefill_after_a_cached_prefix_is_split_and_equals_the_masked_form(groups, dtype, monkeypatch):
    """One context's prefill after a cached prefix: the prefix attended unmasked, the new tokens causally, the
    halves merged by log-sum-exp; the same attention as the masked kernel's, up to rounding."""
    if attention._flash_with_lse is None:
        pytest.skip("this torch build has no CPU flash kernel with log-sum-exp")
    torch.manual_seed(3)
    module = type("Module", (), {"num_key_value_groups": groups, "is_causal": True})()
    rows, kv_heads, prefix, columns, dim = 3, 2, 50, 24, 16
    query = torch.randn(rows, kv_heads * groups, columns, dim, dtype=dtype)
    key, value = (torch.randn(rows, kv_heads, prefix + columns, dim, dtype=dtype) for _ in range(2))
    mask = torch.ones(rows, 1, columns, prefix + columns, dtype=torch.bool).tril(prefix)
    calls = []
    split = attention.split_prefix_attention
    monkeypatch.setattr(attention, "split_prefix_attention", lambda *a: calls.append(a[3]) or split(*a))
    out, _ = attention.gqa_folded_sdpa_forward(module, query, key, value, mask, scaling=0.25)
    expected = torch.nn.functional.scaled_dot_product_attention(
        query.float(), repeat_kv(key.float(), groups), repeat_kv(value.float(), groups), attn_mask=mask,
        scale=0.25).transpose(1, 2)
    assert calls == [prefix] and out.dtype == dtype and out.shape == expected.shape
    assert torch.allclose(out.float(), expected, atol=1e-5 if dtype == torch.float32 else 2e-2)


def test_only_an_exact_prefix_then_causal_mask_is_split():
    rows, prefix, columns = 2, 30, 20
    mask = torch.ones(rows, 1, columns, prefix + columns, dtype=torch.bool).tril(prefix)
    assert attention.prefix_then_causal(mask) == prefix
    padded = mask.clone()
    padded[1, ..., :4] = False  # a left-padded second context: the masked kernel serves it
    holed = mask.clone()
    holed[0, ..., prefix - 3] = False  # a hole in one prefix
    for other in (padded, holed, mask[..., prefix:], mask.float(), None):
        assert attention.prefix_then_causal(other) is None
