"""Checked reads of the JSON objects we write (run manifests, pass-rate reports) into pydantic models.

A file damaged or edited by hand should be refused where it is read, with the file and the field named, rather
than fail later as a KeyError deep inside scoring. pydantic checks the fields; `validated` says what it found
in the words of JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, GetPydanticSchema, ValidationError
from pydantic_core import ErrorDetails

from toolbench_eval.errors import located

Model = TypeVar("Model", bound=BaseModel)

# bool before int: a bool is an int to isinstance.
JSON_NAMES = {type(None): "null", bool: "true or false", int: "an integer", float: "a number", str: "a string",
              list: "a list", dict: "an object"}
# pydantic's complaints about a value of the wrong type (models are read from JSON objects).
EXPECTED = {"string_type": str, "int_type": int, "bool_type": bool, "list_type": list, "dict_type": dict,
            "model_type": dict}


def one_of(*kinds: type) -> GetPydanticSchema:
    """For a union: one complaint, at the field itself, naming the JSON types it takes (pydantic would list
    each member it tried, with the member's name appended to the field path)."""
    expected = " or ".join(JSON_NAMES[kind] for kind in kinds)
    return GetPydanticSchema(lambda source, handler: {**handler(source), "custom_error_type": "json_kind",
                                                      "custom_error_message": expected})


# A number kept as written: a strict `float` would turn 0 into 0.0, and the file would not read back the same.
Number = Annotated[int | float, one_of(float)]


def validated(model: type[Model], data: Any, source: str | Path) -> Model:
    """`model` read from `data`; its first problem a UserError naming `source` and the field (`buckets.bases[0]`)."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problem = error.errors(include_url=False)[0]  # the first in field order, as a reader goes
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in problem["loc"])
    raise located(source, _in_json_words(problem), field=path.removeprefix(".") or None) from None


def _in_json_words(problem: ErrorDetails) -> str:
    kind, found = problem["type"], _json_name(problem["input"])
    if kind in EXPECTED:
        return f"expected {JSON_NAMES[EXPECTED[kind]]}, found {found}"
    if kind == "json_kind":
        return f"expected {problem['msg']}, found {found}"
    if kind == "value_error":  # one of our parsers (`AnswerStatus.parse`) refused it, in its own words
        return str(problem["ctx"]["error"])
    return {"missing": "required field is missing", "string_too_short": "is empty"}.get(kind, problem["msg"])


def _json_name(value: Any) -> str:
    return next((name for kind, name in JSON_NAMES.items() if isinstance(value, kind)), type(value).__name__)
