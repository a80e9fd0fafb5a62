"""The Ray executor on a real local cluster gives the same answer files as the local executor."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile

import pytest
from test_runner_resume import answer_bytes, run_args, write_setup

from toolbench_eval.cli import main
from toolbench_eval.engines.base import Completion
from toolbench_eval.runner.ray_executor import EngineRouter, ray_init_options

ray = pytest.importorskip("ray")


class _Handle:
    """A stand-in for an actor handle: `.generate.remote(...)` is awaitable."""

    def __init__(self, name, log):
        self.name, self.log = name, log
        self.generate = self

    def remote(self, prompts, params, keys):
        self.log.append((self.name, tuple(keys)))

        async def done():
            await asyncio.sleep(0)
            return [Completion(self.name, 1, 1, "stop") for _ in prompts]

        return done()


def test_router_is_least_loaded_then_sticky():
    log = []
    router = EngineRouter([_Handle("a", log), _Handle("b", log)])

    async def main_():
        # Two new trajectories at once go to different engines; later calls follow their first engine.
        first = await asyncio.gather(router.generate(["p"], None, cache_keys=["t1"]),
                                     router.generate(["p"], None, cache_keys=["t2"]))
        again = await asyncio.gather(router.generate(["p"], None, cache_keys=["t2"]),
                                     router.generate(["p"], None, cache_keys=["t1#branch1"]))
        return first, again

    first, again = asyncio.run(main_())
    assert {first[0][0].text, first[1][0].text} == {"a", "b"}
    assert again[0][0].text == first[1][0].text and again[1][0].text == first[0][0].text
    assert router.load == [0, 0]


def test_ray_init_options():
    assert ray_init_options({"address": "auto"}) == {"address": "auto", "include_dashboard": False}
    local = ray_init_options({"num_cpus": 2, "temp_dir": "/tmp/x"})
    assert local["num_cpus"] == 2 and local["_temp_dir"] == "/tmp/x" and local["include_dashboard"] is False


def test_ray_executor_matches_local(tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    setup = write_setup(tmp_path, queries_per_group=4)
    local = tmp_path / "runs" / "local"
    assert main(run_args(setup, local, "--concurrency", "3")) == 0
    temp_dir = tempfile.mkdtemp(prefix="tbray")  # short: Ray's socket paths must stay under 107 bytes
    config = tmp_path / "runs" / "ray.yaml"
    config.write_text(f"tool_backend: {{name: cache, cache_dir: {setup['cache']}}}\n"
                      f"ray: {{num_cpus: 2, num_engines: 2, num_workers: 2, temp_dir: {temp_dir}, cpus_per_engine: 0.5}}\n")
    remote = tmp_path / "runs" / "ray"
    args = run_args(setup, remote, "--executor", "ray", "--concurrency", "3")
    args[args.index("--config") + 1] = str(config)
    try:
        assert main(args) == 0
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert not ray.is_initialized()
    assert answer_bytes(remote) == answer_bytes(local) and len(answer_bytes(local)) == 8
    events = [json.loads(line) for line in (remote / "events.jsonl").read_text().splitlines()]
    facts = next(e for e in events if e["event"] == "run_finished")["executor_facts"]
    assert facts["engines"] == 2 and facts["workers"] == 2 and facts["engine_batches"] >= 1
    assert os.environ.get("RAY_AUTH_MODE") == "disabled"
