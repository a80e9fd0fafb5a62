"""Where the `ray` executor's engines go: how many, how many GPUs each, and one placement group per engine.

An engine with `gpus_per_engine` > 1 runs one model over several GPUs (vLLM tensor parallelism, or
accelerate's `device_map=auto` for hf), and those GPUs must sit on one node. Each engine therefore gets
its own placement group: one bundle `{GPU: gpus_per_engine, CPU: cpus_per_engine}`, strategy
`STRICT_PACK`. Ray reserves the bundle atomically, so engines never half-load waiting for a GPU that
another engine holds, and when a node is lost Ray reschedules the group (and restarts the engine in
it) on a node with room.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Mapping, Sequence
from typing import Any

from toolbench_eval.errors import UserError

# How long to wait for Ray to reserve an engine's GPUs before saying why the run cannot start.
PLACEMENT_TIMEOUT_S = 600.0


def engines_that_fit(node_gpus: Sequence[float], per_engine: float) -> int:
    """How many engines of `per_engine` GPUs the nodes hold, no engine split across nodes."""
    if per_engine <= 0:
        raise ValueError("engines_that_fit is for GPU engines")
    return sum(int(gpus // per_engine) for gpus in node_gpus)


def _alive_node_gpus() -> list[float]:
    import ray

    return [float(node["Resources"].get("GPU", 0)) for node in ray.nodes() if node.get("Alive")]


def engine_count(config: Any) -> tuple[int, float]:
    """How many engine actors, and GPUs for each.

    `num_engines` fixes the count; otherwise one engine per `gpus_per_engine` GPUs of the cluster
    (default 1), or one CPU engine on a cluster without GPUs. A layout the cluster cannot hold, in
    total or because one engine's GPUs would have to span nodes, is refused here rather than left to
    hang with engine actors Ray can never schedule.
    """
    import ray

    options = config.ray
    gpus = float(ray.cluster_resources().get("GPU", 0))
    asked = _number(options, "gpus_per_engine", float)
    if asked is not None and asked < 0:
        raise UserError(f"ray.gpus_per_engine must be >= 0, got {asked:g}")
    if options.get("num_engines"):
        count = _number(options, "num_engines", int)
        if count < 1:
            raise UserError(f"ray.num_engines must be >= 1 (or null: as many as fit), got {count}")
        per_engine = float(asked if asked is not None else (1 if gpus >= count and gpus > 0 else 0))
    else:
        per_engine = float(asked if asked is not None else (1 if gpus > 0 else 0))
        count = 0
    if per_engine == 0:
        return max(count, 1), per_engine
    node_gpus = _alive_node_gpus()
    fit = engines_that_fit(node_gpus, per_engine)
    count = count or max(1, fit)
    if gpus < count * per_engine:
        raise UserError(f"ray: {count} engine(s) x {per_engine:g} GPU(s) each need {count * per_engine:g} GPUs, "
                        f"but the cluster has {gpus:g}; lower gpus_per_engine or num_engines, or add GPUs")
    if fit < count:
        raise UserError(f"ray: {count} engine(s) x {per_engine:g} GPU(s) each, one engine's GPUs on one node, "
                        f"but the nodes' GPUs {sorted(node_gpus, reverse=True)} hold only {fit}; lower "
                        "gpus_per_engine (at most the GPUs of one node) or num_engines")
    return count, per_engine


def _number(options: Mapping[str, Any], key: str, kind: type) -> Any:
    """`options[key]` as an int or float (None when unset), or a UserError naming the key."""
    value = options.get(key)
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(value, bool) or (kind is int and not number.is_integer()):
        raise UserError(f"ray.{key} must be a {'whole ' if kind is int else ''}number, got {value!r}")
    return kind(number)


def engine_bundle(gpus_each: float, cpus_each: float) -> dict[str, float]:
    """The placement-group bundle of one engine (zero amounts left out: Ray refuses them)."""
    return {name: amount for name, amount in (("GPU", gpus_each), ("CPU", cpus_each)) if amount > 0}


async def reserve_engine_groups(count: int, bundle: Mapping[str, float], *, name_prefix: str,
                                timeout_s: float = PLACEMENT_TIMEOUT_S) -> list[Any]:
    """One `STRICT_PACK` placement group per engine, each reserved before this returns.

    Groups already created are removed again if a later one cannot be reserved in `timeout_s` (other
    jobs may hold the GPUs), and the error says so."""
    from ray.util.placement_group import placement_group

    groups = [placement_group([dict(bundle)], strategy="STRICT_PACK", name=f"{name_prefix}-{i}")
              for i in range(count)]
    try:
        await asyncio.wait_for(asyncio.gather(*(_await_ready(group) for group in groups)), timeout_s)
    except TimeoutError:
        release_groups(groups)
        raise UserError(f"ray: {count} engine placement(s) of {dict(bundle)} not reserved within {timeout_s:g} s; "
                        "other jobs may hold the GPUs (see `ray status`), or lower num_engines") from None
    except BaseException:
        release_groups(groups)
        raise
    return groups


async def _await_ready(group: Any) -> None:
    await asyncio.wrap_future(group.ready().future())


def release_groups(groups: Sequence[Any]) -> None:
    """Give the engines' reservations back to the cluster (best effort: the cluster may be gone)."""
    from ray.util.placement_group import remove_placement_group

    for group in groups:
        with contextlib.suppress(Exception):  # a group of a cluster that is shutting down
            remove_placement_group(group)


def multi_gpu_engine_config(config: Mapping[str, Any], gpus_each: float) -> dict[str, Any]:
    """The run config an engine actor builds its engine from, told how many GPUs it holds.

    With more than one GPU, vLLM shards the model over them (`tensor_parallel_size`, with vLLM's own
    worker processes: the actor already owns the GPUs, so vLLM must not ask Ray for more) and hf lets
    accelerate spread the layers (`device_map=auto`). What the user set wins. The manifest keeps the
    user's config: how a model is spread does not change what a query's answer is meant to be.
    """
    shaped = copy.deepcopy(dict(config))
    gpus = int(gpus_each)
    if gpus <= 1:
        return shaped
    model_args = dict(shaped.get("model_args") or {})
    if shaped.get("model") == "vllm":
        model_args.setdefault("tensor_parallel_size", gpus)
        engine_args = dict(model_args.get("engine_args") or {})
        engine_args.setdefault("distributed_executor_backend", "mp")
        model_args["engine_args"] = engine_args
    elif shaped.get("model") == "hf" and model_args.get("device_map") is None \
            and model_args.get("device", "auto") == "auto":  # an explicit device is the user's placement
        model_args["device_map"] = "auto"
    shaped["model_args"] = model_args
    return shaped
