"""The `vllm` engine: vLLM's `AsyncLLM` behind the async `Engine` contract, with Attention Buckets.

With a `BucketSpec` the unmodified checkpoint is routed to the bucket model of `buckets.vllm_plugin`
that `buckets.vllm_architectures.bucket_architecture` picks from its config (Llama, full-attention
Mistral, Qwen2; anything else is refused by name): ``hf_overrides={"architectures":
["BucketLlamaForCausalLM"], "bucket_rope_thetas": [...], "bucket_fusion": ...}``. Every request is
decoded under all N bases inside one vLLM model and sampled from the fused distribution. Without a
`BucketSpec` it is plain vLLM.

Batching is vLLM's own continuous batching: every prompt of every `generate` call becomes a
request at once, and the scheduler packs whatever is in flight. Automatic prefix caching is on,
so a reasoning step (or a DFSDT sibling) that extends an earlier prompt only prefills what is new;
it matches by content, so `cache_keys` are not needed and are ignored.

Prompts are tokenized here with the checkpoint's tokenizer (BOS added like the `hf` engine), so
token counts and prompts are identical across the two engines. A seeded call gives prompt j the
seed ``row_seed(seed, j)``, as the `hf` engine does. The engine belongs to the event loop of its
first `generate` call (vLLM's output handler runs there); it is started then, not at construction.

Needs the optional vLLM install (its own venv; see ``docs/vllm.md``). vLLM spawns its engine
processes, so scripts that use this engine need an ``if __name__ == "__main__":`` guard.

>>> # doctest: +SKIP
>>> engine = VLLMEngine("default", bucket_spec=BucketSpec((1e5, 1.75e5, 2.5e5)), dtype="bfloat16")
>>> [c] = await engine.generate(["Hello"], SamplingParams(max_new_tokens=8, stop=("\\n",)))
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from buckets.sampling import GREEDY_BELOW, row_seed
from buckets.vllm_architectures import bucket_architecture
from buckets.vllm_plugin import bucket_overrides
from toolbench_eval.engines.base import (
    BucketSpec,
    ChatReply,
    Completion,
    SamplingParams,
    as_bool,
    check_cache_keys,
    truncate_prompt,
)
from toolbench_eval.errors import UserError
from toolbench_eval.models import DTYPES, resolve_model_dir

try:
    import vllm  # noqa: F401 -- fail at import when vLLM is missing, so the runner can say how to install it
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(f"the vllm engine needs vLLM ({error}); see docs/vllm.md for the CPU and GPU installs") from None

def checkpoint_bucket_architecture(model_dir: Path) -> str:
    """The bucket model class for a local checkpoint, or a UserError saying why it cannot run with buckets."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model_dir)
    except (OSError, ValueError, KeyError) as error:
        raise UserError(f"{model_dir}/config.json: transformers cannot read it, so Attention Buckets cannot "
                        f"check its architecture ({error})") from None
    try:
        return bucket_architecture(config)
    except ValueError as error:
        raise UserError(f"--model vllm with --buckets: {model_dir}: {error}") from None


