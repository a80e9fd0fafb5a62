"""Loading ToolBench-layout benchmarks: roots, groups, id filtering, tools, fallbacks and bad input."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from toolbench_eval.benchmark import loader
from toolbench_eval.benchmark.loader import (
    load_benchmark,
    load_file_group,
    load_group,
    load_query_file,
    load_query_ids,
    load_tools,
    resolve_benchmark_root,
)
from toolbench_eval.benchmark.model import GroundTruth
from toolbench_eval.errors import UserError

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "toolbench_min"
LOGGER = "toolbench_eval.benchmark.loader"


def good_query(**overrides):
    query = {
        "query": "find a word",
        "query_id": 7,
        "api_list": [
            {
                "category_name": "Data",
                "tool_name": "Random Word API",
                "api_name": "Get Word",
                "api_description": "A word",
                "required_parameters": [
                    {"name": "length", "type": "NUMBER", "description": "", "default": 5}
                ],
                "optional_parameters": [],
                "method": "GET",
            }
        ],
        "relevant APIs": [["Random Word API", "Get Word"]],
    }
    query.update(overrides)
    return query


def write_root(tmp_path: Path, groups: dict[str, list]) -> Path:
    (tmp_path / "test_instruction").mkdir(parents=True, exist_ok=True)
    for name, queries in groups.items():
        (tmp_path / "test_instruction" / f"{name}.json").write_text(json.dumps(queries))
    return tmp_path


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno >= logging.WARNING]


# ---- the fixture ---------------------------------------------------------------------------------


def test_fixture_group_loads_typed_queries():
    group = load_group(FIXTURE, "G1_instruction")
    assert group.name == "G1_instruction"
    first, second = group.queries
    assert (first.query_id, second.query_id) == ("101", "102")  # ids are text, int or str in the file
    assert first.group == "G1_instruction"
    assert first.relevant_apis == (("TheClique", "Songkick concert"), ("TheClique", "Transfermarkt search"))
    concert = first.api_list[0]
    assert (concert.category_name, concert.tool_name, concert.api_name) == (
        "Data",
        "TheClique",
        "Songkick concert",
    )
    assert concert.required_parameters[0].name == "id_conc"
    assert concert.required_parameters[0].default == "40698227"
    assert concert.template_response == {"date": "str", "line_up": [{"name": "str", "_list_length": 2}]}
    assert first.api_list[1].template_response is None  # absent in the file
    weather = second.api_list[1]
    assert [p.default for p in weather.optional_parameters] == [True, None]


def test_raw_entries_are_exact():
    group = load_group(FIXTURE, "G1_instruction")
    on_disk = json.loads((FIXTURE / "test_instruction" / "G1_instruction.json").read_text())
    assert json.dumps(group.queries[0].raw) == json.dumps(on_disk[0])
    assert json.dumps(group.queries[1].raw) == json.dumps(on_disk[1])


def test_query_ids_file_filters(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    group = load_group(FIXTURE, "G1_instruction")
    assert [q.query_id for q in group.queries] == ["101", "102"]
    assert any(
        "1 of 3 queries are not listed" in r.getMessage() for r in caplog.records
    )  # reported, not silent
    assert len(load_query_file(FIXTURE / "test_instruction" / "G1_instruction.json")) == 3


def test_unknown_ids_in_the_id_file_are_reported(tmp_path, caplog):
    root = write_root(tmp_path, {"G1_tool": [good_query()]})
    (root / "test_query_ids").mkdir()
    (root / "test_query_ids" / "G1_tool.json").write_text('{"7": 0, "8": 0}')
    group = load_group(root, "G1_tool")
    assert [q.query_id for q in group.queries] == ["7"]
    assert any("1 ids" in m and "8" in m for m in warnings_of(caplog))


def test_ground_truth_is_parsed():
    query = load_group(FIXTURE, "G1_tool").queries[0]
    assert query.ground_truth == GroundTruth(
        facts=("https://sho.rt/abc",),
        call_plan=(
            {
                "tool_name": "URL Link Shortener",
                "api_name": "Create short link",
                "arguments": {"url": "https://example.com"},
            },
        ),
    )


def test_tool_files_are_used_and_missing_ones_reported_once(caplog):
    groups = load_benchmark(FIXTURE)
    assert list(groups) == ["G1_instruction", "G1_tool"]
    tools = groups["G1_instruction"].tools
    assert set(tools) == {("Data", "theclique"), ("Weather", "weather_api")}
    assert tools[("Data", "theclique")].source.endswith("theclique.json")
    assert tools[("Data", "theclique")].tool_description.startswith("TheClique: concert")
    rebuilt = groups["G1_tool"].tools[("Other", "url_link_shortener")]
    assert rebuilt.source == "" and rebuilt.tool_name == "URL Link Shortener"
    messages = warnings_of(caplog)
    assert len(messages) == 2, messages  # one line for missing tools, one for missing APIs: not per query
    assert "1 tools have no file" in messages[0] and "Other/url_link_shortener" in messages[0]
    assert "used by 1 queries" in messages[0]
    assert "1 APIs are missing" in messages[1] and "Data/theclique: Transfermarkt search" in messages[1]


def test_without_tool_files_tools_come_from_api_lists_and_it_is_said_once(tmp_path, caplog):
    queries_a = [good_query(query_id=i) for i in range(1, 6)]
    queries_b = [good_query(query_id=i) for i in range(6, 9)]
    root = write_root(tmp_path, {"G1_instruction": queries_a, "G2_instruction": queries_b})
    groups = load_benchmark(root)
    assert [len(g.queries) for g in groups.values()] == [5, 3]  # nothing skipped
    tool = groups["G1_instruction"].tools[("Data", "random_word_api")]
    assert tool.source == "" and [a.api_name for a in tool.apis] == ["Get Word"]
    messages = warnings_of(caplog)
    assert len(messages) == 1, messages
    assert "built 1 tools / 1 APIs from the api_list of 8 queries" in messages[0]


def test_load_tools_scans_a_tools_dir():
    tools = load_tools(FIXTURE / "toolenv" / "tools")
    assert set(tools) == {("Data", "theclique"), ("Weather", "weather_api")}
    weather = tools[("Weather", "weather_api")]
    assert weather.tool_name == "Weather API" and weather.standardized_name == "weather_api"
    assert [a.api_name for a in weather.apis] == ["Current Weather", "5 Day Forecast"]
    assert weather.apis[0].category_name == "Weather"
    assert weather.apis[0].optional_parameters[0].type == "NUMBER"


def test_explicit_tools_dir(tmp_path):
    root = write_root(tmp_path / "bench", {"G1_tool": [good_query()]})
    tools_dir = tmp_path / "elsewhere"
    (tools_dir / "Data").mkdir(parents=True)
    (tools_dir / "Data" / "random_word_api.json").write_text(
        json.dumps({"tool_name": "Random Word API", "tool_description": "Words!", "api_list": []})
    )
    group = load_group(root, "G1_tool", tools_dir=tools_dir)
    assert group.tools[("Data", "random_word_api")].tool_description == "Words!"
    with pytest.raises(UserError, match="no such tools folder"):
        load_group(root, "G1_tool", tools_dir=tmp_path / "nope")


def test_load_file_group_finds_the_roots_tools():
    group = load_file_group(FIXTURE / "test_instruction" / "G1_instruction.json")
    assert [q.query_id for q in group.queries] == ["101", "102", "103"]
    assert group.tools[("Data", "theclique")].source


# ---- roots and groups ---------------------------------------------------------------------------------


def test_stabletoolbench_layout_root_is_accepted(tmp_path):
    shutil.copytree(FIXTURE / "test_instruction", tmp_path / "solvable_queries" / "test_instruction")
    assert resolve_benchmark_root(tmp_path) == tmp_path / "solvable_queries"
    assert [q.query_id for q in load_group(tmp_path, "G1_tool").queries] == ["201"]


def test_localtoolbench_name_resolves_to_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "DATA_DIR", tmp_path)
    with pytest.raises(UserError, match="localtoolbench"):
        resolve_benchmark_root("localtoolbench")
    shutil.copytree(FIXTURE, tmp_path / "localtoolbench")
    assert resolve_benchmark_root("localtoolbench") == tmp_path / "localtoolbench"


def test_not_a_benchmark_root(tmp_path):
    with pytest.raises(UserError, match="not a benchmark root"):
        resolve_benchmark_root(tmp_path)


def test_unknown_group_lists_valid_ones():
    with pytest.raises(UserError) as error:
        load_benchmark(FIXTURE, ["G1_instruction", "G7_whatever"])
    assert "G7_whatever" in str(error.value)
    assert "G1_instruction" in str(error.value) and "G3_instruction" in str(error.value)


def test_standard_group_absent_from_root():
    with pytest.raises(UserError, match="no query file for group 'G3_instruction'"):
        load_group(FIXTURE, "G3_instruction")


def test_non_standard_groups_load_when_named(tmp_path):
    root = write_root(tmp_path, {"my_group": [good_query()]})
    with pytest.raises(UserError, match="none of the standard groups"):
        load_benchmark(root)
    assert list(load_benchmark(root, ["my_group"])) == ["my_group"]


# ---- records exactly as written ---------------------------------------------------------------------------


def test_records_arrow_would_change_stay_exact(tmp_path):
    # Arrow gives all rows one schema: an absent key becomes null, 1 next to 2.5 becomes 1.0, and key
    # order follows the schema. The loader must return the file as written.
    first = good_query(query_id=1, extra={"a": 1}, priority=1)
    rest = {k: v for k, v in good_query(priority=2.5).items() if k != "query_id"}
    second = {"query_id": 2, **rest}  # query_id first: a different key order
    second["api_list"][0]["template_response"] = {"x": [1, "two", {"three": None}]}
    second["api_list"][0]["required_parameters"][0]["default"] = 5.0
    path = tmp_path / "G1_tool.json"
    path.write_text(json.dumps([first, second]))
    assert json.dumps([query.raw for query in load_query_file(path)]) == json.dumps([first, second])
    queries = load_query_file(path)
    assert json.dumps(queries[1].raw) == json.dumps(second) and "extra" not in queries[1].raw
    assert type(queries[0].raw["priority"]) is int
    assert type(queries[1].api_list[0].required_parameters[0].default) is float
    assert type(queries[0].api_list[0].required_parameters[0].default) is int


def test_mixed_nested_shapes_stay_exact(tmp_path):
    first = good_query(query_id=1)
    second = good_query(query_id=2)
    second["api_list"][0]["template_response"] = {"x": [1, "two", {"three": None}]}
    path = tmp_path / "G1_tool.json"
    path.write_text(json.dumps([first, second]))
    assert json.dumps([query.raw for query in load_query_file(path)]) == json.dumps([first, second])


def test_jsonl_query_files(tmp_path):
    path = tmp_path / "G1_tool.jsonl"
    path.write_text("\n".join(json.dumps(good_query(query_id=i)) for i in range(3)) + "\n")
    assert [q.query_id for q in load_query_file(path)] == ["0", "1", "2"]
    assert load_query_file(path)[0].group == "G1_tool"


def test_empty_query_file_is_an_error(tmp_path):
    path = tmp_path / "G1_tool.json"
    path.write_text("[]")
    with pytest.raises(UserError, match="holds no queries"):
        load_query_file(path)  # more cases in test_loader_guards.py


# ---- bad input: every error names the file, the entry and the field ------------------------------


def load_bad(tmp_path, content: str | list) -> str:
    path = tmp_path / "G1_instruction.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(UserError) as error:
        load_query_file(path)
    message = str(error.value)
    assert str(path) in message
    return message


def test_malformed_json_names_line_and_column(tmp_path):
    message = load_bad(tmp_path, '[\n  {"query_id": 1,\n   "query": "q" "api_list": []}\n]')
    assert "line 3 column 17" in message and "malformed JSON" in message


def test_malformed_jsonl_names_the_line(tmp_path):
    path = tmp_path / "G1_tool.jsonl"
    path.write_text(json.dumps(good_query()) + "\n" + '{"query_id": 2,,}\n')
    with pytest.raises(UserError, match="line 2 column"):
        load_query_file(path)


def test_top_level_must_be_a_list(tmp_path):
    assert "expected a JSON list" in load_bad(tmp_path, {"query_id": 1})


def test_entry_must_be_an_object(tmp_path):
    message = load_bad(tmp_path, [good_query(), "oops"])
    assert "entry #1" in message and "must be a JSON object" in message


def test_query_without_api_list(tmp_path):
    query = good_query()
    del query["api_list"]
    message = load_bad(tmp_path, [query])
    assert "entry #0 (query_id 7)" in message and "field 'api_list'" in message and "missing" in message


def test_query_without_query_id(tmp_path):
    query = good_query()
    del query["query_id"]
    message = load_bad(tmp_path, [good_query(query_id=1), query])
    assert "entry #1" in message and "field 'query_id'" in message


@pytest.mark.parametrize("bad_id", [None, True, 1.5, "", ["1"]])
def test_query_id_of_wrong_type(tmp_path, bad_id):
    assert "field 'query_id'" in load_bad(tmp_path, [good_query(query_id=bad_id)])


def test_required_parameters_not_a_list(tmp_path):
    query = good_query()
    query["api_list"][0]["required_parameters"] = {"name": "length"}
    message = load_bad(tmp_path, [query])
    assert "query_id 7" in message
    assert "field 'api_list[0].required_parameters'" in message and "must be a JSON list" in message


def test_parameter_without_name(tmp_path):
    query = good_query()
    query["api_list"][0]["optional_parameters"] = [{"type": "STRING", "description": "", "default": ""}]
    message = load_bad(tmp_path, [query])
    assert "field 'api_list[0].optional_parameters[0].name'" in message and "missing" in message


def test_parameter_name_of_wrong_type(tmp_path):
    query = good_query()
    query["api_list"][0]["required_parameters"][0]["name"] = 5
    message = load_bad(tmp_path, [query])
    assert "field 'api_list[0].required_parameters[0].name'" in message and "must be a string" in message


def test_parameter_spec_not_an_object(tmp_path):
    query = good_query()
    query["api_list"][0]["required_parameters"] = ["length"]
    assert "field 'api_list[0].required_parameters[0]'" in load_bad(tmp_path, [query])


def test_api_without_tool_name(tmp_path):
    query = good_query()
    del query["api_list"][0]["tool_name"]
    assert "field 'api_list[0].tool_name'" in load_bad(tmp_path, [query])


def test_bad_relevant_apis(tmp_path):
    assert "field 'relevant APIs[0]'" in load_bad(tmp_path, [good_query(**{"relevant APIs": [["only one"]]})])


def test_bad_ground_truth(tmp_path):
    message = load_bad(tmp_path, [good_query(ground_truth={"facts": [1]})])
    assert "field 'ground_truth.facts[0]'" in message


def test_duplicate_query_ids(tmp_path):
    message = load_bad(tmp_path, [good_query(query_id=3), good_query(query_id="3")])
    assert "query_id 3 also used by entry #0" in message


def test_not_utf8(tmp_path):
    path = tmp_path / "G1_tool.json"
    path.write_bytes(b'[{"query": "caf\xe9"}]')
    with pytest.raises(UserError, match="not UTF-8"):
        load_query_file(path)


def test_bad_tool_file_names_file_and_field(tmp_path):
    (tmp_path / "Data").mkdir()
    path = tmp_path / "Data" / "words.json"
    path.write_text(
        json.dumps({"tool_name": "Words", "api_list": [{"name": "a", "required_parameters": "x"}]})
    )
    with pytest.raises(UserError) as error:
        load_tools(tmp_path)
    assert str(path) in str(error.value) and "field 'api_list[0].required_parameters'" in str(error.value)


def test_bad_query_ids_file(tmp_path):
    path = tmp_path / "ids.json"
    path.write_text('"just a string"')
    with pytest.raises(UserError, match="expected a JSON object"):
        load_query_ids(path)
    path.write_text('{"1": 0, "2": 0}')
    assert load_query_ids(path) == ["1", "2"]
