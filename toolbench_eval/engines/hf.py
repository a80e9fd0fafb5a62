"""The `hf` engine: a transformers model behind the async `Engine` contract, with Attention Buckets.

Many coroutines (one per trajectory) call `await engine.generate(...)` at once. Each prompt
becomes a request on a queue; one background task runs a `buckets.generation.ContinuousDecoder`:
before every decode step it admits waiting prompts (up to `max_batch_size` in flight, and only while the
batch's estimated peak memory stays within the engine's budget, `buckets.memory_budget`; a prompt too
large to fit even alone fails its own call) and it hands each prompt back the moment it finishes, so a
trajectory runs its tool call and queues its next step while the others decode. Steps run on one dedicated thread, so the event loop (tool calls,
other trajectories) stays live while torch computes.

Every decode setting is per prompt inside the generator (temperature, top-p, stop strings, max
new tokens, seed), so any pending requests are compatible and share one batched forward. A seeded
call gives prompt j the seed `row_seed(seed, j)`, so results do not depend on what else was in
the batch. `cache_keys` (trajectory ids) select the per-context KV prefix cache.

Example (inside a coroutine)::

    engine = HFEngine(model, tokenizer, BucketSpec(bases=(1e5, 1.75e5, 2.5e5)))
    [completion] = await engine.generate(["Hello"], SamplingParams(max_new_tokens=8), cache_keys=["t1"])
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from buckets.generation import BucketedGenerator, DecodeParams, GenerationResult
from buckets.memory_budget import MemoryBudget, MemoryBudgetError
from buckets.prefix_cache import PrefixCache
from buckets.sampling import row_seed
from toolbench_eval.engines.base import (
    BucketSpec,
    ChatReply,
    Completion,
    SamplingParams,
    as_bool,
    check_cache_keys,
    truncate_prompt,
)
from toolbench_eval.models import check_buckets_supported


@dataclass
class _Request:
    prompt_ids: list[int]
    params: DecodeParams
    cache_key: str | None
    future: asyncio.Future


def decode_params(params: SamplingParams, index: int) -> DecodeParams:
    """The generator's settings for prompt `index` of a call made with `params` (its own seed)."""
    return replace(params, seed=None if params.seed is None else row_seed(params.seed, index))


