"""The committed LocalToolBench world (data/localtoolbench): counts, layout, splits, solvability,
trajectories, and loading through the shared benchmark loader."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
from localtoolbench_replay import missing_facts, replay_plan, replay_trajectory

from toolbench_eval.benchmark.loader import load_benchmark
from toolbench_eval.benchmark.model import GROUPS
from toolbench_eval.benchmark.naming import standardize
from toolbench_eval.localtoolbench.backend import LocalBackend
from toolbench_eval.localtoolbench.domains import CATALOG, COLLECTIONS, HELD_OUT_CATEGORIES, HELD_OUT_TOOLS

WORLD = Path(__file__).resolve().parents[1] / "data" / "localtoolbench"
pytestmark = pytest.mark.skipif(not (WORLD / "world.json").exists(), reason="data/localtoolbench not generated")


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    """The backend over the committed world, with the database built into a private cache."""
    cache = tmp_path_factory.mktemp("cache")
    old = os.environ.get("TOOLBENCH_EVAL_CACHE")
    os.environ["TOOLBENCH_EVAL_CACHE"] = str(cache)
    try:
        yield LocalBackend(WORLD)  # also checks the database digest against world.json
    finally:
        if old is None:
            os.environ.pop("TOOLBENCH_EVAL_CACHE", None)
        else:
            os.environ["TOOLBENCH_EVAL_CACHE"] = old


@pytest.fixture(scope="module")
def test_groups():
    return {g: json.loads((WORLD / "test_instruction" / f"{g}.json").read_text()) for g in GROUPS}


@pytest.fixture(scope="module")
def train():
    return json.loads((WORLD / "train" / "queries.json").read_text())


def read_trajectories():
    with (WORLD / "train" / "trajectories.jsonl").open() as handle:
        return [json.loads(line) for line in handle]


def test_counts_meet_the_minimums(test_groups, train):
    assert len(CATALOG.categories) >= 8 and len(CATALOG.tools) >= 40 and len(CATALOG.apis) >= 150
    tool_files = list((WORLD / "toolenv" / "tools").glob("*/*.json"))
    assert len(tool_files) == len(CATALOG.tools)
    assert sum(len(json.loads(f.read_text())["api_list"]) for f in tool_files) == len(CATALOG.apis)
    for group, queries in test_groups.items():
        assert len(queries) >= 50, group
        ids = json.loads((WORLD / "test_query_ids" / f"{group}.json").read_text())
        assert set(ids) == {str(q["query_id"]) for q in queries}
        for query in queries:
            assert 4 <= len(query["api_list"]) <= 8
            assert 1 <= len(query["relevant APIs"]) <= 3
            listed = {(a["tool_name"], a["api_name"]) for a in query["api_list"]}
            assert {tuple(r) for r in query["relevant APIs"]} <= listed
            assert query["ground_truth"]["facts"] and query["ground_truth"]["call_plan"]
    assert len(train) >= 2000
    assert len({q["query_id"] for q in train} | {q["query_id"] for g in test_groups.values() for q in g}) == \
        len(train) + sum(len(g) for g in test_groups.values())


def test_tool_files_have_the_upstream_fields():
    for path in (WORLD / "toolenv" / "tools").glob("*/*.json"):
        tool = json.loads(path.read_text())
        assert set(tool) == {"tool_name", "tool_description", "title", "standardized_name", "api_list"}
        assert path.stem == tool["standardized_name"] == standardize(tool["tool_name"])
        for api in tool["api_list"]:
            assert set(api) == {"name", "url", "description", "method", "required_parameters", "optional_parameters"}
            assert api["method"] == "GET"
            for parameter in api["required_parameters"] + api["optional_parameters"]:
                assert set(parameter) == {"name", "type", "description", "default"}
                assert parameter["type"] in ("STRING", "NUMBER", "BOOLEAN", "ENUM")


def test_world_loads_through_the_shared_loader(test_groups):
    groups = load_benchmark(WORLD)
    assert list(groups) == list(GROUPS)
    for name, group in groups.items():
        assert len(group.queries) == len(test_groups[name])
        assert all(q.ground_truth is not None and q.ground_truth.facts for q in group.queries)
        assert all(key in group.tools and group.tools[key].source for key in
                   {(a.category_name, standardize(a.tool_name)) for q in group.queries for a in q.api_list})


def _tools(query):
    return {a["tool_name"] for a in query["api_list"]}


def _relevant_tools(query):
    return {tool for tool, _ in query["relevant APIs"]}


def test_splits_are_disjoint_as_each_group_requires(test_groups, train):
    train_tools = set().union(*(_tools(q) for q in train))
    train_categories = {CATALOG.tool_category[t] for t in train_tools}
    assert not train_tools & set(HELD_OUT_TOOLS)
    assert not train_categories & set(HELD_OUT_CATEGORIES)
    for query in test_groups["G1_tool"]:
        (tool,) = _relevant_tools(query)
        assert tool in HELD_OUT_TOOLS and CATALOG.tool_category[tool] in train_categories
    for group in ("G1_category", "G2_category"):
        for query in test_groups[group]:
            assert {CATALOG.tool_category[t] for t in _tools(query)} <= set(HELD_OUT_CATEGORIES)
    for group in ("G1_instruction", "G2_instruction", "G3_instruction"):
        for query in test_groups[group]:
            assert _tools(query) <= train_tools
    for query in test_groups["G1_instruction"] + test_groups["G1_tool"] + test_groups["G1_category"]:
        assert len(_relevant_tools(query)) == 1
    for query in test_groups["G2_instruction"] + test_groups["G2_category"]:
        assert len(_relevant_tools(query)) == 2 and len({CATALOG.tool_category[t] for t in _tools(query)}) == 1
    for query in test_groups["G3_instruction"]:
        assert any(_tools(query) <= set(members) for members in COLLECTIONS.values())
        assert len({CATALOG.tool_category[t] for t in _relevant_tools(query)}) >= 2
    test_texts = {q["query"] for g in test_groups.values() for q in g}
    assert not test_texts & {q["query"] for q in train}


def test_every_test_query_is_solvable_by_its_call_plan(backend, test_groups):
    for group, queries in test_groups.items():
        for query in queries:
            backend.reset_attempts()
            texts = replay_plan(backend, query["ground_truth"]["call_plan"])
            assert not missing_facts(query["ground_truth"]["facts"], texts), (group, query["query_id"])


def check_trajectory(backend, record, facts):
    assert record["messages"][0]["role"] == "system" and record["messages"][1]["role"] == "user"
    assert record["query"] in record["messages"][1]["content"]
    last = record["messages"][-1]
    assert last["role"] == "assistant" and last["function_call"]["name"] == "Finish"
    final = json.loads(last["function_call"]["arguments"])
    assert final["return_type"] == "give_answer"
    assert all(fact in final["final_answer"] for fact in facts)
    assert not replay_trajectory(backend, record), record["query_id"]


def test_trajectory_sample_replays_and_states_the_facts(backend, train):
    facts = {q["query_id"]: q["ground_truth"]["facts"] for q in train}
    records = read_trajectories()
    assert len(records) == len(train)
    styles = Counter(r["style"] for r in records)
    assert styles["restart"] > 50 and styles["bad_arguments"] > 100
    sample = [r for r in records if r["style"] != "clean"][:40] + [r for r in records if r["failed_calls"]][:40] \
        + records[::97]
    for record in sample:
        check_trajectory(backend, record, facts[record["query_id"]])


@pytest.mark.slow
def test_every_trajectory_replays_and_states_the_facts(backend, train):
    facts = {q["query_id"]: q["ground_truth"]["facts"] for q in train}
    for record in read_trajectories():
        check_trajectory(backend, record, facts[record["query_id"]])


def test_deliberate_mistakes_and_nothing_else_have_weight_0():
    """A trajectory teaches recovering from a mistake, so the mistaken call itself is marked untrained."""
    for record in read_trajectories():
        messages = record["messages"]
        mistakes = [index for index, message in enumerate(messages) if "weight" in message]
        assert len(mistakes) == (0 if record["style"] == "clean" else 1), record["query_id"]
        for index in mistakes:
            message = messages[index]
            assert message["weight"] == 0 and message["role"] == "assistant"
            name = message["function_call"]["name"]
            assert name != "Finish"
            observation = json.loads(messages[index + 1]["content"])
            assert observation["error"] or "message" in observation["response"], record["query_id"]
            recovery = messages[index + 2]["function_call"]
            if record["style"] == "restart":
                assert json.loads(recovery["arguments"])["return_type"] == "give_up_and_restart"
            else:  # the same function, called again with corrected arguments
                assert recovery["name"] == name and recovery["arguments"] != message["function_call"]["arguments"]
