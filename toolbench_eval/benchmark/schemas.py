"""Function schemas exactly as StableToolBench builds them (`rapidapi_wrapper.api_json_to_openai_json`).

Each API of a query becomes one OpenAI-style function dict; `Finish` is appended last. The dicts
are *bare* (`{"name", "description", "parameters"}`): that is what ToolLLaMA sees in its system
prompt and what answer files store under `answer_generation.function`.

Two forms:

- clean (default): `"required": []`, `"optional": []` to start with, and optional parameters always
  listed. This is also the form of StableToolBench's published example answers and of ToolBench.
- `upstream_quirks=True`: StableToolBench's current code, byte for byte. Its template starts with
  `"required": [""], "optional": [""]`; its optional-parameter loop sits inside the
  `if required_parameters` block, so an API with only optional parameters gets *no* parameters
  (402 of the 4,070 APIs in the StableToolBench test sets); and a `null` default becomes
  `"example_value": null` (it tests `len(str(default))`).

Where a tool's documentation comes from: the tool JSON file (`toolenv/tools/<Category>/<tool>.json`)
when one is loaded and lists the API, else the query's own `api_list` entry (which carries the same
fields). Upstream instead skips a query whose tool file is missing and drops an API its tool file
lacks; we never drop anything, and the loader reports what was missing.

>>> from toolbench_eval.benchmark.model import Api, Parameter
>>> api = Api("Data", "TheClique", "Songkick concert", "Concert info",
...           required_parameters=(Parameter("id_conc", "string", "", "4069"),))
>>> api_to_function(api, "theclique")["parameters"]["required"]
['id_conc']
>>> api_to_function(api, "theclique", upstream_quirks=True)["parameters"]["required"]
['', 'id_conc']
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from toolbench_eval.benchmark.model import Api, Parameter, Query, Tool
from toolbench_eval.benchmark.naming import change_name, function_name, parameter_name, standardize

# API and parameter descriptions are cut to this many characters.
DESCRIPTION_MAX_LENGTH = 256
# Tool descriptions in the system prompt are cut to this many characters.
TOOL_DESCRIPTION_MAX_LENGTH = 512

# Only these three upstream type names map to JSON types; everything else (incl. lowercase
# "string", "ENUM", "DATE (YYYY-MM-DD)", "ARRAY") becomes "string". Case-sensitive, as upstream.
TYPE_MAP: dict[str, str] = {"NUMBER": "integer", "STRING": "string", "BOOLEAN": "boolean"}

FINISH_NAME = "Finish"

# Upstream's Finish function, text for text (rapidapi.py, `finish_func`), in the bare form.
FINISH_FUNCTION: dict[str, Any] = {
    "name": FINISH_NAME,
    "description": (
        "If you believe that you have obtained a result that can answer the task, please call this function "
        "to provide the final answer. Alternatively, if you recognize that you are unable to proceed with "
        "the "
        "task in the current state, call this function to restart. Remember: you must ALWAYS call this "
        "function at the end of your attempt, and the only part that will be shown to the user is the final "
        "answer, so it should contain sufficient information."
    ),
    "parameters": {
        "type": "object",
        "properties": {
            "return_type": {"type": "string", "enum": ["give_answer", "give_up_and_restart"]},
            "final_answer": {
                "type": "string",
                "description": "The final answer you want to give the user. You should have this field if "
                '"return_type"=="give_answer"',
            },
        },
        "required": ["return_type"],
    },
}

ToolMap = Mapping[tuple[str, str], Tool]


def json_type(parameter_type: str) -> str:
    """Map an upstream parameter type to the schema type.

    >>> json_type("NUMBER"), json_type("string"), json_type("ENUM"), json_type("number")
    ('integer', 'string', 'string', 'string')
    """
    return TYPE_MAP.get(parameter_type, "string")


def _property(parameter: Parameter, *, upstream_quirks: bool) -> dict[str, Any]:
    prop: dict[str, Any] = {
        "type": json_type(parameter.type),
        "description": parameter.description[:DESCRIPTION_MAX_LENGTH],
    }
    default = parameter.default
    # Upstream tests `len(str(default)) != 0`, so a null default shows up as `example_value: null`.
    if (upstream_quirks or default is not None) and len(str(default)) != 0:
        prop["example_value"] = default
    return prop


def api_to_function(api: Api, standard_tool_name: str, *, upstream_quirks: bool = False) -> dict[str, Any]:
    """One API as a bare function dict (see the module docstring for the two forms).

    >>> from toolbench_eval.benchmark.model import Api
    >>> fn = api_to_function(Api("Data", "Words", "Get Word", "Get Word returns a word"), "words")
    >>> fn["name"]
    'get_word_for_words'
    >>> fn["description"]
    'This is the subfunction for tool "words", you can use this tool.The description of this function is: \
"get_word_for_words returns a word"'
    """
    name = function_name(api.api_name, standard_tool_name)
    description = f'This is the subfunction for tool "{standard_tool_name}", you can use this tool.'
    text = api.api_description.strip()
    if text:
        if api.api_name:  # str.replace("") would insert the name between every character
            text = text.replace(api.api_name, name)
        description += f'The description of this function is: "{text[:DESCRIPTION_MAX_LENGTH]}"'

    properties: dict[str, Any] = {}
    required: list[str] = [""] if upstream_quirks else []
    optional: list[str] = [""] if upstream_quirks else []
    for parameter in api.required_parameters:
        key = parameter_name(parameter.name)
        properties[key] = _property(parameter, upstream_quirks=upstream_quirks)
        if upstream_quirks or key not in required:
            required.append(key)
    # Upstream only reaches its optional-parameter loop when there are required parameters.
    if api.required_parameters or not upstream_quirks:
        for parameter in api.optional_parameters:
            key = parameter_name(parameter.name)
            properties[key] = _property(parameter, upstream_quirks=upstream_quirks)
            if upstream_quirks or key not in optional:
                optional.append(key)
    return {
        "name": name,
        "description": description,
        "parameters": {
            "type": "object",
            "properties": properties,
            "required": required,
            "optional": optional,
        },
    }


@dataclass(frozen=True)
class ResolvedApi:
    """An API of a query together with the documentation its schema is built from."""

    api: Api  # the tool file's entry when there is one, else the query's own api_list entry
    standard_tool_name: str
    tool: Tool | None  # the tool it belongs to, when `tools` holds it
    from_tool_file: bool  # False: documented by the query's api_list (tool file or API entry missing)


def _find_tool(api: Api, tools: ToolMap | None) -> Tool | None:
    if not tools:
        return None
    standard = standardize(api.tool_name)
    tool = tools.get((api.category_name, standard))
    if tool is not None:
        return tool
    # Upstream's white list is keyed by the standardized tool name alone, across categories.
    for (_, stem), candidate in tools.items():
        if stem == standard or standardize(candidate.tool_name) == standard:
            return candidate
    return None


def resolve_api(api: Api, tools: ToolMap | None = None) -> ResolvedApi:
    """The documentation for one `api_list` entry: its tool file's API when present, else the entry itself."""
    tool = _find_tool(api, tools)
    if tool is None:
        return ResolvedApi(api, standardize(api.tool_name), None, False)
    if tool.source:
        wanted = change_name(standardize(api.api_name))
        for candidate in tool.apis:
            if change_name(standardize(candidate.api_name)) == wanted:
                return ResolvedApi(candidate, tool.standardized_name, tool, True)
    return ResolvedApi(api, tool.standardized_name, tool, False)


