"""Runner building blocks with small fakes: config, run directory, adapters, local executor."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from toolbench_eval.benchmark.model import Api, Parameter, Query
from toolbench_eval.engines.base import Completion
from toolbench_eval.errors import UserError
from toolbench_eval.runner.adapters import (
    TOOLLLAMA_STOP,
    BackendToolEnvironment,
    EngineModelClient,
    sampling_params,
)
from toolbench_eval.runner.agent import SolveResult, query_seed
from toolbench_eval.runner.config import RunConfig, parse_bucket_request, parse_key_values
from toolbench_eval.runner.driver import Recorder, plan_work
from toolbench_eval.runner.local import run_local
from toolbench_eval.runner.manifest import Manifest
from toolbench_eval.runner.rundir import RunDir
from toolbench_eval.tools.base import Observation, Status, ToolBackend


# ---- config -----------------------------------------------------------------------------------
def test_yaml_config_and_flag_override(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("method: dfsdt\ngroups: [G1_instruction]\nmodel_args: pretrained=default,dtype=float32\n"
                    "decoding: {max_new_tokens: 64}\n")
    config = RunConfig.from_yaml(path).override({"concurrency": 3, "decoding": {"temperature": 0.5}, "limit": None})
    assert config.method == "dfsdt" and config.method_name == "DFS_woFilter_w2"
    assert config.model_args == {"pretrained": "default", "dtype": "float32"}
    assert config.decoding["max_new_tokens"] == 64 and config.decoding["temperature"] == 0.5
    assert config.concurrency == 3


def test_config_errors_name_the_field(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("methd: react\n")
    with pytest.raises(UserError, match=r"c\.yaml.*methd"):
        RunConfig.from_yaml(path)
    with pytest.raises(UserError, match="method"):
        RunConfig.from_mapping({"method": "mcts"})
    with pytest.raises(UserError, match="auto:N"):
        RunConfig.from_mapping({"buckets": "auto:x"})
    with pytest.raises(UserError, match="key=value"):
        parse_key_values("pretrained")


def test_bucket_request_parsing_and_identity():
    assert parse_bucket_request("auto:3") == ("auto", 3)
    assert parse_bucket_request("10000,30000") == ("explicit", (10000.0, 30000.0))
    a = RunConfig.from_mapping({"concurrency": 1, "executor": "local", "limit": 2})
    b = RunConfig.from_mapping({"concurrency": 8, "executor": "ray", "limit": 10})
    assert a.identity() == b.identity()  # execution-only fields do not change what a run is
    assert a.identity() != RunConfig.from_mapping({"seed": 1}).identity()


# ---- run directory ----------------------------------------------------------------------------
def test_answer_files_are_atomic_and_partials_are_cleaned(tmp_path):
    rundir = RunDir(tmp_path / "run")
    rundir.prepare(Manifest(run_id="run", method="CoT@1", config=RunConfig().as_dict()))
    path = rundir.write_answer("G1_instruction", "7", "CoT@1", {"x": 1})
    assert path.name == "7_CoT@1.json" and json.loads(path.read_text()) == {"x": 1}
    # A temporary left by a killed writer (made the way the writer makes them, never renamed into place) is
    # invisible to readers and removed on the next start.
    from reasoning.answer import open_temporary

    handle, stale = open_temporary(path.parent / "8_CoT@1.json")
    os.write(handle, b"{half")
    os.close(handle)
    assert rundir.finished_ids("G1_instruction", "CoT@1") == {"7"}
    rundir.prepare(Manifest(run_id="run", method="CoT@1", config=RunConfig().as_dict()))
    assert not stale.exists()


def test_different_config_is_refused_unless_forced(tmp_path):
    rundir = RunDir(tmp_path / "run")
    first = Manifest(run_id="run", method="CoT@1", config=RunConfig().as_dict(), created="t0")
    rundir.prepare(first)
    same_but_faster = RunConfig.from_mapping({"concurrency": 32, "limit": 5}).as_dict()
    assert rundir.prepare(first.replace(config=same_but_faster, created="t1")).created == "t0"  # resume keeps it
    other = RunConfig.from_mapping({"seed": 3}).as_dict()
    with pytest.raises(UserError, match=r"(?s)seed: 0 -> 3.*--force-config"):
        rundir.prepare(first.replace(config=other))
    forced = rundir.prepare(first.replace(config=other, created="t1"), force_config=True)
    assert forced.config["seed"] == 3
    assert any(e["event"] == "config_forced" for e in rundir.read_events())


def test_event_log_skips_a_line_cut_by_a_kill(tmp_path):
    rundir = RunDir(tmp_path)
    rundir.log("query_started", group="G", query_id="1")
    with open(rundir.events_path, "a") as handle:
        handle.write('{"time": "x", "event": "query_fini')
    assert [e["event"] for e in rundir.read_events()] == ["query_started"]


# ---- adapters ---------------------------------------------------------------------------------
class RecordingEngine:
    name, bucket_spec = "rec", None

    def __init__(self, reply="Thought: t\nAction: a\nAction Input: {}"):
        self.reply = reply
        self.calls = []

    async def generate(self, prompts, params, *, cache_keys=None):
        self.calls.append((list(prompts), params, list(cache_keys or [])))
        return [Completion(self.reply, 10, 3, "stop") for _ in prompts]

    def count_tokens(self, text):
        return len(text.split())

    async def close(self):
        pass


def test_model_client_passes_trajectory_id_and_stop_strings():
    engine = RecordingEngine()
    client = EngineModelClient(engine, sampling_params({"max_new_tokens": 32}, seed=5),
                               lambda messages, functions: "|".join(m["content"] for m in messages))
    out = asyncio.run(client.generate([{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}], [],
                                      trajectory_id="G1_instruction/7"))
    prompts, params, keys = engine.calls[0]
    assert prompts == ["S|Q"] and keys == ["G1_instruction/7"]
    assert params.max_new_tokens == 32 and params.seed == 5 and params.temperature == 0.0
    assert set(TOOLLLAMA_STOP) <= set(params.stop) and "</s>" in params.stop
    assert (out.text, out.prompt_tokens, out.completion_tokens) == (engine.reply, 10, 3)


class RecordingBackend(ToolBackend):
    name = "rec"

    def __init__(self, response="ok", raises=False):
        self.response, self.raises, self.calls = response, raises, []

    async def call(self, call):
        self.calls.append(call)
        if self.raises:
            raise ConnectionError("boom")
        return Observation(error="", response=self.response)


def _query() -> Query:
    api = Api("Data", "Word Tool", "Get Word By ID", "Looks up a word.",
              required_parameters=(Parameter("id", "NUMBER"),), optional_parameters=(Parameter("From", "STRING"),))
    return Query("7", "find word 3", "G1_instruction", (api,))


def test_tool_environment_maps_names_back_and_truncates():
    from toolbench_eval.benchmark.schemas import build_function_index

    index = build_function_index(_query())
    name = next(iter(index))
    assert name == "get_word_by_id_for_word_tool"
    backend = RecordingBackend(response="x" * 5000)
    env = BackendToolEnvironment(backend, index)
    result = asyncio.run(env.call(name, {"is_id": 3, "is_from": "en"}))
    call = backend.calls[0]
    assert (call.category_name, call.tool_name, call.api_name) == ("Data", "Word Tool", "Get Word By ID")
    assert call.arguments == {"id": 3, "From": "en"}  # schema names -> original parameter names
    assert result.status == 0 and len(result.observation) == 1024 + 3 and result.observation.endswith("...")


def test_tool_environment_unknown_name_and_backend_failure():
    from toolbench_eval.benchmark.schemas import build_function_index

    index = build_function_index(_query())
    env = BackendToolEnvironment(RecordingBackend(raises=True), index)
    unknown = asyncio.run(env.call("nope_for_x", {}))
    assert unknown.status == Status.NO_SUCH_FUNCTION and "No such function name: nope_for_x" in unknown.observation
    failed = asyncio.run(env.call(next(iter(index)), {"is_id": 1}))
    assert failed.status == Status.REQUEST_ERROR and "ConnectionError" in failed.observation


# ---- local executor -------------------------------------------------------------------------------
class FakeAgent:
    """Solves a query after a few event-loop turns; query ids in `explode` raise."""

    def __init__(self, explode=()):
        self.explode, self.in_flight, self.peak = set(explode), 0, 0

    async def solve(self, query):
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            for _ in range(3):
                await asyncio.sleep(0)
            if query.query_id in self.explode:
                raise ValueError(f"bug in {query.query_id}")
            answer = {"answer_generation": {"valid_data": True, "final_answer": query.query, "query_count": 1}}
            return SolveResult(answer, "answered")
        finally:
            self.in_flight -= 1


def _groups(n):
    from toolbench_eval.benchmark.model import Group

    return {"G1_instruction": Group("G1_instruction", tuple(Query(str(i), f"q{i}", "G1_instruction", ())
                                                           for i in range(n)))}


def test_local_executor_bounds_concurrency_and_survives_a_raising_trajectory(tmp_path):
    rundir = RunDir(tmp_path)
    groups = _groups(10)
    plan = plan_work(groups, ["G1_instruction"], rundir, "CoT@1")
    recorder = Recorder(rundir, "CoT@1", plan, progress=False)
    agent = FakeAgent(explode={"4"})
    asyncio.run(run_local(agent, plan.todo, recorder, concurrency=3))
    summary = recorder.close()
    assert agent.peak == 3
    assert rundir.finished_ids("G1_instruction", "CoT@1") == {str(i) for i in range(10)} - {"4"}
    assert summary.counts["G1_instruction"]["errors"] == 1 and summary.counts["G1_instruction"]["answered"] == 9
    failed = [e for e in rundir.read_events() if e["event"] == "query_failed"]
    assert failed[0]["query_id"] == "4" and "bug in 4" in failed[0]["error"]
    # Resume: only the failed query is left, and the limit is applied per group.
    again = plan_work(groups, ["G1_instruction"], rundir, "CoT@1")
    assert [i.query.query_id for i in again.todo] == ["4"]
    assert plan_work(groups, ["G1_instruction"], rundir, "CoT@1", limit=3).todo == []


def test_query_seed_is_independent_of_order():
    assert query_seed(0, "G1_instruction", "7") == query_seed(0, "G1_instruction", "7")
    assert query_seed(0, "G1_instruction", "7") != query_seed(1, "G1_instruction", "7")
    assert 0 <= query_seed(5, "G", "x") < 2**31


def test_resume_refuses_a_run_made_with_other_weights_behind_the_same_spec(tmp_path, monkeypatch):
    from toolbench_eval import models
    from toolbench_eval.runner.execute import build_manifest, execute_run, run_directory

    adapter_dir = tmp_path / "adapter"
    adapter_dir.mkdir()
    (adapter_dir / "adapter_model.safetensors").write_bytes(b"first adapter")
    monkeypatch.setattr(models, "TOOLSMOL_ADAPTER_DIR", adapter_dir)
    config = RunConfig.from_mapping({"model": "hf", "model_args": "pretrained=default", "out": str(tmp_path / "run")})
    first = models.model_weights_id("default")
    assert first.startswith("toolsmol-") and models.model_weights_id("smollm2") == "smollm2-135m-instruct"
    folder = run_directory(config)
    RunDir(folder).prepare(build_manifest(config, folder, tmp_path, None, {}))
    assert RunDir(folder).read_manifest().weights == first

    (adapter_dir / "adapter_model.safetensors").write_bytes(b"retrained adapter")
    assert models.model_weights_id("default") != first
    with pytest.raises(UserError, match=rf"weights {first}, but its model spec now loads toolsmol-"):
        execute_run(config, progress=False)
