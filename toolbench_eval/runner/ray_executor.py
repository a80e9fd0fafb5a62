"""The `ray` executor: engine actors + agent workers, least-loaded sticky routing.

Shape (after verl's agent loop, see `../shared/research/engines.md` §5.4):

- **Engine actors**, one per GPU (or `ray.num_engines` on CPU). Each loads the model once and
  serves `generate`; the engine merges requests from many trajectories into batched forwards itself
  (the `hf` engine's continuous batching, vLLM's scheduler).
- **Agent workers** (async actors), each running up to `concurrency` trajectories as coroutines,
  with the tool backend in-process. Their model calls go through an `EngineRouter`: a trajectory's
  first call goes to the least-loaded engine and later calls stick to it (so that engine's prefix
  cache for the trajectory is hit).
- **The driver** (this process) hands out queries to the least-busy worker and writes answer
  files and events itself, exactly as the `local` executor does, so resume is identical.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from reasoning.protocols import InfrastructureError
from toolbench_eval.engines.base import BucketSpec, Completion, SamplingParams
from toolbench_eval.errors import UserError
from toolbench_eval.runner.config import RunConfig
from toolbench_eval.runner.driver import Recorder, WorkItem
from toolbench_eval.runner.local import batch_stats, recorded_batch_sizes


def ray_init_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """`ray.init` keyword arguments from the config's `ray` block.

    `address` joins an existing cluster (then resources come from it); otherwise a local cluster
    starts with `num_cpus` / `num_gpus` / `object_store_memory`, no dashboard, and a temp dir under
    the system temp folder (or `temp_dir`).
    """
    if options.get("address"):
        return {"address": options["address"], "include_dashboard": False}
    kwargs: dict[str, Any] = {"include_dashboard": False}
    for key in ("num_cpus", "num_gpus", "object_store_memory"):
        if options.get(key) is not None:
            kwargs[key] = options[key]
    kwargs.setdefault("object_store_memory", 256 * 2**20)  # Ray's default (30% of RAM) is wasteful here
    kwargs["_temp_dir"] = str(options.get("temp_dir") or tempfile.mkdtemp(prefix="toolbench-eval-ray-"))
    return kwargs


def _actor_gone(error: BaseException) -> bool:
    """True for Ray's actor-died errors (`RayActorError` and its `ActorDiedError` / `ActorUnavailableError`)."""
    try:
        from ray.exceptions import RayActorError
    except ImportError:
        return False
    return isinstance(error, RayActorError)


