"""Answer file names, node JSON shape, and atomic, byte-stable writing."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from reasoning import answer_filename, answer_json, solve_dfsdt, solve_react, write_answer_file
from reasoning.answer import dumps_answer
from reasoning.protocols import ModelOutput, ToolResult
from reasoning.tree import TreeNode, tree_json

FUNCTIONS = [{"name": "get_word_for_words", "description": "d", "parameters": {"type": "object", "properties": {}}},
             {"name": "Finish", "description": "f", "parameters": {"type": "object", "properties": {}}}]
NODE_KEYS = ["is_terminal", "pruned", "finished", "depth", "node_type", "description", "Elo", "child_count",
             "expand_num"]


class Model:
    def __init__(self, outputs):
        self.outputs = list(outputs)

    async def generate(self, messages, functions, *, trajectory_id):
        return ModelOutput(self.outputs.pop(0), 1, 1)


class Env:
    async def call(self, function_name, arguments):
        return ToolResult('{"error": "", "response": "é ✓ 猫"}', 0)


CALL = "Thought: t\nAction: get_word_for_words\nAction Input: {}"
ANSWER = 'Thought: t\nAction: Finish\nAction Input: {"return_type": "give_answer", "final_answer": "猫"}'


def test_file_names():
    assert answer_filename("588", "CoT@1") == "588_CoT@1.json"
    assert answer_filename(1073, "DFS_woFilter_w2") == "1073_DFS_woFilter_w2.json"


def test_node_json_shape_matches_upstream():
    root = TreeNode(messages=[])
    thought = root.add_child("Thought", "think")
    leaf = thought.add_child("Action", "f").add_child("Action Input", "{}")
    leaf.observation, leaf.observation_code = "obs", 0
    assert list(thought.to_json()) == NODE_KEYS
    assert list(leaf.to_json()) == NODE_KEYS[:7] + ["observation", "observation_code"] + NODE_KEYS[7:] + ["io_state"]
    assert leaf.to_json()["io_state"] == {} and leaf.to_json()["depth"] == 3
    tree = tree_json(root)
    assert (tree["size"], tree["max_length"]) == (4, 4)
    assert tree["tree"]["node_type"] == "Action Input" and tree["tree"]["description"] == ""
    assert "observation" not in tree["tree"] and "observation_code" not in tree["tree"]
    assert list(tree["tree"])[-1] == "children" and tree["tree"]["children"][0]["description"] == "think"


def test_answer_json_refuses_a_method_of_the_other_kind():
    trajectory = asyncio.run(solve_react("q", FUNCTIONS, [("words", "w")], Model([ANSWER]), Env()))
    with pytest.raises(ValueError, match="does not match"):
        answer_json(trajectory, "DFS_woFilter_w2")
    assert answer_json(trajectory)["answer_generation"]["valid_data"] is True


def test_files_are_utf8_indented_and_byte_stable(tmp_path):
    def run():
        return asyncio.run(solve_dfsdt("q", FUNCTIONS, [("words", "w")], Model([CALL, ANSWER]), Env(), seed=1))

    first = write_answer_file(tmp_path / "G1" / "1_DFS_woFilter_w2.json", answer_json(run()))
    text = first.read_text(encoding="utf-8")
    assert "猫" in text and "\\u732b" not in text  # ensure_ascii=False
    assert text.startswith('{\n  "win": true,\n  "tree": {') and text.endswith("}\n")
    second = write_answer_file(tmp_path / "again.json", answer_json(run()))
    assert first.read_bytes() == second.read_bytes()
    assert json.loads(text) == answer_json(run())


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    target = tmp_path / "1_CoT@1.json"
    write_answer_file(target, {"old": True})

    def interrupted(fd):
        raise KeyboardInterrupt  # a kill in the middle of writing

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_answer_file(target, {"new": "x" * 100_000})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["1_CoT@1.json"]

    def refuse(source, destination):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_answer_file(target, {"new": True})
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["1_CoT@1.json"]


def test_unserializable_data_creates_no_file(tmp_path):
    with pytest.raises(TypeError):
        write_answer_file(tmp_path / "x.json", {"bad": object()})
    assert list(tmp_path.iterdir()) == []
    assert dumps_answer({"b": 1, "a": 2}) == '{\n  "b": 1,\n  "a": 2\n}\n'  # key order kept, never sorted
