"""The Ray executor under faults, on a local Ray cluster with fake GPU resources.

Engines sized from `gpus_per_engine`; an engine actor killed mid-run (restarted by Ray, or dead for
good and routed around) still ends with every query answered exactly once; the router's handling of
Ray's actor-died errors.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import threading
import time
from collections import Counter
from types import SimpleNamespace

import pytest
from test_runner_resume import answer_bytes, run_args, write_setup

from reasoning.protocols import InfrastructureError
from toolbench_eval.cli import main
from toolbench_eval.engines.base import Completion
from toolbench_eval.errors import UserError
from toolbench_eval.runner.driver import is_infrastructure_failure
from toolbench_eval.runner.ray_executor import EngineRouter, ray_init_options
from toolbench_eval.runner.ray_placement import engine_count

ray = pytest.importorskip("ray")
from ray.exceptions import ActorDiedError, RayActorError


class _Handle:
    """A stand-in for an engine actor handle; `dead=True` makes every call raise Ray's actor-died error."""

    def __init__(self, name, log, dead=False, error=RayActorError):
        self.name, self.log, self.dead, self.error = name, log, dead, error
        self.generate = self

    def remote(self, prompts, params, keys):
        self.log.append((self.name, tuple(keys)))

        async def done():
            await asyncio.sleep(0)
            if self.dead:
                raise self.error()
            return [Completion(self.name, 1, 1, "stop") for _ in prompts]

        return done()


def test_router_marks_a_dead_engine_down_and_resends_once():
    log = []
    handles = [_Handle("a", log, dead=True), _Handle("b", log), _Handle("c", log, dead=True, error=ActorDiedError)]
    router = EngineRouter(handles)

    async def main_():
        first = await router.generate(["p", "q"], None, cache_keys=["t1", "t2#branch1"])
        more = [await router.generate(["p"], None, cache_keys=[f"t{i}"]) for i in range(3, 9)]
        return first, more

    first, more = asyncio.run(main_())
    # Both were sent to dead engines first, then re-sent (once) to the live one; dead engines get nothing more.
    assert [c.text for c in first] == ["b", "b"] and all(r[0].text == "b" for r in more)
    assert router.down == {0, 2} and set(router.sticky.values()) == {1}
    assert sum(1 for name, _ in log if name != "b") == 2  # each dead engine was tried exactly once
    assert router.load == [0, 0, 0]


def test_router_raises_infrastructure_error_when_no_engine_is_live():
    log = []
    router = EngineRouter([_Handle("a", log, dead=True), _Handle("b", log, dead=True)])
    with pytest.raises(InfrastructureError) as caught:
        asyncio.run(router.generate(["p"], None, cache_keys=["t1"]))
    assert is_infrastructure_failure(caught.value) and router.down == {0, 1} and not router.sticky
    with pytest.raises(InfrastructureError):  # and stays so, without calling the dead engines again
        asyncio.run(router.generate(["p"], None, cache_keys=["t2"]))
    assert len(log) == 2 and router.load == [0, 0]


def test_router_passes_other_errors_through():
    class Broken(_Handle):
        def remote(self, prompts, params, keys):
            async def fail():
                raise ValueError("bad prompt")

            return fail()

    router = EngineRouter([Broken("a", []), _Handle("b", [])])
    with pytest.raises(ValueError):
        asyncio.run(router.generate(["p"], None, cache_keys=["t1"]))
    assert router.down == set() and router.load == [0, 0]


@pytest.fixture(scope="module")
def cluster():
    import os

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    temp_dir = tempfile.mkdtemp(prefix="tbrf")  # short: Ray's socket paths must stay under 107 bytes
    ray.init(**ray_init_options({"num_cpus": 4, "num_gpus": 4, "temp_dir": temp_dir}), log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_engine_count_from_gpus_per_engine(cluster):
    assert engine_count(SimpleNamespace(ray={"gpus_per_engine": 2})) == (2, 2.0)
    assert engine_count(SimpleNamespace(ray={})) == (4, 1.0)
    assert engine_count(SimpleNamespace(ray={"gpus_per_engine": 3})) == (1, 3.0)
    assert engine_count(SimpleNamespace(ray={"gpus_per_engine": 0})) == (1, 0.0)
    with pytest.raises(UserError, match="cluster has 4"):
        engine_count(SimpleNamespace(ray={"gpus_per_engine": 8}))
    with pytest.raises(UserError, match="cluster has 4"):
        engine_count(SimpleNamespace(ray={"num_engines": 3, "gpus_per_engine": 2}))


def _ray_run(tmp_path, setup, name, delay, extra_ray=""):
    out = tmp_path / "runs" / name
    args = run_args(setup, out, "--executor", "ray", "--concurrency", "4", delay=delay)
    config = tmp_path / "runs" / f"{name}.yaml"
    config.write_text(f"tool_backend: {{name: cache, cache_dir: {setup['cache']}}}\n"
                      f"ray: {{gpus_per_engine: 2, num_workers: 2, cpus_per_engine: 0.5{extra_ray}}}\n")
    args[args.index("--config") + 1] = str(config)
    return out, args


def _check_once(out, local):
    """Every query answered exactly once: one answer file each, one `query_finished` each, no failures."""
    assert answer_bytes(out) == answer_bytes(local)
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    finished = Counter((e["group"], e["query_id"]) for e in events if e["event"] == "query_finished")
    assert len(finished) == len(answer_bytes(local)) and set(finished.values()) == {1}
    assert not [e for e in events if e["event"] == "query_failed"]
    return next(e for e in events if e["event"] == "run_finished")["executor_facts"]


@pytest.fixture(scope="module")
def setup_and_local(tmp_path_factory):
    root = tmp_path_factory.mktemp("rayfaults")
    setup = write_setup(root, queries_per_group=2)  # 4 queries
    local = root / "runs" / "local"
    assert main(run_args(setup, local)) == 0
    assert len(answer_bytes(local)) == 4
    return setup, local


def test_gpus_per_engine_two_completes(cluster, setup_and_local, tmp_path):
    setup, local = setup_and_local
    out, args = _ray_run(tmp_path, setup, "g2", delay=0.05)
    assert main(args) == 0
    facts = _check_once(out, local)
    assert facts["engines"] == 2 and facts["engines_down"] == 0


@pytest.mark.parametrize("no_restart", [False, True], ids=["restarted", "dead-for-good"])
def test_engine_killed_mid_run_answers_every_query_once(cluster, setup_and_local, tmp_path, no_restart):
    setup, local = setup_and_local
    out, args = _ray_run(tmp_path, setup, "kill", delay=0.3)
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("rc", main(args)), daemon=True)
    thread.start()
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and thread.is_alive() and time.monotonic() < deadline:
        names = sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                       if a["name"].startswith("toolbench-engine-"))
        for name in names:
            try:
                handle = ray.get_actor(name)
                if ray.get(handle.load.remote(), timeout=5) > 0:  # a request in flight on it: kill it now
                    ray.kill(handle, no_restart=no_restart)
                    killed = name
                    break
            except (ray.exceptions.RayError, ValueError):  # gone already, or not yet reachable
                continue
        time.sleep(0.02)
    thread.join(timeout=120)
    assert killed is not None, "no engine was seen busy before the run ended"
    assert not thread.is_alive() and result["rc"] == 0
    facts = _check_once(out, local)
    # Restarted: Ray re-ran the call in flight on the restarted actor, no router gave up on it. Dead for
    # good: the routers marked it down and re-sent its requests to the other engine.
    assert facts["engines"] == 2 and facts["engines_down"] == (1 if no_restart else 0)
