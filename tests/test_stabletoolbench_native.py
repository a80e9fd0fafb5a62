"""Native function calling under `--protocol stabletoolbench`, against StableToolBench's `ChatGPTFunction`.

The fixtures `scenarios/fc_*.json` (made by `scripts/stb_golden/`) record upstream `aa4ed9f4` driving an
OpenAI-compatible stand-in with scripted assistant messages (content and `tool_calls`, parallel calls,
hallucinated names, unparseable arguments, give-ups, DFSDT backtracking). Our pipeline (`--model openai
--model-args tool_format=native`) runs the same queries against a server that answers with the same completions
and a tool server that answers what upstream's answered: every chat request must equal upstream's field by
field, every tool-server request its payload, and the answer file upstream's bytes.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from stb_golden_support import (
    FC_SCENARIOS,
    FIXTURES,
    SAMPLE_QUERIES,
    ReplayChat,
    ReplayServer,
    load_scenario,
    upstream_limits,
)

from reasoning.answer import dumps_answer
from toolbench_eval.benchmark.loader import load_query_file, load_tools
from toolbench_eval.runner.agent import Agent
from toolbench_eval.runner.build import build_backend, build_engine
from toolbench_eval.runner.config import RunConfig


def run_native(name: str):
    scenario = load_scenario(name)
    [query] = [q for q in load_query_file(SAMPLE_QUERIES / f"{scenario['group']}.json", scenario["group"])
               if q.query_id == str(scenario["query_id"])]
    tools = load_tools(FIXTURES / "toolenv" / "tools")
    max_step, max_queries = upstream_limits(scenario)
    with ReplayChat(scenario["chat_replies"]) as chat, ReplayServer(scenario["server_requests"]) as server:
        config = RunConfig.from_mapping({
            "model": "openai", "groups": [scenario["group"]],
            "model_args": {"pretrained": scenario["chatgpt_model"], "base_url": chat.base_url, "tool_format": "native"},
            "method": "react" if scenario["method"].startswith("CoT") else "dfsdt",
            "protocol": "stabletoolbench", "protocol_args": {"on_unavailable": "observe"},
            "single_chain_max_step": max_step, "max_query_count": max_queries,
            "tool_backend": {"name": "stb", "url": server.url},
        })
        engine = build_engine(config, None)
        backend = build_backend(config)
        agent = Agent(config=config, engine=engine, backend=backend, tools=tools)

        async def solve():
            try:
                return await agent.solve(query)
            finally:
                await backend.close()
                await engine.close()

        result = asyncio.run(solve())
    return scenario, chat, server, result


@pytest.fixture(scope="module", params=FC_SCENARIOS)
def ran(request):
    return run_native(request.param)


def test_there_are_function_calling_scenarios():
    assert len(FC_SCENARIOS) >= 3


def test_chat_requests_equal_upstreams_field_by_field(ran):
    scenario, chat, _, _ = ran
    upstream = [call["request"] for call in scenario["model_calls"]]
    assert len(chat.requests) == len(upstream)
    for step, (ours, theirs) in enumerate(zip(chat.requests, upstream, strict=True)):
        assert sorted(ours) == sorted(theirs), f"request {step}: fields differ"
        for field in theirs:
            assert ours[field] == theirs[field], f"request {step}: {field} differs"


def test_tool_server_requests_are_upstreams(ran):
    scenario, _, server, _ = ran
    assert server.payloads == [request["payload"] for request in scenario["server_requests"]]


def test_answer_file_is_upstreams_byte_for_byte(ran):
    scenario, _, _, result = ran
    assert dumps_answer(result.answer, result.encoding) == json.dumps(scenario["answer"], indent=2)