class EngineRouter:
    """An `Engine` that spreads calls over engine actors: least-loaded for a new trajectory, then sticky.

    Load is this router's own count of requests in flight per engine (each agent worker has one
    router, as verl's server manager does). The sticky map is an LRU over trajectory ids; a key's
    `#branch` suffix is ignored so all branches of one DFSDT tree share one engine and its cache.

    An engine whose call fails with Ray's actor-died error (after Ray's own restarts and task
    retries, see `run_ray`) is marked down: it gets no more calls, its sticky keys are forgotten,
    and the failed request is re-sent once to a live engine (so a request tries each engine at most
    once). With none live the call raises `InfrastructureError`, so the query counts as an
    infrastructure failure and a re-run retries it.
    """

    def __init__(self, handles: Sequence[Any], *, sticky_capacity: int = 100_000) -> None:
        if not handles:
            raise ValueError("EngineRouter needs at least one engine")
        self.handles = list(handles)
        self.load = [0] * len(self.handles)
        self.down: set[int] = set()
        self.sticky: OrderedDict[str, int] = OrderedDict()
        self.sticky_capacity = sticky_capacity
        self.name = "ray-router"
        self.bucket_spec = None

    def _least_loaded(self) -> int:
        live = [i for i in range(len(self.handles)) if i not in self.down]
        if not live:
            raise InfrastructureError(f"all {len(self.handles)} engine actors are down")
        return min(live, key=self.load.__getitem__)

    def pick(self, cache_key: str | None) -> int:
        if cache_key is None:
            return self._least_loaded()
        key = cache_key.split("#", 1)[0]
        if key in self.sticky:
            self.sticky.move_to_end(key)
            return self.sticky[key]
        index = self._least_loaded()
        self.sticky[key] = index
        if len(self.sticky) > self.sticky_capacity:
            self.sticky.popitem(last=False)
        return index

    def mark_down(self, index: int) -> None:
        """Route nothing more to engine `index`; its trajectories pick a live engine on their next call."""
        self.down.add(index)
        for key in [k for k, i in self.sticky.items() if i == index]:
            del self.sticky[key]

    async def generate(self, prompts: Sequence[str], params: SamplingParams, *,
                       cache_keys: Sequence[str | None] | None = None) -> list[Completion]:
        keys = list(cache_keys) if cache_keys is not None else [None] * len(prompts)
        results: list[Completion | None] = [None] * len(prompts)

        async def dispatch(positions: list[int]) -> None:
            by_engine: dict[int, list[int]] = {}
            try:
                for position in positions:
                    index = self.pick(keys[position])  # raises InfrastructureError when none is live
                    self.load[index] += 1  # counted now, so the next pick (and a concurrent caller) sees it
                    by_engine.setdefault(index, []).append(position)
            except InfrastructureError:
                for index, counted in by_engine.items():
                    self.load[index] -= len(counted)
                raise
            await asyncio.gather(*(send(i, ps) for i, ps in by_engine.items()))

        async def send(index: int, positions: list[int]) -> None:
            try:
                completions = await self.handles[index].generate.remote(
                    [prompts[p] for p in positions], params, [keys[p] for p in positions]
                )
            except Exception as error:
                if not _actor_gone(error):
                    raise
                # Re-sent once per dead engine: each failure takes one engine out of the live set, so a
                # request tries every engine at most once and ends in InfrastructureError when none is left.
                self.mark_down(index)
                try:
                    await dispatch(positions)
                except InfrastructureError as again:
                    if again.__cause__ is None:
                        raise again from error
                    raise
                return
            finally:
                self.load[index] -= len(positions)
            for position, completion in zip(positions, completions):
                results[position] = completion

        await dispatch(list(range(len(prompts))))
        return results  # type: ignore[return-value]

    def count_tokens(self, text: str) -> int:
        raise NotImplementedError("token counting happens in the engine actors")

    async def close(self) -> None:
        return None


class EngineActor:
    """Holds one engine (model loaded once); counts the prompts it is serving, the load the router balances."""

    def __init__(self, config: dict[str, Any], bucket_spec: BucketSpec | None) -> None:
        from toolbench_eval.runner.build import build_engine

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.engine = build_engine(RunConfig.from_mapping(config), bucket_spec)
        self.in_flight = 0

    async def generate(self, prompts: list[str], params: SamplingParams,
                       cache_keys: list[str | None]) -> list[Completion]:
        self.in_flight += len(prompts)
        try:
            return await self.engine.generate(prompts, params, cache_keys=cache_keys)
        finally:
            self.in_flight -= len(prompts)

    def load(self) -> int:
        return self.in_flight

    def batch_sizes(self) -> list[int]:
        return recorded_batch_sizes(self.engine)

    async def close(self) -> None:
        await self.engine.close()


class AgentWorker:
    """Runs trajectories: up to `concurrency` at once, model calls routed over the engine actors."""

    def __init__(self, config: dict[str, Any], engine_handles: list[Any]) -> None:
        from toolbench_eval.runner.build import build_agent

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.config = RunConfig.from_mapping(config)
        self.router = EngineRouter(engine_handles)
        self.agent = build_agent(self.config, self.router)
        self._semaphore: asyncio.Semaphore | None = None

    async def solve(self, query: Any) -> dict[str, Any]:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.config.concurrency)
        async with self._semaphore:
            return await self.agent.solve(query)

    def engines_down(self) -> list[int]:
        return sorted(self.router.down)

    async def close(self) -> None:
        await self.agent.backend.close()