class HFEngine:
    """Batched async generation on a local transformers model, optionally with Attention Buckets."""

    name = "hf"

    def __init__(
        self,
        model,
        tokenizer,
        bucket_spec: BucketSpec | None = None,
        *,
        max_batch_size: int = 16,
        prefix_cache_entries: int = 64,
        prefix_cache_bytes: int = 2 << 30,
        return_weights: bool = False,
        add_special_tokens: bool = True,
        prompt_lookup: int = 0,
        tool_parser: str = "auto",
        chat_template: str | None = None,
        memory_fraction: float = 0.9,
        memory_budget_gib: float | None = None,
    ) -> None:
        self.tool_parser = str(tool_parser)  # tool_format=native: hermes | llama3_json | mistral | auto
        if chat_template is not None:
            from toolbench_eval.engines.tool_calls import load_chat_template

            tokenizer.chat_template = load_chat_template(chat_template)
        self.bucket_spec = bucket_spec
        self.max_batch_size = int(max_batch_size)
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.return_weights = as_bool(return_weights)
        self.tokenizer = tokenizer
        if bucket_spec is not None:
            check_buckets_supported(model)
        self.generator = BucketedGenerator(
            model,
            tokenizer,
            bases=bucket_spec.bases if bucket_spec else None,
            fusion=bucket_spec.fusion if bucket_spec else "max_logit",
            prefix_cache=PrefixCache(int(prefix_cache_entries), int(prefix_cache_bytes)),
            add_special_tokens=as_bool(add_special_tokens),
            prompt_lookup=int(prompt_lookup),
        )
        # The batch's peak memory cap: `memory_budget_gib` if given, else `memory_fraction` of what is free now
        # less what the prefix cache may grow to.
        self.memory_budget = MemoryBudget.for_model(
            model, buckets=len(bucket_spec.bases) if bucket_spec else 1, fraction=float(memory_fraction),
            reserved_bytes=int(prefix_cache_bytes),
            limit_bytes=None if memory_budget_gib is None else int(float(memory_budget_gib) * 2**30))
        self.budget_waits = 0  # engine steps at which a waiting prompt stayed out because of the memory budget
        self.batch_sizes: list[int] = []  # prompts in flight at each engine step (admitted ones included)
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Every step runs on one thread of our own. Handing steps to whichever pool thread is free would give
        # each its own OpenMP team, and the idle teams' spin-waiting takes the cores from the busy one: measured
        # 3x slower decoding on 2 cores (33 s vs 11 s for a 110-token completion). For the same reason `close`
        # ends the thread: an idle engine's thread left behind slowed the next engine on the same model from
        # 185 s to 240-310 s of runner benchmark (2 cores).
        self._torch_thread: ThreadPoolExecutor | None = None

    # -- Engine protocol -------------------------------------------------------------------------

    async def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        *,
        cache_keys: Sequence[str | None] | None = None,
    ) -> list[Completion]:
        keys = check_cache_keys(prompts, cache_keys)
        # Tokenize here so a bad prompt fails its own call, not the whole batch it would join.
        encoded = [truncate_prompt(self.generator.encode(prompt), params) for prompt in prompts]
        if params.grammar is not None:
            # Compiled here (and kept for the decoder), so a grammar that does not compile fails its own call.
            self.generator.grammar_matcher(params.grammar)
        queue = self._ensure_worker()
        loop = asyncio.get_running_loop()
        futures = []
        for index, (ids, key) in enumerate(zip(encoded, keys)):
            future = loop.create_future()
            queue.put_nowait(_Request(ids, decode_params(params, index), key, future))
            futures.append(future)
        results: list[GenerationResult] = await asyncio.gather(*futures)
        return [self._completion(result) for result in results]

    async def chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], params: SamplingParams,
                   *, upstream_request: bool = True, constrain: str = "off") -> ChatReply:
        """A native function-calling turn through the model's own chat template (`engines.tool_calls`)."""
        from toolbench_eval.engines.tool_calls import chat_through_template

        return await chat_through_template(self, messages, tools, params, self.tool_parser, constrain)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    async def close(self) -> None:
        if self._worker is not None and self._loop is asyncio.get_running_loop():
            self._queue.put_nowait(None)
            await self._worker
        self._worker = self._queue = self._loop = None
        self.generator.clear_prefix_cache()
        if self._torch_thread is not None:
            self._torch_thread.shutdown(wait=True)
            self._torch_thread = None

    # -- batching --------------------------------------------------------------------------------

    def _ensure_worker(self) -> asyncio.Queue:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._worker is None or self._worker.done():
            self._loop, self._queue = loop, asyncio.Queue()
            self._worker = loop.create_task(self._serve(self._queue), name="hf-engine-batcher")
        if self._torch_thread is None:
            self._torch_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf-engine-torch")
        return self._queue

    async def _serve(self, queue: asyncio.Queue) -> None:
        """Continuous batching: between two decode steps, waiting prompts join (up to `max_batch_size` in
        flight, within the memory budget) and finished ones leave, so nobody waits for a batch's longest member."""
        decoder = self.generator.continuous(return_weights=self.return_weights,
                                             reserve_contexts=self.max_batch_size)
        waiting: deque[_Request] = deque()
        closing = False
        while True:
            if decoder.active == 0 and not waiting:
                if closing:
                    return
                first = await queue.get()
                if first is None:
                    return
                await asyncio.sleep(0)  # let coroutines scheduled in the same tick enqueue as well
                waiting.append(first)
            while not closing and not queue.empty():
                request = queue.get_nowait()
                if request is None:
                    closing = True  # finish what is queued and in flight, then stop
                else:
                    waiting.append(request)
            joining = self._admit(decoder, waiting)
            if decoder.active == 0 and not joining:
                continue  # everything waiting was cancelled or refused
            self.batch_sizes.append(decoder.active + len(joining))
            try:
                finished = await asyncio.get_running_loop().run_in_executor(
                    self._torch_thread, decoder.step, [(r.prompt_ids, r.params, r.cache_key, r) for r in joining])
            except Exception as error:  # noqa: BLE001 - each caller gets the error; the batcher keeps serving
                for request in [*joining, *decoder.abandon()]:
                    if not request.future.done():
                        request.future.set_exception(error)
                continue
            for request, result in finished:
                if not request.future.done():
                    request.future.set_result(result)

    def _admit(self, decoder, waiting: deque[_Request]) -> list[_Request]:
        """Take waiting prompts in order while the batch stays within `max_batch_size` and the memory budget.
        First come, first served: a prompt that does not fit yet waits for contexts to finish and nobody
        overtakes it (a long prompt is not starved by short ones). One that would not fit even alone fails."""
        spans, joining = decoder.spans(), []
        while waiting and decoder.active + len(joining) < self.max_batch_size:
            request = waiting[0]
            if request.future.cancelled():
                waiting.popleft()
                continue
            span = decoder.span(len(request.prompt_ids), request.params)
            if not self.memory_budget.admits([*spans, span], prefill_tokens=len(request.prompt_ids)):
                if spans:
                    self.budget_waits += 1
                    break
                waiting.popleft()
                request.future.set_exception(MemoryBudgetError(
                    f"prompt of {len(request.prompt_ids)} tokens with max_new_tokens={request.params.max_new_tokens} "
                    f"does not fit alone: {self.memory_budget.describe([span], len(request.prompt_ids))} (raise "
                    "memory_fraction or memory_budget_gib, or lower max_new_tokens)"))
                continue
            waiting.popleft()
            joining.append(request)
            spans.append(span)
        return joining

    @staticmethod
    def _completion(result: GenerationResult) -> Completion:
        return Completion(
            text=result.text,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=len(result.token_ids),
            finish_reason=result.finish_reason,
            bucket_weights=result.bucket_weights,
        )
