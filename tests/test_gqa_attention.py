"""The copy-free GQA attention equals transformers' expanded form, and generators switch to it only while serving."""

import torch
from transformers.integrations.sdpa_attention import repeat_kv

from buckets import attention
from buckets.generation import BucketedGenerator


class _Module:
    num_key_value_groups = 3
    is_causal = True


def test_folded_groups_equal_repeated_keys_and_values_under_a_padding_mask():
    torch.manual_seed(0)
    batch, kv_heads, columns, width, dim = 2, 2, 5, 40, 8
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