class VLLMEngine:
    """Batched async generation with vLLM, optionally with Attention Buckets (see the module docstring)."""

    name = "vllm"

    def __init__(
        self,
        model: str = "default",
        *,
        bucket_spec: BucketSpec | None = None,
        dtype: str = "auto",
        max_model_len: int | None = None,
        enforce_eager: bool = False,
        kv_cache_gib: float | None = None,
        gpu_memory_utilization: float | None = None,
        tensor_parallel_size: int = 1,
        max_num_seqs: int | None = None,
        max_num_batched_tokens: int | None = None,
        attention_backend: str | None = None,
        seed: int = 0,
        enable_prefix_caching: bool = True,
        add_special_tokens: bool = True,
        engine_args: dict[str, Any] | None = None,
        tool_parser: str = "auto",
        chat_template: str | None = None,
    ) -> None:
        self.tool_parser = str(tool_parser)  # tool_format=native: hermes | llama3_json | mistral | auto
        self._chat_template = chat_template
        if dtype not in DTYPES:
            raise UserError(f"--model vllm: dtype={dtype!r} is not one of {', '.join(DTYPES)}")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing downloads at run time
        # resolved as for the `hf` engine: vLLM gets the folder, never a repo id, so it cannot download
        self.model_dir = resolve_model_dir(str(model))
        self.bucket_spec = bucket_spec
        self.add_special_tokens = as_bool(add_special_tokens)
        options: dict[str, Any] = {
            "model": str(self.model_dir),
            "tokenizer": str(self.model_dir),
            "dtype": dtype,
            "enforce_eager": as_bool(enforce_eager),
            "enable_prefix_caching": as_bool(enable_prefix_caching),
            "tensor_parallel_size": int(tensor_parallel_size),
            "seed": int(seed),
            "disable_log_stats": True,
        }
        optional = {"max_model_len": max_model_len, "gpu_memory_utilization": gpu_memory_utilization,
                    "max_num_seqs": max_num_seqs, "max_num_batched_tokens": max_num_batched_tokens,
                    "attention_backend": attention_backend}
        options.update({k: v for k, v in optional.items() if v is not None})
        if kv_cache_gib is not None:
            options["kv_cache_memory_bytes"] = int(float(kv_cache_gib) * 2**30)
        self.bucket_architecture = None if bucket_spec is None else checkpoint_bucket_architecture(self.model_dir)
        if bucket_spec is not None:
            options["hf_overrides"] = bucket_overrides(bucket_spec.bases, bucket_spec.fusion,
                                                       architecture=self.bucket_architecture)
        for key in ("pipeline_parallel_size", "speculative_config"):
            if engine_args and engine_args.get(key) not in (None, 1) and bucket_spec is not None:
                raise UserError(f"--model vllm: {key} is not supported with Attention Buckets "
                                f"({self.bucket_architecture})")
        options.update(engine_args or {})
        self.engine_options = options
        self.tokenizer = _load_tokenizer(self.model_dir)
        if self._chat_template is not None:
            from toolbench_eval.engines.tool_calls import load_chat_template

            self.tokenizer.chat_template = load_chat_template(self._chat_template)
        self._engine = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- Engine protocol -------------------------------------------------------------------------

    async def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        *,
        cache_keys: Sequence[str | None] | None = None,
    ) -> list[Completion]:
        check_cache_keys(prompts, cache_keys)  # validated; this engine's prefix cache matches by content
        encoded = [truncate_prompt(self.encode(prompt), params) for prompt in prompts]  # a bad prompt fails its own call
        requests = [self.sampling_params(params, index) for index in range(len(prompts))]
        outputs = await self.generate_outputs(encoded, requests)
        return [self._completion(output, params) for output in outputs]

    async def chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], params: SamplingParams,
                   *, upstream_request: bool = True, constrain: str = "off") -> ChatReply:
        """A native function-calling turn through the model's own chat template (`engines.tool_calls`)."""
        from toolbench_eval.engines.tool_calls import chat_through_template

        return await chat_through_template(self, messages, tools, params, self.tool_parser, constrain)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    async def close(self) -> None:
        if self._engine is not None:
            self._engine.shutdown()
        self._engine = self._loop = None

    # -- lower level (tests and benchmarks) ------------------------------------------------------

    def encode(self, prompt: str | Sequence[int]) -> list[int]:
        """Token ids of a prompt, exactly as the `hf` engine would feed them."""
        from buckets.generation import encode_prompt

        return encode_prompt(self.tokenizer, prompt, add_special_tokens=self.add_special_tokens)

    def sampling_params(self, params: SamplingParams, index: int = 0, **extra: Any):
        """vLLM `SamplingParams` for prompt `index` of a call made with `params` (`extra`: vLLM fields,
        e.g. ``logprobs=5`` or ``ignore_eos=True``)."""
        from vllm import SamplingParams as VllmSamplingParams
        from vllm.sampling_params import RequestOutputKind

        greedy = params.temperature < GREEDY_BELOW
        if params.grammar is not None:
            from vllm.sampling_params import StructuredOutputsParams

            extra.setdefault("structured_outputs", StructuredOutputsParams(grammar=params.grammar))
        return VllmSamplingParams(
            max_tokens=params.max_new_tokens,
            temperature=0.0 if greedy else params.temperature,
            top_p=1.0 if greedy else params.top_p,
            stop=[s for s in params.stop if s] or None,
            seed=None if params.seed is None or greedy else row_seed(params.seed, index),
            output_kind=RequestOutputKind.FINAL_ONLY,
            **({"min_tokens": params.min_new_tokens} if params.min_new_tokens else {}),
            **extra,
        )

    async def generate_outputs(self, prompts: Sequence[Sequence[int]], sampling_params: Sequence[Any]) -> list:
        """Run token-id prompts with per-prompt vLLM sampling params; the final `RequestOutput`s, in order."""
        engine = self._ensure_started()
        from vllm.inputs import TokensPrompt

        async def one(ids: Sequence[int], request_params) -> Any:
            final = None
            async for output in engine.generate(TokensPrompt(prompt_token_ids=list(ids)), request_params,
                                                request_id=uuid.uuid4().hex):
                final = output
            return final

        return list(await asyncio.gather(*(one(ids, sp) for ids, sp in zip(prompts, sampling_params))))

    @property
    def num_kv_blocks(self) -> int | None:
        """KV-cache blocks vLLM allocated (known once the engine has started)."""
        if self._engine is None:
            return None
        return self._engine.vllm_config.cache_config.num_gpu_blocks

    def start(self):
        """Start vLLM now (otherwise the first `generate` does); call it inside the serving event loop."""
        return self._ensure_started()

    # -- internals -------------------------------------------------------------------------------

    def _ensure_started(self):
        loop = asyncio.get_running_loop()
        if self._engine is not None:
            if self._loop is not loop:
                raise RuntimeError("a VLLMEngine serves the event loop it started in; create one engine per "
                                   "loop (e.g. one asyncio.run around the whole run)")
            return self._engine
        from vllm import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        try:
            self._engine = AsyncLLM.from_engine_args(AsyncEngineArgs(**self.engine_options))
        except TypeError as error:  # an unknown engine_args key
            raise UserError(f"--model vllm: bad engine argument: {error}") from None
        self._loop = loop
        return self._engine

    def _completion(self, output, params: SamplingParams) -> Completion:
        choice = output.outputs[0]
        finish = "length" if choice.finish_reason == "length" else "stop"
        return Completion(
            text=choice.text,
            prompt_tokens=len(output.prompt_token_ids or ()),
            completion_tokens=len(choice.token_ids),
            finish_reason=finish,
        )


def _load_tokenizer(path: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: could not load the tokenizer: {error}") from None
