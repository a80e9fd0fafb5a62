"""End to end through the CLI with the scripted engine: answers, resume after SIGKILL, config refusal.

The benchmark, the tool-response cache (the `cache` backend) and the engine's rule file are written
into a temporary folder, so these tests depend on nothing but the code.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from toolbench_eval.cli import main

GROUPS = ("G1_instruction", "G1_category")
CALL = ('Thought: I look the word up.\nAction: get_word_for_word_tool\nAction Input: {"is_id": 1}')
ANSWER = ('Thought: I know it now.\nAction: Finish\n'
          'Action Input: {"return_type": "give_answer", "final_answer": "The word is apple."}')
GIVE_UP = 'Thought: no.\nAction: Finish\nAction Input: {"return_type": "give_up_and_restart"}'


def write_setup(root: Path, queries_per_group: int = 6) -> dict[str, Path]:
    """A two-group benchmark, a cache with one response, and a rule script for the scripted engine."""
    bench = root / "bench"
    (bench / "test_instruction").mkdir(parents=True)
    api = {"category_name": "Data", "tool_name": "Word Tool", "api_name": "Get Word",
           "api_description": "Returns the word with an id.", "method": "GET",
           "required_parameters": [{"name": "id", "type": "NUMBER", "description": "word id", "default": 1}],
           "optional_parameters": []}
    for g, group in enumerate(GROUPS):
        queries = [{"query": f"Which word has id 1? (case {g}-{i}{' hard' if i % 3 == 2 else ''})",
                    "query_id": 100 * (g + 1) + i, "api_list": [api], "relevant APIs": [["Word Tool", "Get Word"]]}
                   for i in range(queries_per_group)]
        (bench / "test_instruction" / f"{group}.json").write_text(json.dumps(queries))
    cache = root / "cache" / "Data" / "word_tool_for_Data"
    cache.mkdir(parents=True)
    (cache / "get_word.json").write_text(json.dumps({"{'is_id': 1}": {"error": "", "response": "apple"}}))
    script = root / "script.json"
    script.write_text(json.dumps({
        "rules": [{"contains": ["hard)", "Function:"], "reply": GIVE_UP},
                  {"contains": ["Function:"], "reply": ANSWER}],
        "default": CALL,
    }))
    return {"bench": bench, "cache": root / "cache", "script": script}


def run_args(setup: dict[str, Path], out: Path, *extra: str, delay: float = 0.0) -> list[str]:
    model_args = f"script={setup['script']}" + (f",delay_s={delay}" if delay else "")
    out.parent.mkdir(parents=True, exist_ok=True)
    config = out.parent / "config.yaml"
    config.write_text(f"tool_backend: {{name: cache, cache_dir: {setup['cache']}}}\n")
    return ["run", "--config", str(config), "--benchmark", str(setup["bench"]), "--groups", ",".join(GROUPS),
            "--method", "react", "--model", "scripted", "--model-args", model_args, "--executor", "local",
            "--out", str(out), "--no-progress", *extra]


def answer_bytes(run: Path) -> dict[str, bytes]:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.glob("G*/*.json"))}


def test_run_writes_the_contract_and_a_rerun_does_nothing(tmp_path, capsys):
    setup = write_setup(tmp_path)
    out = tmp_path / "runs" / "one"
    assert main(run_args(setup, out, "--concurrency", "4")) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["method"] == "CoT@1" and manifest["method_label"] == "react"
    assert manifest["model"]["engine"] == "scripted" and manifest["groups"] == list(GROUPS)
    # No protocol configured and no training recipe (scripted engine): StableToolBench's rules, its step limit.
    assert manifest["protocol"]["name"] == "stabletoolbench" and manifest["protocol"]["overrides"] == {}
    assert manifest["protocol"]["switches"]["assistant_layout"] == "space"
    assert manifest["single_chain_max_step"] == 50 and manifest["width"] is None and manifest["seed"] == 0
    assert manifest["versions"]["torch"] and "git_revision" in manifest and manifest["buckets"] is None
    assert manifest["query_ids"]["G1_category"] == [str(200 + i) for i in range(6)]
    files = answer_bytes(out)
    assert len(files) == 12
    answer = json.loads(files["G1_instruction/100_CoT@1.json"])
    generation = answer["answer_generation"]
    assert generation["valid_data"] is True and "apple" in generation["final_answer"]
    assert generation["query_count"] == 2
    # The tool response came from the cache: the function name was mapped back to the API.
    assert "apple" in json.dumps(generation["train_messages"][-1])
    hard = json.loads(files["G1_instruction/102_CoT@1.json"])["answer_generation"]
    assert hard["valid_data"] is False
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    finished = [e for e in events if e["event"] == "query_finished"]
    assert len(finished) == 12 and {e["outcome"] for e in finished} == {"answered", "gave_up"}
    capsys.readouterr()
    assert main(run_args(setup, out)) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert answer_bytes(out) == files


def test_different_config_into_the_same_folder_is_refused(tmp_path, capsys):
    setup = write_setup(tmp_path, queries_per_group=2)
    out = tmp_path / "runs" / "one"
    assert main(run_args(setup, out)) == 0
    capsys.readouterr()
    assert main(run_args(setup, out, "--seed", "7")) == 2
    err = capsys.readouterr().err
    assert "different config" in err and "seed: 0 -> 7" in err and "--force-config" in err
    # Execution-only settings may change on resume.
    assert main(run_args(setup, out, "--concurrency", "1", "--limit", "1")) == 0
    assert main(run_args(setup, out, "--seed", "7", "--force-config")) == 0
    assert json.loads((out / "manifest.json").read_text())["seed"] == 7


def test_a_run_of_an_earlier_version_resumes_and_its_manifest_keeps_its_bytes(tmp_path, capsys):
    setup = write_setup(tmp_path, queries_per_group=3)
    out = tmp_path / "runs" / "one"
    assert main(run_args(setup, out, "--limit", "1")) == 0
    # As written before manifests recorded the protocol, the tool format and the weights.
    old = json.loads((out / "manifest.json").read_text())
    del old["protocol"], old["tool_format"], old["model"]["weights"]
    (out / "manifest.json").write_text(json.dumps(old, ensure_ascii=False, indent=2) + "\n")
    capsys.readouterr()
    assert main(run_args(setup, out, "--limit", "2")) == 0
    assert "2 queries already answered, 2 to go" in capsys.readouterr().out
    expected = {**old, "query_ids": {group: [str(100 * (g + 1) + i) for i in range(2)] for g, group in enumerate(GROUPS)}}
    assert (out / "manifest.json").read_text() == json.dumps(expected, ensure_ascii=False, indent=2) + "\n"


def _spawn(args: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "toolbench_eval", *args], stdout=log.open("w"),
                            stderr=subprocess.STDOUT, env=env)


def test_sigkill_mid_run_then_resume_matches_an_uninterrupted_run(tmp_path):
    setup = write_setup(tmp_path, queries_per_group=6)
    reference = tmp_path / "runs" / "reference"
    assert main(run_args(setup, reference, "--concurrency", "3")) == 0
    expected = answer_bytes(reference)
    assert len(expected) == 12

    killed = tmp_path / "runs" / "killed"
    process = _spawn(run_args(setup, killed, "--concurrency", "2", delay=0.1), tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 60
        while len(list(killed.glob("G*/*.json"))) < 4 and time.monotonic() < deadline:
            if process.poll() is not None:
                break
            time.sleep(0.05)
        assert process.poll() is None, (tmp_path / "first.log").read_text()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    partial = answer_bytes(killed)
    assert 4 <= len(partial) < 12, "the kill should land mid-run"
    for name, data in partial.items():  # what was finished before the kill is complete and correct
        assert expected[name] == data

    resumed = subprocess.run([sys.executable, "-m", "toolbench_eval", *run_args(setup, killed, delay=0.1)],
                             capture_output=True, text=True, timeout=120, check=False,
                             env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert resumed.returncode == 0, resumed.stderr
    assert f"{len(partial)} queries already answered" in resumed.stdout
    assert answer_bytes(killed) == expected  # same files, same bytes, nothing lost
    assert not list(killed.rglob("*.tmp")) and not list(killed.rglob("*.partial"))
    events = [json.loads(line) for line in (killed / "events.jsonl").read_text().splitlines() if line.endswith("}")]
    finished = [(e["group"], e["query_id"]) for e in events if e["event"] == "query_finished"]
    assert len(finished) == len(set(finished)) == 12  # every query finished exactly once across both runs
