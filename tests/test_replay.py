"""`toolbench-eval replay`: upstream-made answer files re-run under `--protocol stabletoolbench` come out
identical (train_messages, tree, converted answer, file bytes); a changed file is caught, with where."""

from __future__ import annotations

import json

import pytest
from stb_golden_support import FC_SCENARIOS, SCENARIOS, load_scenario

from toolbench_eval.cli import main


def write_answers(folder, *, vllm: bool):
    """The scenarios' upstream answer files, byte for byte as upstream wrote them."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in SCENARIOS:
        scenario = load_scenario(name)
        if (scenario["backbone_model"] == "toolllama_vllm") != vllm:
            continue
        path = folder / f"{scenario['query_id']}_{scenario['method']}.json"
        path.write_text(json.dumps(scenario["answer"], indent=2), encoding="utf-8")
        paths.append(path)
    return paths


@pytest.mark.parametrize(("vllm", "protocol", "count"), [(False, "stabletoolbench", 10),
                                                        (True, "stabletoolbench-vllm", 2)])
def test_upstream_answer_files_replay_identically(tmp_path, capsys, vllm, protocol, count):
    paths = write_answers(tmp_path / "answers", vllm=vllm)
    report = tmp_path / "report.json"
    # Two scenarios of the same query (608 with step limits 50 and 12) share a file name: the later one wins.
    assert main(["replay", str(tmp_path / "answers"), "--protocol", protocol, "--json", str(report)]) == 0
    files = json.loads(report.read_text())["files"]
    assert len(files) == len(set(paths)) and len(files) >= count - 1
    assert all(all(entry["identical"].values()) for entry in files)
    kinds = {entry["method"] for entry in files}
    assert kinds == ({"CoT@1", "DFS_woFilter_w2"})
    assert f"files replay identically under {protocol}" in capsys.readouterr().out


def test_every_scenario_replays_identically_one_by_one(tmp_path):
    from reasoning.eval_protocol import resolve_protocol
    from toolbench_eval.replay import replay_file

    for name in SCENARIOS:
        scenario = load_scenario(name)
        path = tmp_path / f"{name}_{scenario['method']}.json"
        path.write_text(json.dumps(scenario["answer"], indent=2), encoding="utf-8")
        vllm = scenario["backbone_model"] == "toolllama_vllm"
        report = replay_file(path, resolve_protocol("stabletoolbench-vllm" if vllm else "stabletoolbench"))
        assert report.ok and report.identical["file"], (name, report.first_difference)


def test_function_calling_answer_files_replay_identically(tmp_path, capsys):
    """Upstream's ChatGPTFunction files: turns are read back from the tree (a Thought for content, an
    Action/Action Input pair per call; parallel calls and turns without content told apart by the recorded
    assistant messages, DFS visit order, or the call count) and re-run as native turns."""
    from toolbench_eval.replay import is_native_file

    for name in FC_SCENARIOS:
        scenario = load_scenario(name)
        assert is_native_file(scenario["answer"])
        folder = tmp_path / name
        folder.mkdir()
        (folder / f"{scenario['query_id']}_{scenario['method']}.json").write_text(
            json.dumps(scenario["answer"], indent=2), encoding="utf-8")
        assert main(["replay", str(folder), "--json", str(folder / "report.json")]) == 0
        [entry] = json.loads((folder / "report.json").read_text())["files"]
        assert all(entry["identical"].values()), (name, entry["first_difference"])
        assert entry["decisions"] == scenario["answer"]["answer_generation"]["query_count"] - (
            1 if name == "dfs_budget" else 0)
    assert all(not is_native_file(load_scenario(name)["answer"]) for name in SCENARIOS)


def test_a_changed_local_decision_is_reported_where_it_differs(tmp_path, capsys):
    """Tool replies come from the file; what the reasoner decides itself (here: a hallucinated name, 1) is checked."""
    scenario = load_scenario("react_errors")
    answer = scenario["answer"]
    answer["trys"][0]["chain"][2]["observation_code"] = 0
    path = tmp_path / "5744_CoT@1.json"
    path.write_text(json.dumps(answer, indent=2), encoding="utf-8")
    assert main(["replay", str(path)]) == 1
    out = capsys.readouterr().out
    assert "DIFF" in out and "tree: [0].chain[2].observation_code: ours 1 / file 0" in out


def test_our_protocol_is_reported_as_different_not_crashed(tmp_path, capsys):
    write_answers(tmp_path, vllm=False)
    assert main(["replay", str(tmp_path), "--protocol", "toolbench-eval",
                 "--protocol-args", "thought_node=raw_output"]) == 1
    assert "function_call'] / file ['role', 'content', 'tool_calls']" in capsys.readouterr().out


def test_parsed_thoughts_cannot_be_replayed_and_bad_files_are_named(tmp_path, capsys):
    [path, *_] = write_answers(tmp_path, vllm=False)
    assert main(["replay", str(path), "--protocol", "toolbench-eval"]) == 2
    assert "thought_node=raw_output" in capsys.readouterr().err
    broken = tmp_path / "1_CoT@1.json"
    broken.write_text("{not json", encoding="utf-8")
    assert main(["replay", str(broken)]) == 2
    assert str(broken) in capsys.readouterr().err
    assert main(["replay", str(path), "--protocol-args", "parser=psychic"]) == 2
    odd = tmp_path / "2_CoT@1.json"
    odd.write_text(json.dumps({"trys": [{"chain": 3}], "answer_generation": {}}), encoding="utf-8")
    assert main(["replay", str(odd)]) == 2
    assert f"{odd}: not a raw answer file" in capsys.readouterr().err