def _engine_count(config: RunConfig) -> tuple[int, float]:
    """How many engine actors, and GPUs for each.

    `num_engines` fixes the count; otherwise one engine per `gpus_per_engine` GPUs of the cluster
    (default 1), or one CPU engine on a cluster without GPUs. A layout the cluster cannot hold is
    refused here rather than left to hang with engine actors Ray can never schedule.
    """
    import ray

    options = config.ray
    gpus = float(ray.cluster_resources().get("GPU", 0))
    asked = options.get("gpus_per_engine")
    if options.get("num_engines"):
        count = int(options["num_engines"])
        per_engine = float(asked if asked is not None else (1 if gpus >= count and gpus > 0 else 0))
    else:
        per_engine = float(asked if asked is not None else (1 if gpus > 0 else 0))
        count = max(1, int(gpus // per_engine)) if per_engine > 0 else 1
    if per_engine < 0:
        raise UserError(f"ray.gpus_per_engine must be >= 0, got {asked}")
    if per_engine > 0 and gpus < count * per_engine:
        raise UserError(f"ray: {count} engine(s) x {per_engine:g} GPU(s) each need {count * per_engine:g} GPUs, "
                        f"but the cluster has {gpus:g}; lower gpus_per_engine or num_engines, or add GPUs")
    return count, per_engine


async def run_ray(config: RunConfig, bucket_spec: BucketSpec | None, items: Sequence[WorkItem],
                  recorder: Recorder) -> dict[str, Any]:
    """Solve `items` on a Ray cluster; returns facts for the event log (engines, workers, batch sizes)."""
    try:
        import ray
    except ImportError:
        raise UserError("executor ray: the ray package is not installed; pip install ray, or use --executor local")

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(**ray_init_options(config.ray), log_to_driver=False)
    engines: list[Any] = []
    workers: list[Any] = []
    try:
        if not items:
            return {"engines": 0, "workers": 0}
        config_dict = config.as_dict()
        count, gpus_each = _engine_count(config)
        # Ray's fault tolerance: a dead engine actor is restarted (`max_restarts`) and the calls in
        # flight on it are re-sent to the restarted actor (`max_task_retries`; -1 = while restarts
        # remain). Generation is a pure function of the prompt, so a retried call is safe. Past that,
        # the routers mark the engine down and re-route (`EngineRouter`).
        engine_options = {
            "num_cpus": float(config.ray.get("cpus_per_engine", 1)), "num_gpus": gpus_each, "max_concurrency": 1000,
            "max_restarts": int(config.ray.get("max_restarts", 1)),
            "max_task_retries": int(config.ray.get("max_task_retries", -1)),
        }
        engine_cls = ray.remote(EngineActor)
        tag = uuid.uuid4().hex[:8]  # named, so an operator (or a test) can find them: ray.util.list_named_actors
        engines = [engine_cls.options(name=f"toolbench-engine-{tag}-{i}", **engine_options)
                   .remote(config_dict, bucket_spec) for i in range(count)]
        worker_count = int(config.ray.get("num_workers") or 1)
        worker_cls = ray.remote(AgentWorker).options(
            num_cpus=float(config.ray.get("cpus_per_worker", 0)), max_concurrency=1000
        )
        workers = [worker_cls.remote(config_dict, engines) for _ in range(worker_count)]

        busy = [0] * len(workers)
        capacity = config.concurrency * len(workers)
        pending: dict[asyncio.Future, tuple[WorkItem, int]] = {}
        queue = list(items)
        queue.reverse()  # pop() from the end keeps plan order
        while (queue and not recorder.abort_reason) or pending:
            while queue and len(pending) < capacity and not recorder.abort_reason:
                item = queue.pop()
                index = min(range(len(workers)), key=busy.__getitem__)
                busy[index] += 1
                recorder.started(item)
                future = asyncio.ensure_future(_await_ref(workers[index].solve.remote(item.query)))
                pending[future] = (item, index)
            done, _ = await asyncio.wait(list(pending), return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                item, index = pending.pop(future)
                busy[index] -= 1
                error = future.exception()
                if error is None:
                    recorder.finished(item, future.result())
                else:
                    recorder.failed(item, error, trace=str(error))
        batch_sizes = []
        for engine in engines:
            with contextlib.suppress(Exception):  # an engine that died (for good) took its counts with it
                batch_sizes.extend(await _await_ref(engine.batch_sizes.remote()))
        down: set[int] = set()  # engines some worker's router gave up on (dead after Ray's restarts)
        for worker in workers:
            with contextlib.suppress(Exception):
                down.update(await _await_ref(worker.engines_down.remote()))
        return {"engines": len(engines), "workers": len(workers), "engines_down": len(down),
                **batch_stats(batch_sizes)}
    finally:
        for actor in [*workers, *engines]:
            # Closing is best effort (an actor may have died); the actors are killed next anyway.
            with contextlib.suppress(Exception):
                await _await_ref(actor.close.remote())
            ray.kill(actor)
        if started_here:
            ray.shutdown()


async def _await_ref(ref: Any) -> Any:
    return await asyncio.wrap_future(ref.future())