@dataclass(frozen=True)
class FunctionTarget:
    """What a function name stands for: the API to call, with original (unstandardized) names."""

    function_name: str
    category_name: str
    tool_name: str  # original tool name
    standard_tool_name: str
    api_name: str  # original API name
    api: Api
    parameter_names: dict[str, str] = field(default_factory=dict)  # schema name -> original name

    def original_arguments(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Rename schema argument names back to the API's own names (unknown names pass through).

        >>> from toolbench_eval.benchmark.model import Api, Parameter
        >>> api = Api("C", "T", "a", required_parameters=(Parameter("ID", "STRING"),))
        >>> target = FunctionTarget("a_for_t", "C", "T", "t", "a", api, {"is_id": "ID"})
        >>> target.original_arguments({"is_id": 7, "extra": 1})
        {'ID': 7, 'extra': 1}
        """
        return {self.parameter_names.get(key, key): value for key, value in arguments.items()}


class FunctionIndex(Mapping[str, FunctionTarget]):
    """A query's function schemas (Finish last) and, per function name, the API it calls.

    Upstream keeps every function even when two APIs mangle to the same name; so do we, and the
    index maps such a name to the first one (the one upstream's name matching reaches first).
    `collisions` lists the names that occurred more than once.
    """

    def __init__(self, functions: list[dict[str, Any]], targets: dict[str, FunctionTarget], collisions=()):
        self.functions = functions
        self._targets = targets
        self.collisions: tuple[str, ...] = tuple(collisions)

    def __getitem__(self, name: str) -> FunctionTarget:
        return self._targets[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._targets)

    def __len__(self) -> int:
        return len(self._targets)


def _parameter_names(api: Api, *, upstream_quirks: bool) -> dict[str, str]:
    parameters = list(api.required_parameters)
    if api.required_parameters or not upstream_quirks:
        parameters += api.optional_parameters
    return {parameter_name(p.name): p.name for p in parameters}


def build_function_index(
    query: Query, tools: ToolMap | None = None, *, upstream_quirks: bool = False
) -> FunctionIndex:
    """Schemas for every API of `query` (in `api_list` order), Finish last, plus the name -> API index."""
    functions: list[dict[str, Any]] = []
    targets: dict[str, FunctionTarget] = {}
    collisions: list[str] = []
    for entry in query.api_list:
        resolved = resolve_api(entry, tools)
        function = api_to_function(resolved.api, resolved.standard_tool_name, upstream_quirks=upstream_quirks)
        functions.append(function)
        name = function["name"]
        if name in targets:
            collisions.append(name)
            continue
        targets[name] = FunctionTarget(
            function_name=name,
            category_name=entry.category_name,
            tool_name=resolved.api.tool_name,
            standard_tool_name=resolved.standard_tool_name,
            api_name=resolved.api.api_name,
            api=resolved.api,
            parameter_names=_parameter_names(resolved.api, upstream_quirks=upstream_quirks),
        )
    functions.append(copy.deepcopy(FINISH_FUNCTION))
    return FunctionIndex(functions, targets, collisions)


def build_functions(
    query: Query, tools: ToolMap | None = None, *, upstream_quirks: bool = False
) -> list[dict]:
    """The function list a model sees for `query`: one bare dict per API, `Finish` last."""
    return build_function_index(query, tools, upstream_quirks=upstream_quirks).functions


def prompt_tool_description(description: str | None) -> str:
    """A tool description as the system prompt lists it: first 512 chars, newlines removed, stripped,
    `"None"` when empty (upstream `rapidapi_wrapper.__init__`). Idempotent.

    >>> prompt_tool_description("  Line one\\nline two  ")
    'Line oneline two'
    >>> prompt_tool_description(None), prompt_tool_description("")
    ('None', 'None')
    """
    text = (description or "")[:TOOL_DESCRIPTION_MAX_LENGTH].replace("\n", "").strip()
    return text or "None"


def tool_descriptions(query: Query, tools: ToolMap | None = None) -> list[tuple[str, str]]:
    """`(standard_tool_name, description)` per distinct tool of `query`, in `api_list` order.

    Descriptions come prompt-ready (`prompt_tool_description`: cut at 512 characters, newlines
    removed, `"None"` when the tool has no description or no tool file is loaded). Upstream applies
    that cut while writing the system prompt; the cut is idempotent, so a prompt builder may apply it again.
    """
    seen: dict[str, str] = {}
    for entry in query.api_list:
        resolved = resolve_api(entry, tools)
        description = resolved.tool.tool_description if resolved.tool is not None else ""
        # Upstream keeps the first position and the last value of a repeated tool; values agree anyway.
        seen[resolved.standard_tool_name] = prompt_tool_description(description)
    return list(seen.items())
