"""SDPA for grouped-query attention that never copies the KV cache to match the query heads.

transformers' `sdpa` attention expands the keys and values with `repeat_kv` whenever a mask is given and
more than one query column is fed (on CPU and CUDA its `enable_gqa` path is taken only without a mask).
Our decode steps always carry a padding mask, and a step that verifies prompt-lookup drafts feeds several
columns: `repeat_kv` then copies every layer's whole cache each step (SmolLM2: 3x, measured 10 ms vs
2.9 ms per layer for 7 contexts x 1,700 columns x 5 query columns on 2 CPU cores).

Here the G query heads that share a KV head are folded into the query length instead: queries
`[B, Hkv*G, T, D]` become `[B, Hkv, G*T, D]`, the mask (shared by all heads) is repeated G times along
its rows, and one SDPA call attends each KV head once. The result is bit-identical to the expanded form.
Without a mask (a fresh causal prefill) the stock function already avoids the copy and is used as is.

`gqa_attention(model)` switches a transformers model to this implementation for a block of code.
"""

from __future__ import annotations

import contextlib

import torch
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import sdpa_mask

NAME = "gqa_folded_sdpa"


def gqa_folded_sdpa_forward(module, query, key, value, attention_mask, dropout: float = 0.0,
                            scaling: float | None = None, **kwargs):
    groups = getattr(module, "num_key_value_groups", 1)
    shared_mask = attention_mask is not None and attention_mask.dim() == 4 and attention_mask.shape[1] == 1
    if groups == 1 or not shared_mask or kwargs.get("softcap") is not None or kwargs.get("position_bias") is not None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    batch, heads, columns, dim = query.shape
    kv_heads = key.shape[1]
    folded_query = query.reshape(batch, kv_heads, groups * columns, dim)
    folded_mask = attention_mask.repeat(1, 1, groups, 1)  # row g*T + t is query column t for every group g
    out = torch.nn.functional.scaled_dot_product_attention(
        folded_query, key, value, attn_mask=folded_mask, dropout_p=dropout, scale=scaling)
    out = out.reshape(out.shape[0], heads, columns, value.shape[-1])
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(NAME, gqa_folded_sdpa_forward)
AttentionMaskInterface.register(NAME, sdpa_mask)


@contextlib.contextmanager
def gqa_attention(model):
    """Run `model`'s attention through `gqa_folded_sdpa_forward` inside the block (SDPA models only)."""
    config = model.config
    original = getattr(config, "_attn_implementation", None)
    if original != "sdpa":
        yield
        return
    config._attn_implementation = NAME
    try:
        yield
    finally:
        config._attn_implementation = original
