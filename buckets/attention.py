"""SDPA for grouped-query attention that never copies the KV cache to match the query heads.

transformers' `sdpa` attention expands the keys and values with `repeat_kv` whenever a mask is given and
more than one query column is fed (on CPU and CUDA its `enable_gqa` path is taken only without a mask).
Our decode steps always carry a padding mask, and a step that verifies prompt-lookup drafts feeds several
columns: `repeat_kv` then copies every layer's whole cache each step (SmolLM2: 3x, measured 10 ms vs
2.9 ms per layer for 7 contexts x 1,700 columns x 5 query columns on 2 CPU cores).

Here the G query heads that share a KV head are folded into the query length instead: queries
`[B, Hkv*G, T, D]` become `[B, Hkv, G*T, D]`, the mask (shared by all heads) is repeated G times along
its rows, and one SDPA call attends each KV head once. A float32 one-column step on CPU (a plain decode
step) instead calls SDPA with `enable_gqa=True`, which the CPU kernel serves without copies too and which
is faster there for one column (7 contexts x 1,900 columns, 30 layers: 44 ms vs 57 ms) but slower for
several (3 columns: 91 ms vs 56 ms). In bfloat16 the CPU kernel is slow for a single query row per head
(1 thread, 6 rows x 600 cached columns, SmolLM2's 9/3 heads: 3.3 ms per layer with `enable_gqa` vs 0.40
ms folded; a 6-bucket decode step of the default model went from 153 ms to 50 ms), so there every step
is folded. CUDA's SDPA takes `enable_gqa` with a mask only in its math backend, so on GPUs every step is
folded. Both forms give the expanded form's values. A one-column step without a mask (one context,
nothing padded) is folded as well; a multi-column step without one is a fresh causal prefill, which the
stock function serves without copies, and is left to it.

A prefill after a cached prefix (one context: every row sees the whole prefix, then the new tokens
causally) carries a mask, so SDPA serves it with its masked kernel. On CPU it is split instead: the queries
attend the prefix unmasked (folded) and the new tokens with the causal kernel, and the two halves are
combined with their log-sum-exps, which is the same softmax (6 rows, 366 cached + 1,019 new tokens, SmolLM2,
bf16, 1 thread: 291 -> 243 ms per layer).

The mask is converted once per forward, not once per layer: transformers hands every layer the same
mask tensor, so the first layer turns it into SDPA's additive form (0 where attended, -inf elsewhere, in
the query dtype, which is what SDPA itself does with a boolean mask in every call), repeated for folding,
and the other layers reuse it. On 2 CPU cores the per-layer conversion cost ~0.25 s of a 1.2 s prefill of
900 tokens after 800 cached ones, and a boolean mask makes each decode-step attention call ~10% slower.

`gqa_attention(model)` switches a transformers model to this implementation for a block of code.
"""

from __future__ import annotations

import contextlib

import torch
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import sdpa_mask

NAME = "gqa_folded_sdpa"

# (mask tensor, groups, dtype, additive mask) of the latest forward. The mask tensor is held so
# that its identity cannot be reused by another tensor while the entry lives.
_latest_mask: tuple | None = None


def additive_mask(attention_mask: torch.Tensor, groups: int, dtype: torch.dtype) -> torch.Tensor:
    """`attention_mask` `[B, 1, T, S]` as SDPA's additive mask repeated `groups` times along its rows
    (`[B, 1, groups*T, S]`, for folded queries; 1: as is); the result for the same mask object is reused
    until another mask comes."""
    global _latest_mask
    latest = _latest_mask  # one read: another thread may replace the entry meanwhile
    if latest is not None and latest[0] is attention_mask and latest[1] == groups and latest[2] == dtype:
        return latest[3]
    if attention_mask.dtype == torch.bool:
        additive = torch.zeros(attention_mask.shape, dtype=dtype, device=attention_mask.device)
        additive.masked_fill_(~attention_mask, float("-inf"))
    else:
        additive = attention_mask.to(dtype)
    folded = additive.repeat(1, 1, groups, 1)  # row g*T + t is query column t for every group g
    _latest_mask = (attention_mask, groups, dtype, folded)
    return folded


# The CPU flash kernel with its log-sum-exp (a private ATen op; absent in other builds, then nothing is split).
_flash_with_lse = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
SPLIT_MIN_COLUMNS = 16  # fewer new tokens: the masked kernel is as fast, and decode steps never split

# (mask tensor, cached prefix length or None) of the latest forward, as for `_latest_mask`.
_latest_prefix: tuple | None = None


