"""Test support: replaying ground-truth call plans and expert trajectories on a LocalToolBench backend.

    >>> import json
    >>> from toolbench_eval.localtoolbench.backend import LocalBackend
    >>> query = json.load(open("data/localtoolbench/test_instruction/G1_instruction.json"))[0]
    >>> texts = replay_plan(LocalBackend(), query["ground_truth"]["call_plan"])
    >>> missing_facts(query["ground_truth"]["facts"], texts)
    []
"""

from __future__ import annotations

import json
from typing import Any

from toolbench_eval.benchmark.naming import function_name, standardize
from toolbench_eval.localtoolbench.backend import LocalBackend
from toolbench_eval.tools.base import Status, ToolCall, render_observation

TRANSIENT = {Status.TIMEOUT, Status.NOT_WORKING, Status.TOO_MANY_REQUESTS, Status.RATE_LIMIT}


def replay_plan(backend: LocalBackend, plan: list[dict[str, Any]], retries: int = 2) -> list[str]:
    """Run a call plan (retrying transient failures) and return the rendered observations."""
    texts = []
    for step in plan:
        api = backend.catalog.apis[(step["tool_name"], step["api_name"])]
        call = ToolCall(api.category, api.tool, api.name, dict(step["arguments"]))
        observation = backend.call_sync(call)
        for _ in range(retries):
            if observation.status not in TRANSIENT:
                break
            observation = backend.call_sync(call)
        texts.append(render_observation(observation))
    return texts


def missing_facts(facts: list[str], texts: list[str]) -> list[str]:
    """Facts not found (case-insensitive substring) in any of `texts`."""
    seen = "\n".join(texts).lower()
    return [fact for fact in facts if fact.lower() not in seen]


def replay_trajectory(backend: LocalBackend, record: dict[str, Any]) -> list[str]:
    """Re-execute every non-Finish call of a trajectory; return a list of mismatches (empty when it replays).

    Function names are mapped back to APIs through the trajectory's own function list and the catalog.
    """
    names = {function_name(api.name, standardize(api.tool)): api for api in backend.catalog.apis.values()}
    offered = {f["name"] for f in record["functions"]}
    backend.reset_attempts()
    problems = []
    messages = record["messages"]
    for index, message in enumerate(messages):
        call = message.get("function_call")
        if message.get("role") != "assistant" or not call or call["name"] == "Finish":
            continue
        if call["name"] not in offered:
            problems.append(f"message {index}: {call['name']} is not among the query's functions")
            continue
        api = names[call["name"]]
        observation = backend.call_sync(ToolCall(api.category, api.tool, api.name, json.loads(call["arguments"])))
        recorded = messages[index + 1]["content"] if index + 1 < len(messages) else None
        if render_observation(observation) != recorded:
            problems.append(f"message {index}: observation differs on replay")
    return problems
