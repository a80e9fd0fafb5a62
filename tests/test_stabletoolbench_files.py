"""The real StableToolBench solvable query files (`../shared/toolbench/stabletoolbench/`): all 765
queries load and get schemas; one query is compared with StableToolBench's own published answer file.

Skipped when `../shared` (beside the repository) is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolbench_eval.benchmark.loader import load_benchmark, load_query_ids
from toolbench_eval.benchmark.model import GROUPS
from toolbench_eval.benchmark.schemas import FINISH_FUNCTION, build_function_index, build_functions
from toolbench_eval.cli import main

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
STB = SHARED / "toolbench" / "stabletoolbench"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "toolbench_min"
EXPECTED_SIZES = {
    "G1_instruction": 163,
    "G1_category": 153,
    "G1_tool": 158,
    "G2_instruction": 106,
    "G2_category": 124,
    "G3_instruction": 61,
}

pytestmark = pytest.mark.skipif(not (STB / "solvable_queries").is_dir(), reason=f"{STB} is not available")


@pytest.fixture(scope="module")
def groups():
    return load_benchmark(STB)


def test_all_765_queries_load(groups):
    assert list(groups) == list(GROUPS)
    assert {name: len(g.queries) for name, g in groups.items()} == EXPECTED_SIZES
    assert sum(len(g.queries) for g in groups.values()) == 765


def test_query_ids_match_the_id_files(groups):
    for name, group in groups.items():
        ids = load_query_ids(STB / "solvable_queries" / "test_query_ids" / f"{name}.json")
        assert sorted(q.query_id for q in group.queries) == sorted(ids)


def test_every_query_gets_schemas_in_both_forms(groups):
    prefix = "This is the subfunction for tool "
    checked = 0
    for group in groups.values():
        for query in group.queries:
            assert query.api_list, query.query_id
            for quirks in (False, True):
                functions = build_functions(query, group.tools, upstream_quirks=quirks)
                assert len(functions) == len(query.api_list) + 1
                assert functions[-1] == FINISH_FUNCTION
                for function in functions[:-1]:
                    assert 0 < len(function["name"]) <= 64
                    assert function["description"].startswith(prefix)
                    params = function["parameters"]
                    named = [n for n in params["required"] + params["optional"] if n]
                    assert set(named) == set(params["properties"])
                    assert all(
                        p["type"] in {"string", "integer", "boolean"} for p in params["properties"].values()
                    )
                    if quirks:
                        assert params["required"][0] == "" and params["optional"][0] == ""
                json.dumps(functions)  # serializable as is
            checked += 1
    assert checked == 765


def test_query_588_matches_stabletoolbenchs_published_answer_file(groups):
    # tests/fixtures/toolbench_min/upstream_588_functions.json is `answer_generation.function` of
    # StableToolBench's data_example/answer/virtual_chatgpt_cot/G1_instruction/588_CoT@1.json.
    expected = json.loads((FIXTURE / "upstream_588_functions.json").read_text())
    group = groups["G1_instruction"]
    query = next(q for q in group.queries if q.query_id == "588")
    assert json.dumps(build_functions(query, group.tools)) == json.dumps(expected)


def test_upstream_quirk_drops_optional_only_parameters(groups):
    affected = emptied = 0
    for group in groups.values():
        for query in group.queries:
            functions = build_functions(query, group.tools, upstream_quirks=True)
            for api, function in zip(query.api_list, functions):
                if api.optional_parameters and not api.required_parameters:
                    affected += 1
                    emptied += function["parameters"]["properties"] == {}
    assert affected == emptied == 402


def test_long_names_collide_after_the_64_character_cut(groups):
    # The [-64:] cut makes a few APIs indistinguishable; upstream keeps both, so do we, and report them.
    collisions = {
        (name, q.query_id): build_function_index(q, g.tools).collisions
        for name, g in groups.items()
        for q in g.queries
    }
    found = {key: names for key, names in collisions.items() if names}
    assert sum(len(names) for names in found.values()) == 9
    assert "by_pagination_for_get_10000_anime_quotes_with_pagination_support" in found[("G1_tool", "9039")]


def test_schemas_cli_on_a_real_file(capsys):
    assert (
        main(
            ["schemas", str(STB / "solvable_queries" / "test_instruction" / "G3_instruction.json"), "--json"]
        )
        == 0
    )
    listing = json.loads(capsys.readouterr().out)
    assert len(listing) == 61
    assert all(item["functions"][-1]["name"] == "Finish" for item in listing)


def test_inspect_cli_on_the_checkout(capsys):
    assert main(["inspect", str(STB), "--tokenizer", "none", "--json"]) == 0
    rows = {row["group"]: row for row in json.loads(capsys.readouterr().out)["groups"]}
    assert rows["all"]["queries"] == 765
    assert rows["G3_instruction"]["tools"] == 7  # StableToolBench's G3 set uses only 7 tools
    assert rows["G2_instruction"]["apis_per_query_max"] == 13