def prefix_then_causal(attention_mask: torch.Tensor | None) -> int | None:
    """The cached prefix length P when boolean `attention_mask` `[B, 1, T, P+T]` lets every row's query t see
    exactly columns ``0 .. P+t`` (a whole prefix, then the new tokens causally: one unpadded context), else
    None; the answer for the same mask object is reused until another mask comes."""
    global _latest_prefix
    latest = _latest_prefix
    if latest is not None and latest[0] is attention_mask:
        return latest[1]
    prefix = None
    if attention_mask is not None and attention_mask.dtype == torch.bool and attention_mask.dim() == 4:
        columns, width = attention_mask.shape[-2:]
        if width > columns:
            expected = torch.ones(columns, width, dtype=torch.bool, device=attention_mask.device).tril(width - columns)
            if torch.equal(attention_mask, expected.expand_as(attention_mask)):
                prefix = width - columns
    _latest_prefix = (attention_mask, prefix)
    return prefix


def split_prefix_attention(query, key, value, prefix: int, scaling: float | None):
    """Attention of `query` `[B, H, T, D]` over `prefix` cached columns (all visible) and T new ones (causal),
    as two flash calls merged by their log-sum-exps; returns `[B, T, H, D]` like the attention functions."""
    batch, heads, columns, dim = query.shape
    kv_heads = key.shape[1]
    groups = heads // kv_heads
    folded = query.reshape(batch, kv_heads, groups * columns, dim)
    seen, seen_lse = _flash_with_lse(folded, key[:, :, :prefix], value[:, :, :prefix], 0.0, False, scale=scaling)
    new_key, new_value = key[:, :, prefix:], value[:, :, prefix:]
    if groups > 1:  # the causal kernel has no GQA: the new tokens' K/V (a small part) are repeated
        new_key, new_value = new_key.repeat_interleave(groups, 1), new_value.repeat_interleave(groups, 1)
    fresh, fresh_lse = _flash_with_lse(query, new_key, new_value, 0.0, True, scale=scaling)
    seen_lse = seen_lse.reshape(batch, heads, columns)
    top = torch.maximum(seen_lse, fresh_lse)
    seen_weight, fresh_weight = (seen_lse - top).exp_().unsqueeze(-1), (fresh_lse - top).exp_().unsqueeze(-1)
    out = seen.reshape(batch, heads, columns, dim).float() * seen_weight + fresh.float() * fresh_weight
    out = out.div_(seen_weight + fresh_weight).to(query.dtype)
    return out.transpose(1, 2).contiguous()


def gqa_folded_sdpa_forward(module, query, key, value, attention_mask, dropout: float = 0.0,
                            scaling: float | None = None, **kwargs):
    groups = getattr(module, "num_key_value_groups", 1)
    batch, heads, columns, dim = query.shape
    if (columns >= SPLIT_MIN_COLUMNS and query.device.type == "cpu" and _flash_with_lse is not None
            and not dropout and kwargs.get("softcap") is None and kwargs.get("position_bias") is None):
        prefix = prefix_then_causal(attention_mask)
        if prefix is not None:
            return split_prefix_attention(query, key, value, prefix, scaling), None
    # A one-column step without a mask (one context, nothing padded) has nothing to be causal about: folded too.
    shared_mask = attention_mask is not None and attention_mask.dim() == 4 and attention_mask.shape[1] == 1
    unmasked_step = attention_mask is None and columns == 1
    if (groups == 1 or not (shared_mask or unmasked_step) or kwargs.get("softcap") is not None
            or kwargs.get("position_bias") is not None):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    if columns == 1 and query.device.type == "cpu" and query.dtype == torch.float32:
        mask = None if attention_mask is None else additive_mask(attention_mask, 1, query.dtype)
        out = torch.nn.functional.scaled_dot_product_attention(
            query, key, value, attn_mask=mask, dropout_p=dropout, scale=scaling, enable_gqa=True)
        return out.transpose(1, 2).contiguous(), None
    kv_heads = key.shape[1]
    folded_query = query.reshape(batch, kv_heads, groups * columns, dim)
    folded_mask = None if attention_mask is None else additive_mask(attention_mask, groups, query.dtype)
    out = torch.nn.functional.scaled_dot_product_attention(
        folded_query, key, value, attn_mask=folded_mask, dropout_p=dropout, scale=scaling)
    out = out.reshape(out.shape[0], heads, columns, value.shape[-1])
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(NAME, gqa_folded_sdpa_forward)
AttentionMaskInterface.register(NAME, sdpa_mask)


@contextlib.contextmanager
def sdpa_model_attention(model, implementation: str):
    """Run an SDPA `model`'s attention as `implementation` (a name transformers' `AttentionInterface` knows)
    inside the block; a model with another attention implementation runs as it is."""
    config = model.config
    original = getattr(config, "_attn_implementation", None)
    if original != "sdpa":
        yield
        return
    config._attn_implementation = implementation
    try:
        yield
    finally:
        config._attn_implementation = original


def gqa_attention(model):
    """Run `model`'s attention through `gqa_folded_sdpa_forward` inside the block (SDPA models only)."""
    return sdpa_model_attention(model, NAME)
