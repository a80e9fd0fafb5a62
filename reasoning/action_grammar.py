"""The grammar of one well-formed ReAct decision, for constrained decoding.

A small tool model loses many queries to calls the API can only reject: a function name that is not in
the list, a parameter the API does not take, a required parameter left out. Under constrained decoding
the engine masks, at every step, the tokens that would leave this grammar, so every decision it
returns is a call the environment can run. The model still chooses which function to call and every
value it passes; only impossible text is ruled out.

The grammar is written in the Lark dialect of llguidance (the structured-output library vLLM and
llama.cpp use), with `%json` for the argument object. Its text depends only on the functions, so it
is built here, where the ReAct format lives, and compiled by the engine. Levels:

- `names`: `Thought: <one line>\\nAction: <a listed function>\\nAction Input: <a JSON object>`, the
  object laid out as `json.dumps` writes it;
- `arguments`: as `names`, and the object's keys are that function's declared parameters, in the
  declared order, each at most once, the required ones present; a parameter with an `enum` takes
  one of its values (Finish's `return_type`). Other values are free JSON: ToolBench's declared types
  are unreliable (upstream maps every NUMBER to "integer"), so they are not enforced.

The thought is one line: the ToolLLaMA format the parser reads and the trajectories ToolSmol is
trained on. A model that writes multi-line thoughts should be run unconstrained.

>>> functions = [{"name": "get_weather_for_meteo", "parameters": {"type": "object",
...     "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
>>> print(react_action_grammar(functions, "names"))
start: "Thought: " THOUGHT "\\nAction: " call
THOUGHT: /[^\\n]*/
call: "get_weather_for_meteo\\nAction Input: " args0
args0: %json {"type": "object", "x-guidance": {"whitespace_flexible": false, "item_separator": ", ", "key_separator": ": "}}
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

CONSTRAIN_LEVELS = ("off", "names", "arguments")

# JSON is written as `json.dumps` writes it (", " and ": ", no other whitespace): the layout of
# ToolBench's trajectories. Flexible whitespace would let a model that wants to stop early (a
# required key still missing) wander through newlines and spaces instead of writing the key.
JSON_LAYOUT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


def check_level(level: str) -> str:
    """`level` if it is a known constraint level; ValueError naming the choices otherwise."""
    if level not in CONSTRAIN_LEVELS:
        raise ValueError(f"constrain: {level!r} is not one of {list(CONSTRAIN_LEVELS)}")
    return level


def react_action_grammar(functions: Sequence[Mapping[str, Any]], level: str) -> str | None:
    """The Lark grammar of one decision over `functions` (bare schemas, Finish included) at `level`;
    None for `off`."""
    if check_level(level) == "off":
        return None
    named = [function for function in functions if function.get("name")]
    if not named:
        raise ValueError("constrained decoding needs at least one named function")
    alternatives, rules = [], []
    for index, function in enumerate(named):
        schema = arguments_schema(function) if level == "arguments" else {"type": "object"}
        schema["x-guidance"] = JSON_LAYOUT
        alternatives.append(f"{_lark_string(str(function['name']) + chr(10) + 'Action Input: ')} args{index}")
        rules.append(f"args{index}: %json {json.dumps(schema)}")
    return "\n".join([
        'start: "Thought: " THOUGHT "\\nAction: " call',
        "THOUGHT: /[^\\n]*/",
        "call: " + " | ".join(alternatives),
        *rules,
    ])


def arguments_schema(function: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON schema an `arguments`-level call to `function` must match: its declared keys only
    (ToolBench's `properties`, plus any name in `required`/`optional` missing from them), required
    ones present, values free except a declared `enum`."""
    parameters = function.get("parameters") or {}
    declared = parameters.get("properties") or {}
    listed = [*declared, *(parameters.get("required") or []), *(parameters.get("optional") or [])]
    properties: dict[str, Any] = {}
    for name in dict.fromkeys(str(key) for key in listed):
        spec = declared.get(name)
        enum = spec.get("enum") if isinstance(spec, Mapping) else None
        properties[name] = {"enum": list(enum)} if isinstance(enum, list) and enum else {}
    required = [str(name) for name in parameters.get("required") or [] if str(name) in properties]
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _lark_string(text: str) -> str:
    """A Lark string literal for `text` (JSON's escapes are Lark's)."""
    return json.dumps(text)
