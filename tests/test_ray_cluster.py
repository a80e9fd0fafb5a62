"""The Ray executor across nodes: placement, a killed engine, a lost node; the driver's requeue loop.

The cluster tests run on a multi-node `ray.cluster_utils.Cluster` on this machine (a head node
without GPUs and two worker nodes with two fake GPUs each), driving the CLI with the scripted engine
as test_ray_faults.py does. The dispatcher and layout tests need no cluster.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from types import SimpleNamespace

import pytest
from test_ray_faults import _check_once
from test_runner_resume import answer_bytes, run_args, write_setup

from toolbench_eval.cli import main
from toolbench_eval.errors import UserError
from toolbench_eval.runner.config import RunConfig
from toolbench_eval.runner.driver import WorkItem, is_infrastructure_failure
from toolbench_eval.runner.ray_dispatch import AgentDispatcher
from toolbench_eval.runner.ray_executor import ray_init_options
from toolbench_eval.runner.ray_placement import (
    engine_bundle,
    engine_count,
    engines_that_fit,
    multi_gpu_engine_config,
)

ray = pytest.importorskip("ray")
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayTaskError


# ---- the driver's dispatch loop, with stand-in worker handles ---------------------------------
class _Recorder:
    """Records what the dispatcher reports, in order."""

    def __init__(self):
        self.log = []
        self.abort_reason = None

    def started(self, item):
        self.log.append(("started", item.key))

    def finished(self, item, result):
        self.log.append(("finished", item.key, result))

    def failed(self, item, error, trace=None):
        self.log.append(("failed", item.key, error))

    def requeued(self, item, reason):
        self.log.append(("requeued", item.key))

    def count(self, kind):
        return Counter(entry[1] for entry in self.log if entry[0] == kind)


class _Worker:
    """A stand-in agent worker: `solve` answers after `steps` loop turns; `die_after` calls in, every call
    still in flight (and every later one) fails with Ray's actor-died error; `restarts` says whether the
    `ready` probe finds it back, `heals` whether it then stays up."""

    def __init__(self, name, *, die_after=None, restarts=False, heals=True, steps=3):
        self.name, self.die_after, self.restarts, self.heals, self.steps = name, die_after, restarts, heals, steps
        self.calls, self.dead, self.in_flight = 0, False, 0
        self.solve, self.ready = _Method(self._solve), _Method(self._ready)

    async def _solve(self, query):
        self.calls += 1
        if self.die_after is not None and self.calls > self.die_after:
            self.dead = True
        self.in_flight += 1
        try:
            for _ in range(self.steps):
                await asyncio.sleep(0)
                if self.dead:
                    raise ActorDiedError()
            return f"{self.name}:{query}"
        finally:
            self.in_flight -= 1

    async def _ready(self):
        await asyncio.sleep(0)
        if not self.restarts:
            raise ActorDiedError()
        self.probes = getattr(self, "probes", 0) + 1
        if self.probes % 2:  # Ray answers "restarting" at first
            raise ActorUnavailableError("The actor is restarting", None)
        self.dead = False  # the restarted actor is a fresh process
        if self.heals:
            self.die_after = None
        return True


class _Method:
    """`.remote(...)` starts the call at once, as a Ray actor call is sent at once."""

    def __init__(self, function):
        self.function = function

    def remote(self, *args):
        return asyncio.ensure_future(self.function(*args))


def _items(n):
    return [WorkItem("G1", SimpleNamespace(query_id=i)) for i in range(n)]


@pytest.fixture(autouse=True)
def _quick_restart_probe(monkeypatch):
    monkeypatch.setattr("toolbench_eval.runner.ray_dispatch.RESTART_POLL_S", 0.01)


def test_dispatcher_requeues_the_lost_workers_in_flight_queries_only():
    recorder = _Recorder()
    lost, live = _Worker("lost", die_after=3), _Worker("live")
    facts = asyncio.run(AgentDispatcher([lost, live], 2, recorder).run(_items(8)))
    finished = recorder.count("finished")
    # Every query answered once, by the live worker when the lost one had it in flight; started once each.
    assert sorted(finished) == [f"G1/{i}" for i in range(8)] and set(finished.values()) == {1}
    assert set(recorder.count("started").values()) == {1} and not recorder.count("failed")
    answered_by_lost = {e[1] for e in recorder.log if e[0] == "finished" and e[2].startswith("lost:")}
    requeued = set(recorder.count("requeued"))
    assert requeued and not requeued & answered_by_lost  # a finished query is never run again
    for key in requeued:  # requeued before it finished (on the live worker)
        order = [e[0] for e in recorder.log if e[1] == key]
        assert order.index("requeued") < order.index("finished")
    assert facts == {"workers_lost": 1, "queries_requeued": len(requeued)}


def test_dispatcher_takes_a_restarted_worker_back():
    recorder = _Recorder()
    flaky = _Worker("flaky", die_after=1, restarts=True, steps=1)
    back = asyncio.Event()
    original = flaky._solve

    async def flaky_solve(query):
        answer = await original(query)
        if flaky.calls > 1:  # answered after its restart
            back.set()
        return answer

    async def held_solve(query):  # holds its one query until the flaky worker is back
        await back.wait()
        return f"held:{query}"

    flaky.solve, held = _Method(flaky_solve), _Worker("held")
    held.solve = _Method(held_solve)
    asyncio.run(asyncio.wait_for(AgentDispatcher([flaky, held], 1, recorder).run(_items(6)), 30))
    answered_by = Counter(e[2].split(":")[0] for e in recorder.log if e[0] == "finished")
    # The held worker answers nothing until the flaky one answered again after its restart (else: timeout).
    assert back.is_set() and sum(answered_by.values()) == 6 and sum(recorder.count("requeued").values()) == 1


def test_dispatcher_records_an_engine_loss_raised_inside_a_live_worker_as_a_failure():
    recorder = _Recorder()
    worker = _Worker("w")

    async def solve(query):  # the worker's own code raised Ray's actor-died error (from an engine call)
        raise RayTaskError("solve", "traceback", ActorDiedError()).as_instanceof_cause()

    worker.solve = _Method(solve)
    facts = asyncio.run(AgentDispatcher([worker], 1, recorder).run(_items(2)))
    assert facts == {"workers_lost": 0, "queries_requeued": 0} and len(recorder.count("failed")) == 2


def test_dispatcher_fails_the_queue_as_infrastructure_when_every_worker_is_lost():
    recorder = _Recorder()
    facts = asyncio.run(AgentDispatcher([_Worker("a", die_after=0), _Worker("b", die_after=0)], 1, recorder)
                        .run(_items(5)))
    failed = [e for e in recorder.log if e[0] == "failed"]
    assert len(failed) == 5 and all(is_infrastructure_failure(e[2]) for e in failed)
    assert not recorder.count("finished") and set(recorder.count("started").values()) == {1}
    assert facts["workers_lost"] == 2


def test_dispatcher_gives_up_on_a_query_that_keeps_losing_its_worker():
    recorder = _Recorder()
    crash_loop = _Worker("crash", die_after=0, restarts=True, heals=False)  # back after each loss, and dies again
    asyncio.run(AgentDispatcher([crash_loop], 1, recorder, max_requeues=2).run(_items(1)))
    assert recorder.count("requeued") == {"G1/0": 2}
    (failure,) = [e for e in recorder.log if e[0] == "failed"]
    assert is_infrastructure_failure(failure[2]) and "3 times" in str(failure[2])


# ---- layout and options, no cluster ------------------------------------------------------------
def test_engines_fit_per_node_never_across():
    assert engines_that_fit([2, 2], 2) == 2
    assert engines_that_fit([3, 1], 2) == 1  # 4 GPUs, but the spare ones are on different nodes
    assert engines_that_fit([8], 2.5) == 3
    assert engine_bundle(2, 0.5) == {"GPU": 2, "CPU": 0.5} and engine_bundle(2, 0) == {"GPU": 2}


def test_multi_gpu_engine_config_tells_the_engine_its_gpus():
    vllm = multi_gpu_engine_config({"model": "vllm", "model_args": {"pretrained": "m"}}, 2.0)
    assert vllm["model_args"] == {"pretrained": "m", "tensor_parallel_size": 2,
                                  "engine_args": {"distributed_executor_backend": "mp"}}
    user = {"model": "vllm", "model_args": {"tensor_parallel_size": 1, "engine_args": {"distributed_executor_backend": "ray"}}}
    assert multi_gpu_engine_config(user, 4)["model_args"] == user["model_args"]  # the user's settings win
    assert multi_gpu_engine_config({"model": "hf", "model_args": {}}, 2)["model_args"] == {"device_map": "auto"}
    assert multi_gpu_engine_config({"model": "hf", "model_args": {"device": "cuda:0"}}, 2)["model_args"] == {
        "device": "cuda:0"}  # device and device_map together are refused (check_device_map)
    one = {"model": "hf", "model_args": {"pretrained": "m"}}
    assert multi_gpu_engine_config(one, 1) == one and multi_gpu_engine_config(one, 0) == one
    shaped = multi_gpu_engine_config(one, 2)
    assert one["model_args"] == {"pretrained": "m"} and shaped is not one  # the run's own config is untouched
    # What the engine actor builds from: the shaped model args survive RunConfig.
    built = RunConfig.from_mapping({**RunConfig().as_dict(), **vllm, "model": "vllm"})
    assert built.model_args["tensor_parallel_size"] == 2


def test_runtime_env_reaches_ray_init_and_the_config_accepts_it():
    env = {"working_dir": ".", "env_vars": {"HF_HOME": "/data/hf"}}
    assert ray_init_options({"address": "auto", "runtime_env": env}) == {
        "address": "auto", "include_dashboard": False, "runtime_env": env}
    assert ray_init_options({"num_cpus": 1, "temp_dir": "/tmp/x", "runtime_env": env})["runtime_env"] == env
    assert "runtime_env" not in ray_init_options({"address": "auto"})
    with pytest.raises(UserError, match="runtime_env must be a mapping"):
        ray_init_options({"runtime_env": "working_dir=."})
    assert RunConfig.from_mapping({"ray": {"address": "auto", "runtime_env": env}}).ray["runtime_env"] == env
    # A token there would land in manifest.json in the clear: refused before anything runs.
    with pytest.raises(UserError, match=r"\['HF_TOKEN'\] look like credentials"):
        RunConfig.from_mapping({"ray": {"runtime_env": {"env_vars": {"HF_TOKEN": "hf_x", "HF_HOME": "/d"}}}})


# ---- a multi-node cluster ----------------------------------------------------------------------
NODE = {"num_cpus": 1, "num_gpus": 2, "object_store_memory": 80 * 2**20}


@pytest.fixture(scope="module")
def cluster():
    """Head (no GPUs) + two nodes with 2 fake GPUs each. A test that removes a node adds one like it back."""
    from ray.cluster_utils import Cluster

    temp_dir = tempfile.mkdtemp(prefix="tbrc")  # short: Ray's socket paths must stay under 107 bytes
    os.makedirs(os.path.join(temp_dir, "ray"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "disabled")
        patch.setenv("RAY_TMPDIR", temp_dir)  # Ray writes its cluster address file there, not in /tmp/ray
        # A lost node is noticed in a few seconds instead of Ray's default 15+ s (not faster: a busy machine
        # would make a healthy node look lost).
        head = {"num_cpus": 1, "num_gpus": 0, "object_store_memory": 80 * 2**20, "include_dashboard": False,
                "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 5,
                                   "health_check_initial_delay_ms": 0}}
        cluster = Cluster(initialize_head=True, head_node_args=head)
        try:
            nodes = [cluster.add_node(**NODE) for _ in range(2)]
            ray.init(address=cluster.address, log_to_driver=False)
            yield SimpleNamespace(cluster=cluster, nodes=nodes)
        finally:
            ray.shutdown()
            cluster.shutdown()
            shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def setup_and_local(tmp_path_factory):
    root = tmp_path_factory.mktemp("raycluster")
    setup = write_setup(root, queries_per_group=4)  # 8 queries
    local = root / "runs" / "local"
    assert main(run_args(setup, local)) == 0
    assert len(answer_bytes(local)) == 8
    return setup, local


def _cluster_run(tmp_path, setup, name, *, delay, ray_block):
    out = tmp_path / "runs" / name
    args = run_args(setup, out, "--executor", "ray", "--concurrency", "2", delay=delay)
    config = tmp_path / "runs" / f"{name}.yaml"
    config.write_text(f"tool_backend: {{name: cache, cache_dir: {setup['cache']}}}\n"
                      f"ray: {{cpus_per_engine: 0.5, {ray_block}}}\n")
    args[args.index("--config") + 1] = str(config)
    return out, args


def _events(out):
    return [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]


def _start(args):
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("rc", main(args)), daemon=True)
    thread.start()
    return thread, result


def _wait_until(condition, thread, seconds=180):
    deadline = time.monotonic() + seconds
    while thread.is_alive() and time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.02)
    return None


def test_engine_count_keeps_each_engine_on_one_node(cluster):
    assert engine_count(SimpleNamespace(ray={"gpus_per_engine": 2})) == (2, 2.0)
    assert engine_count(SimpleNamespace(ray={})) == (4, 1.0)
    # 4 GPUs in all, but no node has 3 (or 4): refused, instead of a placement group that never fits.
    for asked in ({"gpus_per_engine": 3}, {"num_engines": 1, "gpus_per_engine": 4}):
        with pytest.raises(UserError, match="one engine's GPUs on one node"):
            engine_count(SimpleNamespace(ray=asked))
    for bad, message in (({"gpus_per_engine": "two"}, "gpus_per_engine must be a number"),
                         ({"num_engines": 1.5}, "num_engines must be a whole number"),
                         ({"num_engines": -1}, "num_engines must be >= 1"),
                         ({"gpus_per_engine": -1}, "gpus_per_engine must be >= 0")):
        with pytest.raises(UserError, match=message):
            engine_count(SimpleNamespace(ray=bad))


def test_two_gpus_per_engine_in_placement_groups(cluster, setup_and_local, tmp_path):
    setup, local = setup_and_local
    before = set(ray.util.placement_group_table())
    out, args = _cluster_run(tmp_path, setup, "g2", delay=0.02, ray_block="gpus_per_engine: 2, num_workers: 2")
    assert main(args) == 0
    facts = _check_once(out, local)
    assert facts["engines"] == 2 and facts["gpus_per_engine"] == 2 and facts["workers_lost"] == 0
    groups = [g for key, g in ray.util.placement_group_table().items() if key not in before]
    # One group per engine, its GPUs packed on one node, given back at the end.
    assert len(groups) == 2 and all(g["strategy"] == "STRICT_PACK" for g in groups)
    assert [g["bundles"] for g in groups] == [{0: {"GPU": 2.0, "CPU": 0.5}}] * 2
    assert {g["state"] for g in groups} == {"REMOVED"}
    deadline = time.monotonic() + 30  # Ray's resource view catches up asynchronously
    while ray.available_resources().get("GPU") != 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ray.available_resources().get("GPU") == 4


def test_engine_killed_mid_run_answers_every_query_once(cluster, setup_and_local, tmp_path):
    setup, local = setup_and_local
    out, args = _cluster_run(tmp_path, setup, "kill", delay=0.3, ray_block="gpus_per_engine: 2, num_workers: 2")
    thread, result = _start(args)

    def kill_a_busy_engine():
        for name in sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                           if a["name"].startswith("toolbench-engine-")):
            try:
                handle = ray.get_actor(name)
                if ray.get(handle.load.remote(), timeout=5) > 0:  # a request in flight on it: kill it now
                    ray.kill(handle, no_restart=False)
                    return name
            except (ray.exceptions.RayError, ValueError):  # gone already, or not yet reachable
                continue
        return None

    killed = _wait_until(kill_a_busy_engine, thread)
    thread.join(timeout=300)  # generous: actors restart slowly on a loaded 2-core machine
    assert killed is not None, "no engine was seen busy before the run ended"
    assert not thread.is_alive() and result["rc"] == 0
    facts = _check_once(out, local)
    assert facts["engines"] == 2 and facts["engines_down"] == 0  # restarted in its placement group


def test_cli_joins_a_running_cluster_by_address(cluster, setup_and_local, tmp_path):
    """docs/multinode.md's command: a separate `toolbench-eval run --ray-address auto` process on a node of the
    cluster joins it (Ray finds it through RAY_TMPDIR's address file, as after `ray start`), answers everything,
    and leaves the cluster running when it disconnects."""
    setup, local = setup_and_local
    out, args = _cluster_run(tmp_path, setup, "joined", delay=0.02, ray_block="gpus_per_engine: 2, num_workers: 2")
    log = tmp_path / "joined.log"
    with log.open("w") as sink:
        rc = subprocess.run([sys.executable, "-m", "toolbench_eval", *args, "--ray-address", "auto"],
                            check=False, stdout=sink, stderr=subprocess.STDOUT, timeout=300).returncode
    assert rc == 0, log.read_text()[-3000:]
    assert _check_once(out, local)["engines"] == 2
    assert ray.cluster_resources().get("GPU") == 4 and len([n for n in ray.nodes() if n["Alive"]]) == 3


def test_the_multinode_example_config_is_valid():
    config = RunConfig.from_yaml(os.path.join(os.path.dirname(__file__), "..", "configs", "ray_multinode.yaml"))
    assert config.executor == "ray" and len(config.groups) == 6
    options = ray_init_options({**config.ray, "address": "auto"})  # what --ray-address auto makes of it
    assert options == {"address": "auto", "include_dashboard": False, "runtime_env": config.ray["runtime_env"]}


def _busy_worker_node(nodes):
    """One of `nodes` that runs an agent worker with a trajectory under way while some worker runs elsewhere
    (Ray's SPREAD is best effort: all of them can land on one node, whose loss would leave none), or None.
    Every worker is asked at once, so the answer is as fresh as it can be when the test acts on it (a killed
    worker may still be listed for a moment: skipped)."""
    refs = []
    for actor in ray.util.list_named_actors(all_namespaces=True):
        if actor["name"].startswith("toolbench-worker-"):
            try:
                handle = ray.get_actor(actor["name"], namespace=actor["namespace"])
            except ValueError:
                continue
            refs.append(handle.__ray_call__.remote(lambda self: (ray.get_runtime_context().get_node_id(), self.load())))
    where = []
    for ref in refs:
        try:
            where.append(ray.get(ref, timeout=30))
        except ray.exceptions.RayError:
            continue
    for node in nodes:
        loads = [load for node_id, load in where if node_id == node.node_id]
        if any(loads) and len(loads) < len(where):
            return node
    return None


def _lose_node(cluster, node):
    """The node goes away as a machine would: every process it runs dies at once. (Removing it alone kills
    its raylet, but a worker process can outlive its raylet long enough to finish a trajectory and answer.)"""
    import psutil

    raylet = node.all_processes["raylet"][0].process.pid
    processes = psutil.Process(raylet).children(recursive=True)
    for process in processes:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue
    cluster.cluster.remove_node(node, allow_graceful=False)
    cluster.nodes.remove(node)


@pytest.mark.parametrize("replaced", [True, False], ids=["node-replaced", "node-gone-for-good"])
def test_node_lost_mid_run_answers_every_query_once(cluster, setup_and_local, tmp_path, replaced):
    """Replaced: Ray restarts the lost engine (in its placement group) and workers on the new node. Gone for
    good (`max_restarts: 0`): the routers route around the lost engine, the driver around the lost workers."""
    setup, local = setup_and_local
    restarts = "" if replaced else ", max_restarts: 0"
    # Half a CPU per worker: the head holds two of the three, so one at least runs on a node with GPUs, and
    # never all three on one node (Ray's SPREAD alone is best effort).
    out, args = _cluster_run(tmp_path, setup, f"lost-{replaced}", delay=0.3,
                             ray_block=f"gpus_per_engine: 2, num_workers: 3, cpus_per_worker: 0.5{restarts}")
    thread, result = _start(args)

    def a_worker_node_busy():
        # After the first answer: the node (not the head) of a worker with a trajectory under way, so its loss
        # is seen (a worker that already handed in all its work could go without anyone noticing).
        if not (out / "events.jsonl").exists() or not any(e["event"] == "query_finished" for e in _events(out)):
            return None
        return _busy_worker_node(cluster.nodes)

    node = _wait_until(a_worker_node_busy, thread)
    assert node is not None, "no worker node was busy before the run ended"
    finished_before = {(e["group"], e["query_id"]) for e in _events(out) if e["event"] == "query_finished"}
    _lose_node(cluster, node)
    if replaced:
        cluster.nodes.append(cluster.cluster.add_node(**NODE))
    thread.join(timeout=300)  # generous: actors restart slowly on a loaded 2-core machine
    if not replaced:
        cluster.nodes.append(cluster.cluster.add_node(**NODE))  # the next test gets the cluster it expects
    assert not thread.is_alive() and result["rc"] == 0
    facts = _check_once(out, local)
    assert facts["workers_lost"] >= 1 and facts["queries_requeued"] >= 1
    events = _events(out)
    requeued = {(e["group"], e["query_id"]) for e in events if e["event"] == "query_requeued"}
    assert requeued and not requeued & finished_before  # only unfinished queries ran again
    assert set(Counter((e["group"], e["query_id"]) for e in events if e["event"] == "query_started").values()) == {1}
    assert facts["engines_down"] == (0 if replaced else 1)
