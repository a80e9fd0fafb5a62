"""Run one LocalToolBench API over the database.

Arguments arrive as a model wrote them. They are checked the way a real HTTP API checks query
strings: unknown names, missing required values, values of the wrong type and out-of-range page
sizes give a 400-style message inside the response (never an exception). SQL is always
parameterised: column names come from the catalog, values from the arguments.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

from toolbench_eval.localtoolbench.catalog import BoundApi, Param
from toolbench_eval.tools.base import Observation, Status


class ApiInputError(ValueError):
    """Bad arguments; the message is what the API answers."""


@dataclass(frozen=True)
class Failure:
    """How an unreliable API fails, with upstream's error labels and status codes."""

    error: str
    response: Any
    status: Status


FAILURES = {
    "too_many_requests": Failure("Too many requests error...",
                                 {"message": "Too many requests. Please slow down and retry in a few seconds."},
                                 Status.TOO_MANY_REQUESTS),
    "server_error": Failure("API not working error...",
                            "500 Internal Server Error: Your Client (working) ---> Gateway (working) ---> "
                            "API (not working)", Status.NOT_WORKING),
    "timeout": Failure("Timeout error...",
                       "The request to the API has timed out. Please try again later, or if the issue "
                       "persists, please contact the API provider", Status.TIMEOUT),
}
DEAD = Failure("API not working error...",
               "Your Client (working) ---> Gateway (working) ---> API (not working)", Status.NOT_WORKING)


def function_identifier(api_name: str) -> str:
    """The Python-style name a real RapidAPI wrapper would have (used in TypeError-style messages)."""
    name = re.sub(r"[^0-9a-zA-Z_]+", "_", api_name).strip("_").lower()
    return re.sub(r"_+", "_", name)


def _coerce(param: Param, name: str, value: Any) -> Any:
    """Convert a query-string-like value to the documented type, or raise ApiInputError."""
    if param.type == "NUMBER":
        if isinstance(value, bool):
            raise ApiInputError(f"Invalid value for '{name}': expected a number, got {json.dumps(value)}")
        if isinstance(value, (int, float)):
            return value
        if isinstance(value, str):
            text = value.strip()
            try:
                number = float(text)
            except ValueError:
                raise ApiInputError(f"Invalid value for '{name}': expected a number, got '{value}'") from None
            return int(number) if number.is_integer() and "." not in text else number
        raise ApiInputError(f"Invalid value for '{name}': expected a number")
    if param.type == "BOOLEAN":
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in ("true", "1", "yes"):
            return True
        if str(value).strip().lower() in ("false", "0", "no"):
            return False
        raise ApiInputError(f"Invalid value for '{name}': expected true or false")
    if isinstance(value, (dict, list)):
        raise ApiInputError(f"Invalid value for '{name}': expected a string")
    text = str(value).strip()
    if param.type == "ENUM" and param.options:
        for option in param.options:
            if option.lower() == text.lower():
                return option
        raise ApiInputError(f"Invalid value for '{name}': must be one of {', '.join(param.options)}")
    return text


def validate_arguments(api: BoundApi, arguments: dict[str, Any]) -> dict[str, Any]:
    """Map documented argument names to logical ones and coerce values; raise ApiInputError on bad input."""
    known = {bound.name: bound for bound in api.params}
    for name in arguments:
        if name not in known:
            accepted = ", ".join(known) or "none"
            raise ApiInputError(f"{function_identifier(api.name)}() got an unexpected keyword argument "
                                f"'{name}'. Accepted parameters: {accepted}")
    values: dict[str, Any] = {}
    for name, bound in known.items():
        value = arguments.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if bound.param.required:
                raise ApiInputError(f"Missing required parameter: {name}")
            continue
        values[bound.param.name] = _coerce(bound.param, name, value)
    return values


