"""Inputs the benchmark loader refuses before any work starts, the bundled StableToolBench sample, and
the README's promise that its examples run on a fresh clone.

- An empty query file (or an id file that selects nothing) is a `UserError`, so `run` exits 2 instead of
  "succeeding" with nothing done, and creates no run folder.
- An over-long text field, or too much text in one entry, is a located `UserError`; `inspect` refuses a prompt
  too long to tokenize.
- `data/stabletoolbench_sample/` loads as 6 groups x 5 queries equal to the first five entries of the full
  files (compared only where `../shared/toolbench/stabletoolbench/` exists).
- Every repository path an example names exists, and no example reads from outside the repository.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from toolbench_eval.benchmark import loader
from toolbench_eval.benchmark.loader import load_benchmark, load_group, load_query_file, load_tool_file
from toolbench_eval.benchmark.model import GROUPS
from toolbench_eval.cli import main
from toolbench_eval.commands import inspect as inspect_command
from toolbench_eval.errors import UserError

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "stabletoolbench_sample"
SHARED_STB = REPO.parent / "shared" / "toolbench" / "stabletoolbench"


def a_query(query_id=7, query="find a word", description="A word", apis=1):
    return {
        "query": query,
        "query_id": query_id,
        "api_list": [
            {
                "category_name": "Data",
                "tool_name": "Random Word API",
                "api_name": f"Get Word {i}",
                "api_description": description,
                "required_parameters": [
                    {"name": "length", "type": "NUMBER", "description": "", "default": 5}
                ],
                "optional_parameters": [],
                "method": "GET",
            }
            for i in range(apis)
        ],
        "relevant APIs": [["Random Word API", "Get Word 0"]],
    }


def a_benchmark(root: Path, group: str, text: str) -> Path:
    (root / "test_instruction").mkdir(parents=True)
    (root / "test_instruction" / f"{group}.json").write_text(text)
    return root / "test_instruction" / f"{group}.json"


# ---- empty query files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name, text", [("G1_tool.json", "[]"), ("G1_tool.jsonl", "\n\n")])
def test_empty_query_file_is_an_error_naming_the_file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(UserError) as error:
        load_query_file(path)
    message = str(error.value)
    assert message.startswith(f"{path}: holds no queries")
    assert "a query file holds a JSON list of query objects" in message


def test_run_on_an_empty_group_exits_2_before_creating_the_run_folder(tmp_path, capsys):
    path = a_benchmark(tmp_path / "bench", "G1_instruction", "[]")
    out = tmp_path / "run"
    argv = [
        "run",
        "--benchmark",
        str(tmp_path / "bench"),
        "--groups",
        "G1_instruction",
        "--model",
        "scripted",
    ]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 2
    assert not out.exists()
    assert f"{path}: holds no queries" in capsys.readouterr().err
    # inspect and schemas go through the same loader
    assert main(["inspect", str(tmp_path / "bench"), "--tokenizer", "none"]) == 2
    assert main(["schemas", str(path), "--json"]) == 2
    assert capsys.readouterr().err.count("holds no queries") == 2


def test_id_file_that_selects_no_query_is_an_error(tmp_path):
    a_benchmark(tmp_path, "G1_tool", json.dumps([a_query(query_id=7)]))
    (tmp_path / "test_query_ids").mkdir()
    (tmp_path / "test_query_ids" / "G1_tool.json").write_text('{"8": 0, "9": 0}')
    with pytest.raises(UserError, match=r"G1_tool\.json: selects no query: none of its 2 ids"):
        load_group(tmp_path, "G1_tool")


# ---- over-long text ------------------------------------------------------------------------------------


def test_over_long_query_is_located(tmp_path, monkeypatch):
    path = tmp_path / "G1_instruction.json"
    path.write_text(json.dumps([a_query(query="x" * loader.MAX_TEXT_LENGTH)]))
    assert len(load_query_file(path)[0].query) == loader.MAX_TEXT_LENGTH  # at the limit: fine

    path.write_text(
        json.dumps([a_query(query_id=1), a_query(query_id=2, query="x" * (loader.MAX_TEXT_LENGTH + 1))])
    )
    with pytest.raises(UserError) as error:
        load_query_file(path)
    assert str(error.value).startswith(
        f"{path}: entry #1 (query_id 2): field 'query': 100,001 characters; one text field may hold at most 100,000"
    )


def test_over_long_api_description_is_located(tmp_path):
    path = tmp_path / "G1_tool.json"
    path.write_text(json.dumps([a_query(query_id="q9", description="d" * (loader.MAX_TEXT_LENGTH + 5))]))
    with pytest.raises(UserError, match=r"entry #0 \(query_id q9\): field 'api_list\[0\]\.api_description'"):
        load_query_file(path)


def test_too_much_text_in_one_entry_names_the_field_that_holds_it(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "MAX_ENTRY_TEXT", 2_000)
    path = tmp_path / "G1_tool.json"
    path.write_text(json.dumps([a_query(description="d" * 100, apis=30)]))
    with pytest.raises(UserError) as error:
        load_query_file(path)
    message = str(error.value)
    assert message.startswith(f"{path}: entry #0 (query_id 7): field 'api_list': ")
    assert "one query may hold at most 2,000" in message


def test_over_long_tool_description_in_a_tool_file_is_located(tmp_path):
    path = tmp_path / "Data" / "words.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"tool_name": "Words", "tool_description": "w" * 200_000, "api_list": []}))
    with pytest.raises(UserError, match=r"words\.json: field 'tool_description': 200,000 characters"):
        load_tool_file(path)


def test_inspect_refuses_a_prompt_too_long_to_tokenize(tmp_path, monkeypatch):
    path = tmp_path / "G1_tool.json"
    path.write_text(json.dumps([a_query(query_id=3, apis=5)]))
    groups = {"G1_tool": loader.load_file_group(path)}
    monkeypatch.setattr(inspect_command, "MAX_PROMPT_CHARS", 500)

    def tokenizer(texts):
        raise AssertionError("tokenized a prompt over the limit")

    with pytest.raises(UserError, match=r"group G1_tool: query_id 3: its first prompt is [\d,]+ characters"):
        inspect_command.inspect_groups(groups, tokenizer)


# ---- the bundled StableToolBench sample ----------------------------------------------------------------


def test_sample_loads_as_six_groups_of_five_real_queries():
    groups = load_benchmark(SAMPLE)
    assert list(groups) == list(GROUPS)
    assert {name: len(group.queries) for name, group in groups.items()} == dict.fromkeys(GROUPS, 5)
    for name in ("LICENSE", "NOTICE.md", "README.md"):
        assert (SAMPLE / name).is_file(), name
    assert sum(f.stat().st_size for f in SAMPLE.rglob("*") if f.is_file()) < 400_000


@pytest.mark.skipif(not (SHARED_STB / "solvable_queries").is_dir(), reason=f"{SHARED_STB} is not available")
def test_sample_entries_equal_the_first_five_of_the_full_files():
    sample = load_benchmark(SAMPLE)
    for group in GROUPS:
        full = json.loads(
            (SHARED_STB / "solvable_queries" / "test_instruction" / f"{group}.json").read_text()
        )
        assert [q.raw for q in sample[group].queries] == full[:5], group
        assert [q.query for q in sample[group].queries] == [entry["query"] for entry in full[:5]], group
    assert (SAMPLE / "LICENSE").read_bytes() == (SHARED_STB / "LICENSE").read_bytes()


# ---- README examples -----------------------------------------------------------------------------------

_REPO_PREFIXES = ("data/", "configs/", "results/", "tests/")
# Written by the examples themselves: run folders (git-ignored) and the targets of --out / --output.
_OUTPUT_FLAGS = ("--out", "--output")


def readme_example_tokens() -> list[list[str]]:
    """The words of each line of README's ```bash and ```python blocks."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```(?:bash|python)\n(.*?)^```", text, flags=re.DOTALL | re.MULTILINE)
    assert blocks, "README.md has no example blocks"
    lines = [line.split("#", 1)[0] for block in blocks for line in block.splitlines()]
    return [[word.strip("\"'(),=") for word in line.split()] for line in lines]


def is_read_from_the_repository(word: str, flag_before: str) -> bool:
    written = flag_before in _OUTPUT_FLAGS or word.startswith("results/runs/")
    return word.startswith(_REPO_PREFIXES) and not written


def test_readme_examples_name_repository_paths_that_exist():
    missing, outside = [], []
    for words in readme_example_tokens():
        for before, word in zip(["", *words], words):
            if word.startswith(("../", "/")):
                outside.append(word)  # a fresh clone has nothing beside or above it
            elif is_read_from_the_repository(word, before) and not (REPO / word).exists():
                missing.append(word)
    assert not outside, f"README examples read outside the repository: {outside}"
    assert not missing, f"README examples name paths the repository lacks: {missing}"
