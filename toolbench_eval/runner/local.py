"""The `local` executor: all trajectories as coroutines in one process, `concurrency` at a time.

Every engine merges concurrent calls itself (the `hf` engine's continuous batching, vLLM's scheduler, an
API server), so the model calls of the trajectories in flight become batched forwards without a layer
here; tool calls and bookkeeping interleave on the same event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from toolbench_eval.engines.base import Completion, SamplingParams
from toolbench_eval.runner.driver import Recorder, RunProgress, WorkItem


class MeteredEngine:
    """An engine that reports every completion to the run's progress line (all else is the wrapped engine's)."""

    def __init__(self, engine: Any, progress: RunProgress) -> None:
        self.engine = engine
        self.progress = progress

    def __getattr__(self, name: str) -> Any:  # name, bucket_spec, tokenizer, count_tokens, close, ...
        return getattr(self.engine, name)

    async def generate(self, prompts: Sequence[str], params: SamplingParams, *,
                       cache_keys: Sequence[str | None] | None = None) -> list[Completion]:
        completions = await self.engine.generate(prompts, params, cache_keys=cache_keys)
        for completion in completions:
            self.progress.model_call(completion.completion_tokens)
        return completions


def recorded_batch_sizes(engine: Any) -> list[int]:
    """Prompts per engine step so far, for engines that schedule their own steps and record them (`hf`; the
    scripted engine counts a call as a step); elsewhere batching happens out of sight (vLLM's scheduler, an API
    server) and the list is empty."""
    return list(getattr(engine, "batch_sizes", []))


def batch_stats(sizes: Sequence[int]) -> dict[str, Any]:
    """Engine steps and mean prompts per step, for the run's events."""
    return {"engine_batches": len(sizes), "mean_batch_size": round(sum(sizes) / len(sizes), 3) if sizes else None}


class Solver(Protocol):
    async def solve(self, query: Any) -> dict[str, Any]: ...


async def run_local(agent: Solver, items: Sequence[WorkItem], recorder: Recorder, *, concurrency: int) -> None:
    """Solve `items` with at most `concurrency` in flight; a raising trajectory becomes an error event."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(item: WorkItem) -> None:
        async with semaphore:
            if recorder.abort_reason:  # too many infrastructure failures: leave the rest for the next run
                return
            recorder.started(item)
            try:
                answer = await agent.solve(item.query)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 -- a bug or engine failure in one trajectory never ends the run
                recorder.failed(item, error)
            else:
                recorder.finished(item, answer)

    # Tasks start in plan order, so with concurrency 1 this is the sequential ToolBench loop.
    await asyncio.gather(*(one(item) for item in items))
