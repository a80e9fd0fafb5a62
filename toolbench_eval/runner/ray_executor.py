"""The `ray` executor: engine actors + agent workers, least-loaded sticky routing.

Shape (after verl's agent loop, see `../shared/research/engines.md` §5.4):

- **Engine actors**, one per `gpus_per_engine` GPUs (or `ray.num_engines` on CPU), each in its own
  placement group so its GPUs are on one node (`ray_placement`). Each loads the model once and
  serves `generate`; the engine merges requests from many trajectories into batched forwards itself
  (the `hf` engine's continuous batching, vLLM's scheduler).
- **Agent workers** (async actors), each running up to `concurrency` trajectories as coroutines,
  with the tool backend in-process. Their model calls go through an `EngineRouter`: a trajectory's
  first call goes to the least-loaded engine and later calls stick to it (so that engine's prefix
  cache for the trajectory is hit).
- **The driver** (this process) hands out queries to the least-busy worker and writes answer
  files and events itself, exactly as the `local` executor does, so resume is identical; a query
  whose worker is lost (node gone) runs again on a live one (`ray_dispatch`).
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
from toolbench_eval.runner.ray_dispatch import AgentDispatcher, actor_gone, await_ref
from toolbench_eval.runner.ray_placement import (
    engine_bundle,
    engine_count,
    multi_gpu_engine_config,
    release_groups,
    reserve_engine_groups,
)

# The end-of-run calls to actors (facts, close) give up after this: a call to an actor Ray cannot restart
# (no room left on the cluster) would wait forever.
CLOSE_TIMEOUT_S = 10.0


def ray_init_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """`ray.init` keyword arguments from the config's `ray` block.

    `address` joins an existing cluster (then resources come from it); otherwise a local cluster
    starts with `num_cpus` / `num_gpus` / `object_store_memory`, no dashboard, and a temp dir under
    the system temp folder (or `temp_dir`).
    """
    kwargs: dict[str, Any] = {"include_dashboard": False}
    if options.get("runtime_env") is not None:
        kwargs["runtime_env"] = _runtime_env(options["runtime_env"])
    if options.get("address"):
        return {"address": options["address"], **kwargs}
    for key in ("num_cpus", "num_gpus", "object_store_memory"):
        if options.get(key) is not None:
            kwargs[key] = options[key]
    kwargs.setdefault("object_store_memory", 256 * 2**20)  # Ray's default (30% of RAM) is wasteful here
    kwargs["_temp_dir"] = str(options.get("temp_dir") or tempfile.mkdtemp(prefix="toolbench-eval-ray-"))
    return kwargs


def _runtime_env(value: Any) -> dict[str, Any]:
    """`ray.runtime_env` as `ray.init` takes it (what every actor of the job gets: `working_dir`,
    `py_modules`, `env_vars`, ...); Ray checks the keys themselves when the job starts."""
    if not isinstance(value, Mapping):
        raise UserError(f"ray.runtime_env must be a mapping such as {{working_dir: ., env_vars: {{HF_HOME: /data/hf}}}}, "
                        f"got {type(value).__name__} {value!r}")
    return dict(value)


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
                if not actor_gone(error):
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
        self.solving = 0

    async def solve(self, query: Any) -> dict[str, Any]:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.config.concurrency)
        async with self._semaphore:
            self.solving += 1
            try:
                return await self.agent.solve(query)
            finally:
                self.solving -= 1

    def load(self) -> int:
        """Trajectories under way on this worker now."""
        return self.solving

    def ready(self) -> bool:
        """Answers once the actor is up: the driver's probe for a worker Ray is restarting."""
        return True

    def engines_down(self) -> list[int]:
        return sorted(self.router.down)

    async def close(self) -> None:
        await self.agent.backend.close()


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
    groups: list[Any] = []
    try:
        if not items:
            return {"engines": 0, "workers": 0}
        config_dict = config.as_dict()
        count, gpus_each = engine_count(config)
        cpus_each = float(config.ray.get("cpus_per_engine", 1))
        tag = uuid.uuid4().hex[:8]  # named, so an operator (or a test) can find them: ray.util.list_named_actors
        max_restarts = int(config.ray.get("max_restarts", 1))
        if gpus_each > 0:
            groups = await reserve_engine_groups(count, engine_bundle(gpus_each, cpus_each),
                                                 name_prefix=f"toolbench-engines-{tag}")
        engines = [_engine_actor(i, groups[i] if groups else None, tag=tag, gpus_each=gpus_each, cpus_each=cpus_each,
                                 max_restarts=max_restarts, max_task_retries=int(config.ray.get("max_task_retries", -1)))
                   .remote(multi_gpu_engine_config(config_dict, gpus_each), bucket_spec) for i in range(count)]
        # Agent workers spread over the nodes (their tool backends share the load, and a lost node takes only
        # its share). Ray restarts a lost one (`max_restarts`) but never re-runs its calls: the driver requeues
        # those itself, to whichever worker is live first (`AgentDispatcher`).
        worker_options = {"num_cpus": float(config.ray.get("cpus_per_worker", 0)), "max_concurrency": 1000,
                          "scheduling_strategy": "SPREAD", "max_restarts": max_restarts, "max_task_retries": 0}
        worker_cls = ray.remote(AgentWorker)
        workers = [worker_cls.options(name=f"toolbench-worker-{tag}-{i}", **worker_options).remote(config_dict, engines)
                   for i in range(int(config.ray.get("num_workers") or 1))]
        dispatch_facts = await AgentDispatcher(workers, config.concurrency, recorder).run(items)
        batch_sizes = [size for sizes in await _ask_each(engines, "batch_sizes") for size in sizes]
        # engines some worker's router gave up on (dead after Ray's restarts)
        down = {index for indexes in await _ask_each(workers, "engines_down") for index in indexes}
        return {"engines": len(engines), "workers": len(workers), "engines_down": len(down),
                "gpus_per_engine": gpus_each, **dispatch_facts, **batch_stats(batch_sizes)}
    finally:
        for actor in [*workers, *engines]:
            # Closing is best effort (an actor may have died); the actors are killed next anyway.
            await _ask_each([actor], "close")
            with contextlib.suppress(Exception):
                ray.kill(actor)
        release_groups(groups)
        if started_here:
            ray.shutdown()


