"""Attention Buckets inside one vLLM model: `BucketLlamaForCausalLM` and `BucketQwen2ForCausalLM`,
small variations of vLLM's Llama.

Select one per engine on an unmodified checkpoint (`buckets.vllm_architectures.bucket_architecture`
says which, and refuses every other architecture by name)::

    LLM(model_dir, hf_overrides={"architectures": ["BucketLlamaForCausalLM"],
                                 "bucket_rope_thetas": [1e4, 1.75e4, 2.5e4], "bucket_fusion": "max_logit"})

`BucketLlamaForCausalLM` serves Llama and full-attention Mistral checkpoints; `BucketQwen2ForCausalLM`
is the same model with Qwen2's attention, whose q/k/v projections carry a bias (o_proj does not).
Both are registered by `register()`, which vLLM calls in every process (front end, engine core,
workers) through the ``vllm.general_plugins`` entry point ``bucket_llama`` of this distribution;
registration is a lazy ``"module:Class"`` string, so loading the plugin imports nothing heavy.

How N buckets live in one model (every bucket is the same token stream under another RoPE base):

- **Hidden states** are carried as ``[T*N, hidden]``, token-major (row ``t*N + k`` is token t in
  bucket k). Norms, MLP, ``qkv_proj`` and ``o_proj`` are row-wise, so they are the unmodified
  Llama layers and the weights load once (no N x weight memory).
- **RoPE**: one cos/sin cache of ``N x max_position`` rows (bucket k's table at rows
  ``k*max_position ...``), applied in one kernel call with positions ``pos + k*max_position``.
  Every layer shares the one cache, as vLLM's layers share `get_rope`'s.
- **Attention**: one `Attention` layer with ``N*H`` query heads and ``N*KV`` KV heads; q/k/v are
  viewed ``[T, N*H*D]`` so bucket k owns heads ``k*H ... k*H+H-1``. GQA maps query head ``k*H+h``
  to KV head ``k*KV + h // (H/KV)``: buckets never read each other's keys. vLLM sizes the paged
  KV cache from this layer (N x heads); one block table serves all buckets (they share positions),
  so prefix caching and chunked prefill work unchanged.
- **Logits**: `forward` returns ``[T, N*hidden]``; `compute_logits` runs the LM head on the
  ``[R*N, hidden]`` view and fuses the ``[R, N, V]`` logits with `buckets.fusion.fuse` (the same
  function the transformers engine uses) into one normalised log-distribution per row, which is
  what vLLM samples from and reports as logprobs.

N=1 (no ``bucket_rope_thetas``, or one base) is the plain model: the fused output is skipped and
the raw logits are returned. Unsupported: pipeline parallelism, speculative decoding (EAGLE), and
batch-sharded sampling (these classes deliberately have no ``compute_logits_local``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import ClassVar

from buckets.vllm_architectures import BUCKET_ARCHITECTURES, LLAMA, QWEN2, check_served

ARCHITECTURE = LLAMA  # the Llama class (kept for callers that name one architecture)


def register() -> None:
    """Entry point of ``vllm.general_plugins``: make the bucket models known to vLLM (lazily)."""
    from vllm import ModelRegistry

    for architecture in BUCKET_ARCHITECTURES:
        if architecture not in ModelRegistry.get_supported_archs():
            ModelRegistry.register_model(architecture, f"{__name__}:{architecture}")


def bucket_overrides(bases: Sequence[float], fusion: str = "max_logit", *, architecture: str) -> dict:
    """The ``hf_overrides`` that route a checkpoint to the bucket model `architecture`
    (from `buckets.vllm_architectures.bucket_architecture`).

    >>> bucket_overrides([10000, 25000], architecture="BucketQwen2ForCausalLM")
    {'architectures': ['BucketQwen2ForCausalLM'], 'bucket_rope_thetas': [10000.0, 25000.0], 'bucket_fusion': 'max_logit'}
    """
    if architecture not in BUCKET_ARCHITECTURES:
        raise ValueError(f"unknown bucket architecture {architecture!r}; one of {', '.join(BUCKET_ARCHITECTURES)}")
    return {"architectures": [architecture], "bucket_rope_thetas": [float(b) for b in bases], "bucket_fusion": fusion}


# Everything below needs vLLM; the module stays importable without it (for the helpers above).
try:
    import torch
    from torch import nn
    from vllm.config import VllmConfig
    from vllm.distributed import get_pp_group, get_tensor_model_parallel_world_size
    from vllm.model_executor.layers.attention import Attention
    from vllm.model_executor.layers.linear import QKVParallelLinear, RowParallelLinear
    from vllm.model_executor.layers.logits_processor import LogitsProcessor
    from vllm.model_executor.layers.rotary_embedding import get_rope
    from vllm.model_executor.layers.vocab_parallel_embedding import ParallelLMHead
    from vllm.model_executor.models.llama import LlamaDecoderLayer, LlamaModel
    from vllm.model_executor.models.utils import AutoWeightsLoader, maybe_prefix
    from vllm.sequence import IntermediateTensors
    from vllm.v1.attention.backend import AttentionType
except ImportError:  # vLLM not installed: only `register`'s caller could need the classes
    _HAVE_VLLM = False
else:
    _HAVE_VLLM = True

from buckets.fusion import check_fusion_rule, fuse
from buckets.rope import rope_parameters


def bucket_settings(config) -> tuple[tuple[float, ...], str]:
    """`(bases, fusion)` from a (possibly overridden) HF config; no bases means the model's own base.

    Raises ValueError for bad bases or an unknown fusion rule. Whether the model itself can run with
    buckets is `buckets.vllm_architectures.check_served`'s question (asked once per model).
    """
    bases = getattr(config, "bucket_rope_thetas", None) or [rope_parameters(config)["rope_theta"]]
    if isinstance(bases, (int, float)):
        bases = [bases]
    bases = tuple(float(b) for b in bases)
    if any(not b > 0 for b in bases):
        raise ValueError(f"bucket_rope_thetas must be positive numbers, got {list(bases)}")
    fusion = check_fusion_rule(str(getattr(config, "bucket_fusion", None) or "max_logit"))
    return bases, fusion


if _HAVE_VLLM:
    _ROTARIES: dict[tuple, tuple[nn.Module, int]] = {}

    def _bucket_rotary(head_dim: int, max_position: int, rope_params: dict, bases: Sequence[float]):
        """One rotary module whose cos/sin cache stacks every base's table: rows ``k*stride + pos``.

        Each base's table comes from vLLM's own `get_rope` (so every supported rope_type is
        computed exactly as plain vLLM would); the result is a private copy, never the memoised one.
        Memoised like `get_rope` (per dtype and device too): every layer shares one module, since a
        copy per layer would cost N x layers x the table (gigabytes for a 128k-position model).
        """
        key = (head_dim, max_position, repr(sorted(rope_params.items())), tuple(map(float, bases)),
               torch.get_default_dtype(), str(torch.get_default_device()))
        if key in _ROTARIES:
            return _ROTARIES[key]
        tables = [get_rope(head_dim, max_position=max_position, is_neox_style=True,
                           rope_parameters={**rope_params, "rope_theta": float(b)}) for b in bases]
        rotary = copy.deepcopy(tables[0])
        stacked = torch.cat([t.cos_sin_cache for t in tables], dim=0)
        rotary.register_buffer("cos_sin_cache", stacked, persistent=False)
        stride = tables[0].cos_sin_cache.shape[0]
        _ROTARIES[key] = rotary, stride
        return rotary, stride

    class BucketLlamaAttention(nn.Module):
        """`LlamaAttention` with N buckets as N x the heads; same constructor and weight names."""

        def __init__(
            self,
            config,
            hidden_size: int,
            num_heads: int,
            num_kv_heads: int,
            max_position_embeddings: int = 8192,
            quant_config=None,
            bias: bool = False,
            bias_o_proj: bool = False,
            cache_config=None,
            prefix: str = "",
            attn_type: str = AttentionType.DECODER,
        ) -> None:
            super().__init__()
            if attn_type != AttentionType.DECODER:
                raise ValueError("Attention Buckets on vLLM supports causal decoder attention only")
            self.bases, _ = bucket_settings(config)
            self.n = len(self.bases)
            tp_size = get_tensor_model_parallel_world_size()
            kv_splits = num_kv_heads % tp_size == 0 if num_kv_heads >= tp_size else tp_size % num_kv_heads == 0
            if num_heads % tp_size or not kv_splits:
                raise ValueError(f"Attention Buckets: {num_heads} heads / {num_kv_heads} KV heads do not split "
                                 f"over tensor_parallel_size={tp_size}")
            self.num_heads = num_heads // tp_size
            self.num_kv_heads = max(1, num_kv_heads // tp_size)
            self.head_dim = getattr(config, "head_dim", None) or hidden_size // num_heads
            self.q_size = self.num_heads * self.head_dim
            self.kv_size = self.num_kv_heads * self.head_dim
            self.qkv_proj = QKVParallelLinear(
                hidden_size=hidden_size, head_size=self.head_dim, total_num_heads=num_heads,
                total_num_kv_heads=num_kv_heads, bias=bias, quant_config=quant_config, prefix=f"{prefix}.qkv_proj",
            )
            self.o_proj = RowParallelLinear(
                input_size=num_heads * self.head_dim, output_size=hidden_size, bias=bias_o_proj,
                quant_config=quant_config, prefix=f"{prefix}.o_proj",
            )
            self.rotary_emb, self.rope_stride = _bucket_rotary(
                self.head_dim, max_position_embeddings, rope_parameters(config), self.bases
            )
            # Bucket-major heads within a token: the GQA grouping (query head i reads KV head
            # i // (H/KV)) then never crosses a bucket boundary.
            self.attn = Attention(
                self.n * self.num_heads, self.head_dim, self.head_dim**-0.5, num_kv_heads=self.n * self.num_kv_heads,
                cache_config=cache_config, quant_config=quant_config, attn_type=attn_type, prefix=f"{prefix}.attn",
            )

        def forward(self, positions: torch.Tensor, hidden_states: torch.Tensor) -> torch.Tensor:
            """`positions` are the bucketed rows' cache rows ``[T*N]``; `hidden_states` ``[T*N, hidden]``."""
            qkv, _ = self.qkv_proj(hidden_states)
            q, k, v = qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)
            q, k = self.rotary_emb(positions, q, k)
            tokens = hidden_states.shape[0] // self.n
            out = self.attn(q.reshape(tokens, -1), k.reshape(tokens, -1), v.reshape(tokens, -1))
            out, _ = self.o_proj(out.reshape(tokens * self.n, self.q_size))
            return out

    class BucketQwen2Attention(BucketLlamaAttention):
        """Qwen2's attention: Llama's with a bias on q/k/v and none on o_proj, whatever the config says
        (Qwen2 configs carry no ``attention_bias``; vLLM's Qwen2 hard-codes it the same way)."""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **{**kwargs, "bias": True, "bias_o_proj": False})

    class BucketLlamaDecoderLayer(LlamaDecoderLayer):
        attention_type: ClassVar[type[nn.Module]] = BucketLlamaAttention

        def __init__(self, vllm_config: VllmConfig, prefix: str = "", config=None) -> None:
            super().__init__(vllm_config, prefix=prefix, config=config, attn_layer_type=self.attention_type)

    class BucketQwen2DecoderLayer(BucketLlamaDecoderLayer):
        """Qwen2's decoder layer is Llama's (RMSNorm, SiLU MLP without bias) but for the attention bias."""

        attention_type = BucketQwen2Attention

    class BucketLlamaModel(LlamaModel):
        """`LlamaModel` over ``[T*N, hidden]`` rows; returns ``[T, N*hidden]`` (row t = token t)."""

        def __init__(self, *, vllm_config: VllmConfig, prefix: str = "",
                     layer_type: type[nn.Module] = BucketLlamaDecoderLayer) -> None:
            if get_pp_group().world_size > 1:
                raise ValueError("Attention Buckets on vLLM does not support pipeline parallelism "
                                 "(use tensor parallelism)")
            super().__init__(vllm_config=vllm_config, prefix=prefix, layer_type=layer_type)
            self.bases, _ = bucket_settings(self.config)
            self.n = len(self.bases)
            self.rope_stride = self.layers[0].self_attn.rope_stride
            self.register_buffer("bucket_offsets", torch.arange(self.n) * self.rope_stride, persistent=False)

        def forward(
            self,
            input_ids: torch.Tensor | None,
            positions: torch.Tensor,
            intermediate_tensors: IntermediateTensors | None = None,
            inputs_embeds: torch.Tensor | None = None,
        ) -> torch.Tensor:
            hidden = inputs_embeds if inputs_embeds is not None else self.embed_input_ids(input_ids)
            tokens = hidden.shape[0]
            hidden = hidden.repeat_interleave(self.n, dim=0)
            rows = (positions.unsqueeze(1) + self.bucket_offsets.to(positions.device)).reshape(-1)
            residual = None
            for layer in self.layers:
                hidden, residual = layer(rows, hidden, residual)
            hidden, _ = self.norm(hidden, residual)
            return hidden.reshape(tokens, self.n * hidden.shape[-1])

    class BucketLlamaForCausalLM(nn.Module):
        """Llama (and full-attention Mistral) with Attention Buckets (see the module docstring).
        Loads unmodified checkpoint weights."""

        architecture: ClassVar[str] = LLAMA
        decoder_layer: ClassVar[type[nn.Module]] = BucketLlamaDecoderLayer
        packed_modules_mapping: ClassVar[dict[str, list[str]]] = {
            "qkv_proj": ["q_proj", "k_proj", "v_proj"],
            "gate_up_proj": ["gate_proj", "up_proj"],
        }

        def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
            super().__init__()
            config = vllm_config.model_config.hf_config
            # hf_overrides can name this class for any checkpoint (`vllm serve --hf-overrides`): refuse a
            # model whose forward this class would not reproduce before building anything.
            check_served(config, self.architecture)
            self.config = config
            self.bases, self.fusion = bucket_settings(config)
            self.n = len(self.bases)
            self.model = BucketLlamaModel(vllm_config=vllm_config, prefix=maybe_prefix(prefix, "model"),
                                          layer_type=self.decoder_layer)
            self.lm_head = ParallelLMHead(config.vocab_size, config.hidden_size,
                                          quant_config=vllm_config.quant_config, prefix=maybe_prefix(prefix, "lm_head"))
            if config.tie_word_embeddings:
                self.lm_head = self.lm_head.tie_weights(self.model.embed_tokens)
            self.logits_processor = LogitsProcessor(config.vocab_size, scale=getattr(config, "logit_scale", 1.0))
            self.make_empty_intermediate_tensors = self.model.make_empty_intermediate_tensors

        def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
            return self.model.embed_input_ids(input_ids)

        def forward(
            self,
            input_ids: torch.Tensor | None,
            positions: torch.Tensor,
            intermediate_tensors: IntermediateTensors | None = None,
            inputs_embeds: torch.Tensor | None = None,
        ) -> torch.Tensor:
            return self.model(input_ids, positions, intermediate_tensors, inputs_embeds)

        def compute_logits(self, hidden_states: torch.Tensor) -> torch.Tensor | None:
            """Per-bucket logits ``[R, N, V]`` fused into ``[R, V]`` log-probabilities (N=1: raw logits)."""
            rows = hidden_states.shape[0]
            per_bucket = self.logits_processor(self.lm_head, hidden_states.reshape(rows * self.n, -1))
            if per_bucket is None:  # not the rank that holds the gathered vocabulary
                return None
            if self.n == 1:
                return per_bucket
            fused, _weights = fuse(per_bucket.reshape(rows, self.n, -1), self.fusion)
            return fused

        def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
            # As vLLM's Llama: names are unchanged. Qwen2's q/k/v biases land in qkv_proj.bias, which
            # BucketQwen2Attention creates (vLLM's Llama loader would skip them for want of the parameter).
            return AutoWeightsLoader(self).load_weights(weights)

    class BucketQwen2ForCausalLM(BucketLlamaForCausalLM):
        """Qwen2 / Qwen2.5 with Attention Buckets: the Llama bucket model with Qwen2's q/k/v bias."""

        architecture = QWEN2
        decoder_layer = BucketQwen2DecoderLayer
