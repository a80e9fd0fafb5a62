"""Tool and API renaming for training: invented names, consistent across the prompt, thoughts and calls."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from toolbench_eval.training.data import (
    conversation_from_messages,
    function_names,
    rename_apis,
    rename_share,
    rename_tools,
    tool_names,
)

TRAJECTORIES = Path(__file__).resolve().parents[1] / "data" / "localtoolbench" / "train" / "trajectories.jsonl"
pytestmark = pytest.mark.skipif(not TRAJECTORIES.exists(), reason="data/localtoolbench not generated")


def _records(count: int) -> list[dict]:
    records = []
    with TRAJECTORIES.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record["style"] == "restart" or len(records) < count // 2:  # keep some diversity prompts in
                records.append(record)
            if len(records) == count:
                break
    return records


def test_renamed_conversations_call_only_functions_their_prompt_lists():
    for record in _records(20):
        original = conversation_from_messages(record["query_id"], record["messages"])
        renamed = rename_tools(original, random.Random(0))
        old_names = tool_names(original.turns[0][1])
        new_names = tool_names(renamed.turns[0][1])
        assert len(new_names) == len(old_names) and not set(new_names) & set(old_names)
        prompt = renamed.turns[0][1]
        for (role, before), (_, after) in zip(original.turns, renamed.turns):
            if role == "function":
                assert after == before  # tool observations are data, never rewritten
                continue
            if role == "assistant":
                called = after.split("\nAction: ")[1].split("\n")[0]
                assert called == "Finish" or f"'name': '{called}'" in prompt
            for old in old_names:
                assert f"_for_{old}" not in after and f'"{old}"' not in after
        # apart from the names, nothing changed
        assert [role for role, _ in renamed.turns] == [role for role, _ in original.turns]
        assert renamed.untrained == original.untrained


def test_renaming_a_share_is_seeded():
    conversations = [conversation_from_messages(r["query_id"], r["messages"]) for r in _records(40)]
    first, count = rename_share(conversations, 0.5, seed=3)
    again, _ = rename_share(conversations, 0.5, seed=3)
    other, _ = rename_share(conversations, 0.5, seed=4)
    assert first == again and first != other
    assert 5 < count < 35 and sum(a != b for a, b in zip(first, conversations)) == count
    assert rename_share(conversations, 0.0, seed=3) == (conversations, 0)


def test_renamed_apis_are_neutral_consistent_and_leave_tools_and_observations_alone():
    for record in _records(20):
        original = conversation_from_messages(record["query_id"], record["messages"])
        renamed = rename_apis(original, random.Random(1))
        before, after = function_names(original.turns[0][1]), function_names(renamed.turns[0][1])
        assert len(after) == len(before) >= 2
        assert [tool for _, tool in after] == [tool for _, tool in before]  # tools keep their names
        assert len({api for api, _ in after}) == len(after)  # no two functions share an invented name
        assert not {api for api, _ in after} & {api for api, _ in before}
        listed = {f"{api}_for_{tool}" for api, tool in after}
        for (role, old), (_, new) in zip(original.turns, renamed.turns):
            if role == "function":
                assert new == old
                continue
            if role == "assistant":
                called = new.split("\nAction: ")[1].split("\n")[0]
                assert called == "Finish" or called in listed
            for api, tool in before:
                assert f"{api}_for_{tool}" not in new
        # the descriptions, which are now the only clue, are untouched
        strip = re.compile(r"[a-z0-9_^]+_for_[a-z0-9_^]+")
        assert strip.sub("F", renamed.turns[0][1]) == strip.sub("F", original.turns[0][1])


def test_api_renaming_draws_its_own_stream():
    conversations = [conversation_from_messages(r["query_id"], r["messages"]) for r in _records(40)]
    tools, _ = rename_share(conversations, 0.5, seed=3)
    apis, count = rename_share(conversations, 0.5, seed=3, rename=rename_apis, stream="api-renaming")
    again, _ = rename_share(conversations, 0.5, seed=3, rename=rename_apis, stream="api-renaming")
    assert apis == again and 5 < count < 35
    chosen_for_tools = [a != b for a, b in zip(tools, conversations)]
    chosen_for_apis = [a != b for a, b in zip(apis, conversations)]
    assert chosen_for_tools != chosen_for_apis  # independent draws, not the same conversations
