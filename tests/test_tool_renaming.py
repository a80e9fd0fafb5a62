"""Tool renaming for training: invented tool names, consistent across the prompt, thoughts and calls."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from toolbench_eval.training.data import conversation_from_messages, rename_share, rename_tools, tool_names

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