async def _ask_each(actors: Sequence[Any], method: str) -> list[Any]:
    """`method()` of each actor that answers within `CLOSE_TIMEOUT_S`: one that died for good took its facts
    with it, and one Ray cannot restart (no room left on the cluster) would never answer."""
    answers = []
    for actor in actors:
        with contextlib.suppress(Exception):
            answers.append(await asyncio.wait_for(await_ref(getattr(actor, method).remote()), CLOSE_TIMEOUT_S))
    return answers


def _engine_actor(index: int, group: Any, *, tag: str, gpus_each: float, cpus_each: float, max_restarts: int,
                  max_task_retries: int) -> Any:
    """The engine actor class, options set: in its placement group when it has GPUs.

    Ray's fault tolerance: a dead engine actor is restarted (`max_restarts`; in its placement group,
    which Ray moves to a live node when the node is lost) and the calls in flight on it are re-sent to
    the restarted actor (`max_task_retries`; -1 = while restarts remain). Generation is a pure function of
    the prompt, so a retried call is safe. Past that, the routers mark the engine down and re-route
    (`EngineRouter`).
    """
    import ray

    options: dict[str, Any] = {"name": f"toolbench-engine-{tag}-{index}", "num_cpus": cpus_each,
                               "num_gpus": gpus_each, "max_concurrency": 1000, "max_restarts": max_restarts,
                               "max_task_retries": max_task_retries}
    if group is not None:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
            placement_group=group, placement_group_bundle_index=0)
    return ray.remote(EngineActor).options(**options)
