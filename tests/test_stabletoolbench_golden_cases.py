"""Parser decisions and observation bytes under `--protocol stabletoolbench`, against upstream's own.

`parser_cases.json`: 60 raw ToolLLaMA outputs through upstream's HF and vLLM clients, `react_parser`, name
matching and `_step` with its server. `observations.json`: 59 server replies through `_step`. Both were made
by running StableToolBench `aa4ed9f4` (see `scripts/stb_golden/`). Cases where upstream itself crashed
(an exception instead of an observation) cannot be reproduced; they are listed and our answer is checked
to be a plain observation instead.
"""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from stb_golden_support import FIXTURES, SAMPLE_QUERIES, ReplayServer

from reasoning.expansion import Expander
from reasoning.protocols import ModelOutput
from reasoning.step import cut_observation, execute_step
from reasoning.trajectory import Trajectory
from reasoning.tree import TreeNode
from toolbench_eval.benchmark.loader import load_query_file, load_tools
from toolbench_eval.benchmark.schemas import build_function_index
from toolbench_eval.runner.adapters import BackendToolEnvironment
from toolbench_eval.runner.build import build_backend
from toolbench_eval.runner.config import RunConfig

PARSER = json.loads((FIXTURES / "parser_cases.json").read_text(encoding="utf-8"))
OBSERVATIONS = json.loads((FIXTURES / "observations.json").read_text(encoding="utf-8"))
# Upstream raised instead of answering (KeyError on a suffix of "Finish", AttributeError on Finish arguments
# that are JSON but not an object, KeyError/TypeError on server replies without the {error, response} shape,
# ConnectionError on a refused connection).
UPSTREAM_CRASHES = {"suffix_of_finish", "finish_arguments_list", "missing_error_key", "body_json_list",
                    "body_json_string", "body_json_null", "connection_refused"}


def query_index(group: str, query_id: int):
    [query] = [q for q in load_query_file(SAMPLE_QUERIES / f"{group}.json", group) if q.query_id == str(query_id)]
    return build_function_index(query, load_tools(FIXTURES / "toolenv" / "tools"), upstream_quirks=True)


def environment(protocol: str, url: str, **options):
    config = RunConfig.from_mapping({"model": "scripted", "protocol": protocol,
                                     "protocol_args": {"on_unavailable": "observe"},
                                     "tool_backend": {"name": "stb", "url": url, **options}})
    backend = build_backend(config)
    return backend, config.eval_protocol


def parser_runs():
    for case in PARSER["cases"]:
        yield pytest.param(case, "hf", id=f"{case['name']}-hf")
        if not case["vllm"].get("same_as_hf"):
            yield pytest.param(case, "vllm", id=f"{case['name']}-vllm")


@pytest.mark.parametrize(("case", "client"), list(parser_runs()))
def test_parser_and_step_decide_as_upstream(case, client):
    expected = case[client]
    step = expected["step"]
    index = query_index(PARSER["query"]["group"], PARSER["query"]["query_id"])
    assert [f["name"] for f in index.functions] == PARSER["function_names"]
    with ReplayServer(step["server_requests"]) as server:
        backend, protocol = environment("stabletoolbench-vllm" if client == "vllm" else "stabletoolbench", server.url)
        trajectory = Trajectory(method="CoT@1", query="q", query_id="588", functions=index.functions,
                                system_message="S", forward_args={}, id_rng=random.Random(0))
        expander = Expander(trajectory, model=None, env=BackendToolEnvironment(backend, index, protocol=protocol),
                        trajectory_id="t", protocol=protocol)
        try:
            leaf = asyncio.run(expander.expand(TreeNode(), ModelOutput(text=case["raw"])))
        finally:
            asyncio.run(backend.close())
    thought, action = leaf.father.father, leaf.father
    assert thought.description == expected["content"]  # the Thought node holds the whole output
    parsed = expected["react_parser"]
    assert (action.description, leaf.description) == (parsed["action"], parsed["action_input"])
    assert leaf.messages[-2]["tool_calls"][0]["function"]["arguments"] == expected["tool_call"]["arguments"]
    assert server.payloads == [request["payload"] for request in step["server_requests"]]
    if case["name"] in UPSTREAM_CRASHES:
        assert "raises" in step
        assert leaf.observation_code in (1, 2)  # no such function / bad Finish arguments, and the run goes on
        return
    assert (leaf.observation, leaf.observation_code) == (step["step"]["observation"], step["step"]["code"])


def test_parser_golden_set_size():
    runs = list(parser_runs())
    assert len(PARSER["cases"]) >= 40 and len(runs) == 69
    assert sum(case["name"] in UPSTREAM_CRASHES for case in PARSER["cases"]) == 2


def observation_reply(case):
    if "server_requests" in case:
        return case["server_requests"]
    reply = case["server_reply"]
    delay = 2.0 if case["name"].startswith("timeout") else 0
    return [(reply["status"], reply["body"].encode("utf-8", "surrogatepass"), delay)]


@pytest.mark.parametrize("case", OBSERVATIONS["cases"], ids=lambda case: case["name"])
def test_observation_bytes_and_status_are_upstreams(case):
    if case["name"] == "connection_refused":
        pytest.skip("upstream crashes (requests.ConnectionError); ours: tests/test_tool_backends_http.py")
    index = query_index(OBSERVATIONS["query"]["group"], OBSERVATIONS["query"]["query_id"])
    options = {"timeout_s": 1.0} if case["name"].startswith("timeout") else {}
    with ReplayServer(observation_reply(case)) as server:
        backend, protocol = environment("stabletoolbench", server.url, **options)
        env = BackendToolEnvironment(backend, index, protocol=protocol)
        try:
            result = asyncio.run(execute_step(case["action_name"], case["action_input"],
                                              [f["name"] for f in index.functions], env, protocol=protocol))
        finally:
            asyncio.run(backend.close())
    observation = cut_observation(result.observation)
    if case["name"] in UPSTREAM_CRASHES:
        assert "raises" in case and result.status in (0, 12)  # an observation, and the run goes on
        return
    assert (observation, result.status) == (case["step"]["observation"], case["step"]["code"])
    if "server_requests" in case:
        assert server.payloads == [request["payload"] for request in case["server_requests"]]
