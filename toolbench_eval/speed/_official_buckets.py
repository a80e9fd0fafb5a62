"""An official-style Attention Buckets decoder, kept only as the speed baseline for `bench buckets`.

It reproduces the COST STRUCTURE of the official code (AlibabaResearch/DAMO-ConvAI,
attention-buckets/modeling_llama.py), not its code:

- the bases are processed in sequential chunks of `chunk_size` (the official ``bsz = 2``), each
  chunk with its own forward pass and its own KV cache;
- every attention layer, on every forward step, rebuilds the full cos/sin table
  (``max_position_embeddings x head_dim``) for every base of its chunk (``_set_base`` ->
  ``_set_cos_sin_cache``) and then indexes it by position;
- fusion: ``weight = softmax(max logits)`` in float32, ``logits = weight @ all_logits``; greedy.

Batch size one (the official code serves one prompt at a time). `OfficialBucketsEngine` puts it behind
our `Engine` contract the way ToolBench's loop uses a model: one prompt at a time, the whole conversation
prefilled again on every call, stop strings checked on the decoded text after every token (its
`generate_stream`), so `bench runner --buckets N` can time whole trajectories the official way.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import torch

from buckets.attention import sdpa_model_attention

# How the official-style decoder attends in its prefills: "sdpa" (a baseline faster than the official code, the
# default) or "eager" (what the official code runs, transformers 4.28's only attention).
PREFILL_ATTENTIONS = ("sdpa", "eager")


def _rebuilt_cos_sin(bases: Sequence[float], head_dim: int, max_positions: int, dtype: torch.dtype,
                     device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The official per-layer rebuild: one full table per base, concatenated on the batch axis."""
    cos, sin = [], []
    for base in bases:
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim))
        t = torch.arange(max_positions, device=device, dtype=inv_freq.dtype)
        freqs = torch.einsum("i,j->ij", t, inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos.append(emb.cos()[None].to(dtype))
        sin.append(emb.sin()[None].to(dtype))
    return torch.cat(cos), torch.cat(sin)  # [chunk, max_positions, head_dim]


class OfficialStyleBuckets:
    """Greedy bucketed decoding with the official code's chunking and per-layer table rebuilds."""

    def __init__(self, model, bases: Sequence[float], chunk_size: int = 2, prefill_attention: str = "sdpa") -> None:
        if prefill_attention not in PREFILL_ATTENTIONS:
            raise ValueError(f"prefill_attention must be one of {', '.join(PREFILL_ATTENTIONS)}, got {prefill_attention!r}")
        self.model = model
        self.prefill_attention = prefill_attention
        self.bases = [float(b) for b in bases]
        self.chunks = [self.bases[i : i + chunk_size] for i in range(0, len(self.bases), chunk_size)]
        config = model.config
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self.max_positions = config.max_position_embeddings

    @contextlib.contextmanager
    def _per_layer_rebuild(self, chunk: Sequence[float]):
        """Make every attention layer rebuild its chunk's cos/sin tables on each forward."""
        dtype = next(self.model.parameters()).dtype

        def rebuild(module, args, kwargs):
            position_ids = kwargs["position_ids"]
            cos, sin = _rebuilt_cos_sin(chunk, self.head_dim, self.max_positions, dtype, position_ids.device)
            kwargs["position_embeddings"] = (cos[:, position_ids[0]], sin[:, position_ids[0]])
            return args, kwargs

        handles = []
        for layer in self.model.get_decoder().layers:
            handles.append(layer.register_forward_pre_hook(rebuild, with_kwargs=True))
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    @torch.inference_mode()
    def generate(self, prompt_ids: Sequence[int], max_new_tokens: int,
                 finished: Callable[[list[int]], bool] | None = None) -> list[int]:
        """Greedy tokens after `prompt_ids`: `max_new_tokens` of them, or fewer once `finished(tokens)` is true."""
        from transformers import DynamicCache

        device = next(self.model.parameters()).device
        caches = [DynamicCache(config=self.model.config) for _ in self.chunks]
        feed = torch.tensor([list(prompt_ids)], device=device)
        positions = torch.arange(feed.shape[1], device=device)[None]
        generated: list[int] = []
        for step in range(max_new_tokens):
            all_logits = []
            for chunk, cache in zip(self.chunks, caches):  # sequential chunks, as upstream
                # The official code's attention is transformers' eager one throughout (prefill_attention="eager").
                # By default the baseline gets the faster kernel of each phase instead, so it is never slower than
                # the official code for a reason of ours: SDPA's flash kernel for the prefill (eager materialises
                # every score), eager for the one-token steps, where the CPU SDPA kernel is slow for a single
                # bfloat16 query row (SmolLM2, 6 bases, 1 thread, 600 cached tokens: 527 ms per token with SDPA,
                # 466 ms with eager).
                phase = self.prefill_attention if step == 0 else "eager"
                with self._per_layer_rebuild(chunk), sdpa_model_attention(self.model, phase):
                    out = self.model(
                        input_ids=feed.expand(len(chunk), -1),
                        position_ids=positions.expand(len(chunk), -1),
                        past_key_values=cache,
                        use_cache=True,
                        logits_to_keep=1,
                    )
                all_logits.append(out.logits[:, -1].float())
            all_logits = torch.cat(all_logits)  # [N, V]
            weight = torch.softmax(all_logits.max(dim=-1).values, dim=-1, dtype=torch.float32)
            fused = torch.mm(weight.unsqueeze(0), all_logits)
            token = int(fused.argmax(dim=-1))
            generated.append(token)
            if finished is not None and finished(generated):
                break
            feed = torch.tensor([[token]], device=device)
            positions = positions[:, -1:] + 1
        return generated


class OfficialBucketsEngine:
    """ToolBench's loop around the official-style decoder: prompts one by one, no KV kept between calls,
    EOS and stop strings checked after every token. Greedy only (as the official decoder)."""

    name = "official-buckets"
    bucket_spec = None

    def __init__(self, model, tokenizer, bases: Sequence[float], chunk_size: int = 2,
                 prefill_attention: str = "sdpa") -> None:
        self.decoder = OfficialStyleBuckets(model, bases, chunk_size, prefill_attention)
        self.tokenizer = tokenizer
        eos = getattr(tokenizer, "eos_token_id", None)
        self.eos_ids = {eos} if isinstance(eos, int) else set(eos or ())
        self.calls = 0
        self.generated_tokens = 0

    async def generate(self, prompts, params, *, cache_keys=None):
        from buckets.generation import encode_prompt
        from toolbench_eval.engines.base import Completion, truncate_prompt

        completions = []
        for prompt in prompts:
            ids = truncate_prompt(encode_prompt(self.tokenizer, prompt), params)
            stop = tuple(params.stop or ())

            def finished(tokens: list[int], params=params, stop=stop) -> bool:
                if tokens[-1] in self.eos_ids and len(tokens) > params.min_new_tokens:
                    return True
                return bool(stop) and any(s in self._text(tokens) for s in stop)

            tokens = self.decoder.generate(ids, params.max_new_tokens, finished)
            text = self._text(tokens)
            cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
            stopped = cut >= 0 or bool(tokens) and tokens[-1] in self.eos_ids
            self.calls += 1
            self.generated_tokens += len(tokens)
            completions.append(Completion(text[:cut] if cut >= 0 else text, len(ids), len(tokens),
                                          "stop" if stopped else "length"))
        return completions

    def _text(self, tokens: list[int]) -> str:
        return self.tokenizer.decode([t for t in tokens if t not in self.eos_ids], skip_special_tokens=True)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    async def close(self) -> None:
        return None
