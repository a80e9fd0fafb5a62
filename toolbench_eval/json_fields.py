"""Checked reads of the JSON objects we write (run manifests, pass-rate reports) into typed dataclasses.

A file damaged or edited by hand should be refused where it is read, with the file and the field named, rather
than fail later as a KeyError deep inside scoring. Each field is checked against its annotation, outer type only:
a nested record checks its own fields when it is read.
"""

from __future__ import annotations

import types
from dataclasses import MISSING, fields, is_dataclass
from functools import cache
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

from toolbench_eval.errors import located

# bool before int: a bool is an int to isinstance.
JSON_NAMES = {type(None): "null", bool: "true or false", int: "an integer", float: "a number", str: "a string",
              list: "a list", dict: "an object"}


def read_fields(record: type, data: Any, source: str | Path, *, where: str = "",
                only: frozenset[str] | None = None) -> dict[str, Any]:
    """The values in `data` (a JSON object) of `record`'s dataclass fields (those in `only`, when given), each
    checked against its annotation. A field without a default must be present; others may be absent."""
    if not isinstance(data, dict):
        raise located(source, f"expected an object, found {_json_name(data)}", field=where or None)
    values: dict[str, Any] = {}
    for name, hint, required in _fields(record):
        if only is not None and name not in only:
            continue
        path = f"{where}.{name}" if where else name
        if name not in data:
            if required:
                raise located(source, "required field is missing", field=path)
            continue
        check(data[name], hint, source, path)
        values[name] = data[name]
    return values


def check(value: Any, hint: Any, source: str | Path, path: str) -> None:
    """A UserError naming `source` and the field `path` unless `value` fits `hint` (see `_matches`)."""
    if not _matches(value, hint):
        expected = " or ".join(JSON_NAMES.get(kind, kind.__name__) for kind in _outer_types(hint))
        raise located(source, f"expected {expected}, found {_json_name(value)}", field=path)


def _json_name(value: Any) -> str:
    return next((name for kind, name in JSON_NAMES.items() if isinstance(value, kind)), type(value).__name__)


def _matches(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits an annotation's outer type (a number for `float`, never a bool for `int`)."""
    if hint is Any:
        return True
    if isinstance(value, bool):
        return bool in _outer_types(hint)
    return any(isinstance(value, (int, float) if kind is float else kind) for kind in _outer_types(hint))


@cache
def _fields(record: type) -> list[tuple[str, Any, bool]]:
    hints = get_type_hints(record)
    return [(f.name, hints[f.name], f.default is MISSING and f.default_factory is MISSING) for f in fields(record)]


def _outer_types(hint: Any) -> tuple[type, ...]:
    if get_origin(hint) in (Union, types.UnionType):
        return tuple(kind for part in get_args(hint) for kind in _outer_types(part))
    if is_dataclass(hint):
        return (dict,)  # a nested record, still in its JSON form
    return (get_origin(hint) or hint,)
