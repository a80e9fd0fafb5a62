"""Turn many concurrent one-prompt requests into batched engine calls.

Each trajectory asks for one completion at a time. `BatchingEngine` queues those requests and
hands everything that is waiting to the wrapped engine in one `generate` call, so N
trajectories in flight cost about one batched forward per step instead of N sequential ones.
Requests with different sampling parameters go in separate calls (an engine call has one
`SamplingParams`).

>>> import asyncio
>>> from toolbench_eval.engines.base import Completion, SamplingParams
>>> class Echo:
...     name, bucket_spec, calls = "echo", None, []
...     async def generate(self, prompts, params, *, cache_keys=None):
...         self.calls.append(len(prompts))
...         return [Completion(p.upper(), 1, 1, "stop") for p in prompts]
>>> async def main():
...     engine = BatchingEngine(Echo())
...     outs = await asyncio.gather(*(engine.generate([p], SamplingParams()) for p in "abc"))
...     await engine.close()
...     return [o[0].text for o in outs], engine.engine.calls
>>> asyncio.run(main())
(['A', 'B', 'C'], [3])
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from toolbench_eval.engines.base import Completion, Engine, SamplingParams

SELF_BATCHING_ENGINES = frozenset({"hf", "vllm", "openai"})


@dataclass
class _Request:
    prompt: str
    params: SamplingParams
    cache_key: str | None
    future: asyncio.Future


class BatchingEngine:
    """An `Engine` that batches concurrent calls to another engine; also counts load for routing."""

    def __init__(self, engine: Engine, *, max_batch_size: int = 64, settle_rounds: int = 8,
                 passthrough: bool | None = None) -> None:
        self.engine = engine
        self.name = getattr(engine, "name", "engine")
        self.bucket_spec = getattr(engine, "bucket_spec", None)
        self.max_batch_size = max_batch_size
        # Engines that already merge concurrent calls (hf has its own request queue; vllm and API servers
        # batch server-side) get the calls directly; this wrapper then only counts load.
        self.passthrough = self.name in SELF_BATCHING_ENGINES if passthrough is None else passthrough
        # Event-loop turns to wait before cutting a batch: lets trajectories that just got a tool
        # result (local backends answer within a few turns) join the same batch.
        self.settle_rounds = settle_rounds
        self._queue: asyncio.Queue[_Request] | None = None
        self._worker: asyncio.Task | None = None
        self.in_flight = 0  # requests queued or running: the "load" a router balances
        self._batch_sizes: list[int] = []

    @property
    def batch_sizes(self) -> list[int]:
        """Prompts per engine forward batch so far (the engine's own record when it batches itself)."""
        if self.passthrough:
            return list(getattr(self.engine, "batch_sizes", []))
        return self._batch_sizes

    def __getattr__(self, item: str) -> Any:  # tokenizer, model, ... of the wrapped engine
        return getattr(self.engine, item)

    def _ensure_worker(self) -> asyncio.Queue[_Request]:
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._serve(self._queue))
        return self._queue

    async def generate(
        self, prompts: Sequence[str], params: SamplingParams, *, cache_keys: Sequence[str | None] | None = None
    ) -> list[Completion]:
        if self.passthrough:
            self.in_flight += len(prompts)
            try:
                return await self.engine.generate(prompts, params, cache_keys=cache_keys)
            finally:
                self.in_flight -= len(prompts)
        queue = self._ensure_worker()
        keys = list(cache_keys) if cache_keys is not None else [None] * len(prompts)
        loop = asyncio.get_running_loop()
        requests = [_Request(p, params, k, loop.create_future()) for p, k in zip(prompts, keys)]
        self.in_flight += len(requests)
        try:
            for request in requests:
                queue.put_nowait(request)
            return list(await asyncio.gather(*(r.future for r in requests)))
        finally:
            self.in_flight -= len(requests)

    async def _serve(self, queue: asyncio.Queue[_Request]) -> None:
        while True:
            first = await queue.get()
            for _ in range(self.settle_rounds):
                await asyncio.sleep(0)
            pending = [first]
            while not queue.empty() and len(pending) < self.max_batch_size:
                pending.append(queue.get_nowait())
            by_params: dict[SamplingParams, list[_Request]] = {}
            for request in pending:
                by_params.setdefault(request.params, []).append(request)
            for params, batch in by_params.items():
                await self._run_batch(params, batch)

    async def _run_batch(self, params: SamplingParams, batch: list[_Request]) -> None:
        self._batch_sizes.append(len(batch))
        try:
            completions = await self.engine.generate(
                [r.prompt for r in batch], params, cache_keys=[r.cache_key for r in batch]
            )
            if len(completions) != len(batch):
                raise RuntimeError(f"engine {self.name!r} returned {len(completions)} completions "
                                   f"for {len(batch)} prompts")
        except Exception as error:  # noqa: BLE001 -- one failed batch fails its requests, never the server loop
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(error)
            return
        for request, completion in zip(batch, completions):
            if not request.future.done():
                request.future.set_result(completion)

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        close = getattr(self.engine, "close", None)
        if close is not None:
            await close()
