"""`--protocol stabletoolbench` against StableToolBench's own code, on the golden fixtures.

The fixtures (`tests/fixtures/stabletoolbench_protocol/`, made by `scripts/stb_golden/`) record upstream
`aa4ed9f4` run offline on scripted ToolLLaMA replies with its own server. Here our pipeline runs the same
queries with the same replies against a server that answers what upstream's answered, and must produce
the same prompts (every step, byte for byte), the same server requests, the same observations and the
same answer files (byte for byte, tool-call ids aside: upstream draws them from the global `random`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest
from stb_golden_support import (
    FIXTURES,
    SAMPLE_QUERIES,
    SCENARIOS,
    ReplayEngine,
    ReplayServer,
    load_scenario,
    normalize_call_ids,
    upstream_limits,
)

from reasoning.answer import dumps_answer
from reasoning.eval_protocol import resolve_protocol
from toolbench_eval.benchmark.loader import load_query_file, load_tools
from toolbench_eval.runner.agent import Agent
from toolbench_eval.runner.build import build_backend
from toolbench_eval.runner.config import RunConfig


def run_scenario(name: str):
    """Our pipeline on one golden scenario: (scenario, engine, server, SolveResult)."""
    scenario = load_scenario(name)
    vllm = scenario["backbone_model"] == "toolllama_vllm"
    [query] = [q for q in load_query_file(SAMPLE_QUERIES / f"{scenario['group']}.json", scenario["group"])
               if q.query_id == str(scenario["query_id"])]
    tools = load_tools(FIXTURES / "toolenv" / "tools")
    max_step, max_queries = upstream_limits(scenario)
    calls = scenario["model_calls"]
    engine = ReplayEngine([c["scripted_reply"] for c in calls], [c["total_tokens"] for c in calls] if vllm else None)
    with ReplayServer(scenario["server_requests"]) as server:
        config = RunConfig.from_mapping({
            "model": "scripted", "groups": [scenario["group"]],
            "method": "react" if scenario["method"].startswith("CoT") else "dfsdt",
            "protocol": "stabletoolbench-vllm" if vllm else "stabletoolbench",
            # A cache miss makes upstream's server answer 500; upstream shows the model that, so do we here.
            "protocol_args": {"on_unavailable": "observe"},
            "single_chain_max_step": max_step, "max_query_count": max_queries,
            "tool_backend": {"name": "stb", "url": server.url},
        })
        backend = build_backend(config)
        agent = Agent(config=config, engine=engine, backend=backend, tools=tools)
        try:
            result = asyncio.run(agent.solve(query))
        finally:
            asyncio.run(backend.close())
    return scenario, engine, server, result


@pytest.fixture(scope="module", params=SCENARIOS)
def ran(request):
    return run_scenario(request.param)


def test_fixture_answer_bytes_are_upstreams_json_dump(ran):
    scenario = ran[0]
    text = json.dumps(scenario["answer"], indent=2)  # upstream: json.dump(data, writer, indent=2)
    assert hashlib.sha256(text.encode()).hexdigest() == scenario["answer_file_sha256"]


def test_every_prompt_is_upstreams_byte_for_byte(ran):
    scenario, engine, _, _ = ran
    upstream = [call["prompt"] for call in scenario["model_calls"]]
    assert len(engine.prompts) == len(upstream)
    for step, (ours, theirs) in enumerate(zip(engine.prompts, upstream, strict=True)):
        assert ours == theirs, f"{scenario['scenario']}: prompt of model call {step} differs"


def test_decoding_settings_are_upstreams(ran):
    scenario, engine, _, _ = ran
    settings = scenario["model_calls"][0]["settings"]
    params = engine.params[0]
    assert params.temperature == settings["temperature"] == 0
    assert params.max_new_tokens == settings.get("max_new_tokens", settings.get("max_tokens")) == 1024
    assert params.stop == (settings["stop"],) == ("</s>",)
    if "context_len" in settings:  # HF client: input ids cut to context_len - max_new_tokens - 8; force_generate
        assert params.truncate_prompt_tokens == settings["context_len"] - settings["max_new_tokens"] - 8 == 7160
        assert settings["force_generate"] and params.min_new_tokens == 1
    else:  # vLLM client: the server truncates the prompt
        assert params.truncate_prompt_tokens == settings["extra_body"]["truncate_prompt_tokens"] == 7168
        assert params.min_new_tokens == 0


def test_server_requests_are_upstreams(ran):
    scenario, _, server, _ = ran
    upstream = [request["payload"] for request in scenario["server_requests"]]
    assert server.payloads == upstream


def test_answer_file_is_upstreams_byte_for_byte(ran):
    scenario, _, _, result = ran
    ours = dumps_answer(normalize_call_ids(result.answer), result.encoding)
    theirs = json.dumps(normalize_call_ids(scenario["answer"]), indent=2)
    assert result.encoding == "ascii"
    assert ours == theirs


def test_call_ids_have_upstreams_shape(ran):
    scenario, _, _, result = ran
    messages = [m for chain in result.answer["answer_generation"].get("train_messages", []) for m in chain]
    ids = [call["id"] for m in messages for call in m.get("tool_calls", [])]
    vllm = scenario["backbone_model"] == "toolllama_vllm"
    for call_id in ids:
        assert (len(call_id) == 8) if vllm else (call_id.startswith("call_") and len(call_id) == 13)


def test_toolbench_eval_protocol_differs_where_documented():
    """The same scenario under our protocol: the second prompt uses our layout, the Thought node the parsed
    thought; a sanity check that the switches do something."""
    ours = resolve_protocol("toolbench-eval")
    assert ours.assistant_layout == "newline" and ours.thought_node == "parsed_thought"
    scenario = load_scenario("react_answered")
    assert "\nAssistant: Thought:" in scenario["model_calls"][1]["prompt"]