def _where(api: BoundApi, values: dict[str, Any]) -> tuple[str, list[Any]]:
    clauses, bindings = [], []
    for param in api.archetype.params:
        if param.column is None or param.name not in values:
            continue
        value = values[param.name]
        if param.match == "like":
            clauses.append(f"{param.column} LIKE ?")
            bindings.append(f"%{value}%")
        elif param.match == "gte":
            clauses.append(f"{param.column} >= ?")
            bindings.append(value)
        elif param.match == "lte":
            clauses.append(f"{param.column} <= ?")
            bindings.append(value)
        elif isinstance(value, str):
            clauses.append(f"{param.column} = ? COLLATE NOCASE")
            bindings.append(value)
        else:
            clauses.append(f"{param.column} = ?")
            bindings.append(value)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", bindings


def _describe_filters(api: BoundApi, values: dict[str, Any]) -> str:
    shown = [f"{api.bound_name(p.name)}='{values[p.name]}'" for p in api.archetype.params if p.name in values]
    return ", ".join(shown)


def _run_get(conn: sqlite3.Connection, api: BoundApi, values: dict[str, Any]) -> Any:
    arch = api.archetype
    extra = [c.parent_key for c in arch.children if c.parent_key not in arch.fields]
    where, bindings = _where(api, values)
    row = conn.execute(f"SELECT {', '.join(arch.fields + tuple(extra))} FROM {arch.source}{where} LIMIT 1",
                       bindings).fetchone()
    if row is None:
        return {"message": f"{arch.not_found} for {_describe_filters(api, values)}"}
    result = {name: row[name] for name in arch.fields}
    for child in arch.children:
        rows = conn.execute(f"SELECT {', '.join(child.fields)} FROM {child.source} WHERE {child.key} = ? "
                            f"ORDER BY {child.order}", (row[child.parent_key],)).fetchall()
        result[child.name] = [dict(r) for r in rows]
    return result


def _run_list(conn: sqlite3.Connection, api: BoundApi, values: dict[str, Any]) -> Any:
    arch = api.archetype
    limit = values.get(arch.limit_param, arch.default_limit) if arch.limit_param else arch.default_limit
    limit_name = api.bound_name(arch.limit_param) if arch.limit_param else "limit"
    if not isinstance(limit, int) or not 1 <= limit <= arch.max_limit:
        raise ApiInputError(f"Invalid value for '{limit_name}': must be an integer between 1 and {arch.max_limit}")
    page = values.get("page", 1)
    if not isinstance(page, int) or page < 1:
        raise ApiInputError("Invalid value for 'page': must be a positive integer")
    where, bindings = _where(api, values)
    total = conn.execute(f"SELECT COUNT(*) FROM {arch.source}{where}", bindings).fetchone()[0]
    rows = conn.execute(
        f"SELECT {', '.join(arch.fields)} FROM {arch.source}{where} ORDER BY {', '.join(arch.order)} "
        f"LIMIT ? OFFSET ?", [*bindings, limit, (page - 1) * limit]).fetchall()
    response: dict[str, Any] = {"total": total}
    if arch.paginate:
        response["page"] = page
    response["results"] = [dict(r) for r in rows]
    if total == 0:
        response["message"] = f"{arch.not_found} for {_describe_filters(api, values)}"
    return response


def execute(conn: sqlite3.Connection, api: BoundApi, arguments: dict[str, Any]) -> Observation:
    """Run `api` with `arguments` (documented names). Bad input gives a BAD_INPUT observation."""
    try:
        values = validate_arguments(api, arguments)
        kind = api.archetype.kind
        if kind == "get":
            response = _run_get(conn, api, values)
        elif kind == "list":
            response = _run_list(conn, api, values)
        else:
            response = api.archetype.function(conn, values)
    except ApiInputError as error:
        return Observation(error="", response={"message": str(error)}, status=Status.BAD_INPUT)
    return Observation(error="", response=response, status=Status.OK)


def canonical_arguments(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments, sort_keys=True, ensure_ascii=False, default=str)


def fails_first_attempt(seed: int, api: BoundApi, arguments: dict[str, Any]) -> bool:
    """Whether an unreliable API fails the first attempt of this exact call (about one call in two)."""
    text = f"{seed}|{api.tool}|{api.name}|{canonical_arguments(arguments)}"
    return hashlib.sha256(text.encode("utf-8")).digest()[0] % 2 == 0
