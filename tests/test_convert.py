"""Raw answer files -> ToolEval's converted format (and back), on fixture files written for these tests."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
from pathlib import Path

import pytest
from reasoning_fakes import ScriptedModel

from reasoning import answer_filename, answer_json, solve_dfsdt, solve_react, write_answer_file
from reasoning.convert import (
    MalformedAnswerError,
    convert_answer,
    convert_answer_dir,
    converted_to_raw,
)
from reasoning.protocols import ToolResult
from toolbench_eval.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "answers"
ANSWER_101 = '{\n  "return_type": "give_answer",\n  "final_answer": "There are 3 cats."\n}'
ANSWER_201 = '{"return_type": "give_answer", "final_answer": "3 cats: Tom, Kit, Pip."}'


def path_of(entry):
    """(role, message) along the answer_details chain."""
    steps = []
    nodes = entry["answer"]["answer_details"]
    assert len(nodes) == 1
    node = nodes[0]
    while True:
        steps.append((node["role"], node["message"]))
        if not node["next"]:
            return steps
        assert len(node["next"]) == 1
        node = node["next"][0]


def tool(name, arguments, response):
    return ("tool", {"name": name, "arguments": arguments, "response": response})


def test_valid_function_call_style_walks_train_messages_from_index_two():
    converted = convert_answer_dir(FIXTURES / "function_call", "CoT@1")
    assert sorted(converted) == ["101", "102"]
    entry = converted["101"]
    assert entry["query"] == "How many cats are there?"
    assert [f["name"] for f in entry["available_tools"]] == ["search_for_cats", "count_for_cats", "Finish"]
    assert entry["answer"]["method"] == "CoT@1" and entry["answer"]["final_answer"] == ANSWER_101
    assert entry["answer"]["total_steps"] == 5
    assert path_of(entry) == [
        ("system", ""), ("user", ""),
        tool("search_for_cats", '{\n  "q": "cats"\n}', '{"error": "", "response": "3 cats found"}'),
        ("assistant", "I found them."),
        tool("Finish", ANSWER_101, ""),  # the Finish message's own content is dropped, as upstream
    ]


def test_valid_tool_calls_style_with_parallel_calls_and_null_function_call():
    converted = convert_answer_dir(FIXTURES / "tool_calls", "CoT@1")
    assert list(converted) == ["201"]  # the DFS file in the folder is not read for CoT@1
    entry = converted["201"]
    assert entry["answer"]["total_steps"] == 6
    assert path_of(entry) == [
        ("system", ""), ("user", ""),
        tool("search_for_cats", '{"q": "names"}', '{"error": "", "response": "Tom, Kit, Pip"}'),
        tool("count_for_cats", "{}", '{"error": "", "response": 3}'),
        ("assistant", "Three cats."),
        tool("Finish", ANSWER_201, ""),
    ]


def test_invalid_cot_converts_the_try_chain():
    entry = convert_answer_dir(FIXTURES / "function_call", "CoT@1")["102"]
    assert entry["answer"]["final_answer"] == "" and entry["answer"]["total_steps"] == 5
    assert path_of(entry) == [
        ("system", ""), ("user", ""), ("assistant", "Search first."),
        tool("search_for_cats", '{"q": "dogs"}', '{"error": "", "response": "no dogs"}'),
        tool("count_for_cats", "{}", '{"error": "", "response": 0}'),
    ]


DFS_PATHS = [
    [("system", ""), ("user", ""), ("assistant", "Search."),
     tool("search_for_cats", '{"q": "Tom"}', '{"error": "", "response": "Tom?"}'),
     tool("count_for_cats", "{}", '{"error": "", "response": 1}')],
    [("system", ""), ("user", ""), ("assistant", "Search."),
     tool("search_for_cats", '{"q": "Tom"}', '{"error": "", "response": "Tom?"}'),
     ("assistant", "Try again."),
     tool("Finish", '{"return_type": "give_up_and_restart"}', '{"response":"chose to give up and restart"}')],
]


def test_invalid_dfs_merges_action_pairs_and_walks_one_random_path():
    data = json.loads((FIXTURES / "function_call" / "103_DFS_woFilter_w2.json").read_text())
    seen = set()
    for seed in range(16):
        entry = convert_answer(json.loads(json.dumps(data)), "DFS_woFilter_w2", random.Random(seed))
        steps = path_of(entry)
        assert steps in DFS_PATHS and entry["answer"]["total_steps"] == len(steps)
        seen.add(DFS_PATHS.index(steps))
        again = convert_answer(json.loads(json.dumps(data)), "DFS_woFilter_w2", random.Random(seed))
        assert again == entry
    assert seen == {0, 1}


def test_converted_to_raw_round_trips():
    for folder, method in (("function_call", "CoT@1"), ("tool_calls", "CoT@1"), ("function_call", "DFS_woFilter_w2")):
        for qid, entry in convert_answer_dir(FIXTURES / folder, method).items():
            raw = converted_to_raw(entry, method)
            assert convert_answer(raw, method) == entry, (folder, qid)
            assert raw["answer_generation"]["valid_data"] == (entry["answer"]["final_answer"] != "")


# --- answers written by our own reasoners --------------------------------------------------------------------

FUNCTIONS = [
    {"name": "search_for_cats", "description": "Search.",
     "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"], "optional": []}},
    {"name": "Finish", "description": "Finish.", "parameters": {"type": "object", "properties": {}}},
]


class FakeEnv:
    async def call(self, function_name, arguments):
        return ToolResult(json.dumps({"error": "", "response": f"found {arguments.get('q')}"}), 0)


def scripted(outputs):
    return ScriptedModel(outputs, prompt_tokens=5, completion_tokens=5)


SEARCH = 'Thought: look\nAction: search_for_cats\nAction Input: {"q": "tom"}'
FINISH = 'Thought: ok\nAction: Finish\nAction Input: {"return_type": "give_answer", "final_answer": "Tom"}'


def write_own_answers(folder: Path):
    cot = asyncio.run(solve_react("Find Tom", FUNCTIONS, [("cats", "Cats")], scripted([SEARCH, FINISH]),
                                  FakeEnv(), query_id="11"))
    write_answer_file(folder / answer_filename("11", "CoT@1"), answer_json(cot, "CoT@1"))
    dfs = asyncio.run(solve_dfsdt("Find Tom", FUNCTIONS, [("cats", "Cats")],
                                  scripted([SEARCH, "garbage", FINISH]), FakeEnv(), query_id="12"))
    write_answer_file(folder / answer_filename("12", "DFS_woFilter_w2"), answer_json(dfs, "DFS_woFilter_w2"))


def test_our_answer_files_convert_and_round_trip(tmp_path):
    write_own_answers(tmp_path)
    cot = convert_answer_dir(tmp_path, "CoT@1")["11"]
    assert path_of(cot) == [("system", ""), ("user", ""),
                            tool("search_for_cats", '{"q": "tom"}', '{"error": "", "response": "found tom"}'),
                            tool("Finish", '{"return_type": "give_answer", "final_answer": "Tom"}', "")]
    dfs = convert_answer_dir(tmp_path, "DFS_woFilter_w2")["12"]
    assert [step[0] for step in path_of(dfs)] == ["system", "user", "tool", "tool", "tool"]
    assert path_of(dfs)[3][1]["name"] == "invalid_hallucination_function_name"  # the unparseable output
    for method, entry in (("CoT@1", cot), ("DFS_woFilter_w2", dfs)):
        assert convert_answer(converted_to_raw(entry, method), method) == entry


def test_cli_convert_writes_the_converted_file(tmp_path, capsys):
    write_own_answers(tmp_path / "answers")
    output = tmp_path / "out" / "G1_instruction.json"
    code = main(["convert", "--answer-dir", str(tmp_path / "answers"), "--method", "CoT@1", "--output", str(output)])
    assert code == 0
    assert json.loads(output.read_text()) == convert_answer_dir(tmp_path / "answers", "CoT@1")
    assert "Converted 1 answers" in capsys.readouterr().err


def test_cli_reverse_direction_writes_raw_files_that_convert_back(tmp_path):
    converted = tmp_path / "converted.json"
    assert main(["convert", "--answer-dir", str(FIXTURES / "function_call"), "--method", "CoT@1",
                 "--output", str(converted)]) == 0
    raw_dir = tmp_path / "raw"
    assert main(["convert", "--from-converted", str(converted), "--method", "CoT@1",
                 "--answer-dir", str(raw_dir)]) == 0
    assert sorted(p.name for p in raw_dir.iterdir()) == ["101_CoT@1.json", "102_CoT@1.json"]
    assert convert_answer_dir(raw_dir, "CoT@1") == json.loads(converted.read_text())


def test_cli_names_a_malformed_answer_file_and_writes_nothing(tmp_path, capsys):
    folder = tmp_path / "answers"
    shutil.copytree(FIXTURES / "function_call", folder)
    (folder / "555_CoT@1.json").write_text('{"answer_generation": {"valid_data": true')
    output = tmp_path / "out.json"
    code = main(["convert", "--answer-dir", str(folder), "--method", "CoT@1", "--output", str(output)])
    error = capsys.readouterr().err
    assert code == 2 and "555_CoT@1.json" in error and "not a readable JSON file" in error
    assert not output.exists()
    (folder / "555_CoT@1.json").write_text('{"answer_generation": {"valid_data": true, "train_messages": "x"}}')
    assert main(["convert", "--answer-dir", str(folder), "--method", "CoT@1", "--output", str(output)]) == 2
    assert "555_CoT@1.json" in capsys.readouterr().err and not output.exists()


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    assert main(["convert", "--answer-dir", str(FIXTURES), "--method", "ReAct", "--output", str(tmp_path / "o")]) == 2
    assert "--method 'ReAct'" in capsys.readouterr().err
    assert main(["convert", "--answer-dir", str(tmp_path / "missing"), "--method", "CoT@1",
                 "--output", str(tmp_path / "o")]) == 2
    assert main(["convert", "--answer-dir", str(FIXTURES / "function_call"), "--method", "CoT@3",
                 "--output", str(tmp_path / "o")]) == 2
    assert "no *.json file" in capsys.readouterr().err


def test_malformed_structures_raise_a_clear_error():
    with pytest.raises(MalformedAnswerError, match="answer_generation"):
        convert_answer({"win": True}, "CoT@1")
    with pytest.raises(MalformedAnswerError, match="unknown role"):
        convert_answer({"answer_generation": {"valid_data": True, "train_messages": [[
            {"role": "system"}, {"role": "user"}, {"role": "robot", "content": "x"}]]}}, "CoT@1")
    with pytest.raises(MalformedAnswerError, match="trys"):
        convert_answer({"answer_generation": {"valid_data": False}, "trys": []}, "CoT@1")
