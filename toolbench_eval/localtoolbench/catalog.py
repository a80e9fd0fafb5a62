"""The shape of the LocalToolBench catalog: parameters, API archetypes, tools, categories.

An *archetype* is one kind of request over the database ("current weather for a city", "the N
cheapest flights on a route"): its SQL source, parameters, returned fields, and the noun phrases a
user would ask it with. A *tool* binds several archetypes under its own API names and parameter names,
the way many RapidAPI weather tools all offer "current weather" with different spellings. The data
itself is in `domains.py`; `execution.py` runs a bound API over the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

# Names ToolBench renames in function schemas (`change_name`); our parameters avoid them so that
# the documented name and the schema name are always the same.
RESERVED_NAMES = frozenset({"from", "class", "return", "false", "true", "id", "and"})


@dataclass(frozen=True)
class Param:
    """A parameter of an archetype.

    `column` is what it filters on (`match`: "eq" case-insensitive, "like" substring, "gte"/"lte");
    `resolve` = (archetype key, field) says that the value is an id a user names by something else,
    found by calling that archetype with the natural name and reading `field` from its first result.
    """

    name: str
    type: str  # STRING | NUMBER | BOOLEAN | ENUM, as in ToolBench tool files
    description: str
    default: Any = ""
    column: str | None = None
    match: str = "eq"
    required: bool = True
    resolve: tuple[str, str] | None = None
    resolve_optional: bool = False  # the id may be given directly as well (e.g. a ticker symbol)
    options: tuple[str, ...] = ()
    value_from: Callable[[dict], Any] | None = None  # derive the sampled value from a row
    entity: str | None = None  # shared entity type ("city", "country") for linking intents


@dataclass(frozen=True)
class Child:
    """A list attached to a `get` result (a movie's cast, a recipe's ingredients)."""

    name: str
    source: str
    key: str  # column of `source` equal to the parent's `parent_key`
    parent_key: str
    fields: tuple[str, ...]
    order: str


@dataclass(frozen=True)
class Ask:
    """A noun phrase asking for something this archetype answers, and the result fields it needs.

    Facts "name" read the field of a `get` result or of each of the first n rows of a list; "cast.0.name"
    reads a child list.
    """

    phrase: str
    facts: tuple[str, ...]
    n: tuple[int, ...] = (1,)  # how many list rows the phrase asks for ({n} in the phrase)


@dataclass(frozen=True)
class Archetype:
    key: str  # "<domain>.<name>", unique
    kind: str  # get | list | custom
    source: str  # table or view
    description: str
    params: tuple[Param, ...]
    fields: tuple[str, ...] = ()
    asks: tuple[Ask, ...] = ()
    order: tuple[str, ...] = ()  # ORDER BY terms for lists, e.g. ("price_usd", "flight_no")
    limit_param: str | None = None  # lists: the page-size parameter ("limit", "days")
    default_limit: int = 10
    max_limit: int = 50
    paginate: bool = False  # lists: also accept `page`
    children: tuple[Child, ...] = ()
    function: Callable[..., Any] | None = None  # custom: (conn, args) -> response
    sample: Callable[..., dict] | None = None  # custom: (conn, rng) -> parameter values
    not_found: str = "No results found"
    example_response: Any = None


@dataclass(frozen=True)
class Binding:
    """An archetype exposed by a tool under an API name, optionally with renamed parameters."""

    archetype: str
    name: str
    rename: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    unreliable: str | None = None  # "too_many_requests" | "server_error" | "timeout": fails some first attempts
    dead: bool = False  # always "API not working" (a broken API, kept as a distractor)


@dataclass(frozen=True)
class ToolDef:
    name: str  # original tool name, e.g. "WeatherNow"
    description: str
    bindings: tuple[Binding, ...]
    host: str = ""


@dataclass(frozen=True)
class CategoryDef:
    name: str  # ToolBench category directory name, e.g. "Health_and_Fitness"
    context: tuple[str, ...]  # short openers a user in this domain might start with
    tools: tuple[ToolDef, ...]


@dataclass(frozen=True)
class BoundParam:
    """A parameter as one tool documents it (tool-specific name)."""

    name: str
    param: Param


@dataclass(frozen=True)
class BoundApi:
    """One API of one tool: everything needed to document, call and ask about it."""

    category: str
    tool: str
    binding: Binding
    archetype: Archetype

    @property
    def name(self) -> str:
        return self.binding.name

    @property
    def description(self) -> str:
        return self.binding.description or self.archetype.description

    @cached_property
    def params(self) -> tuple[BoundParam, ...]:
        bound = [BoundParam(self.binding.rename.get(p.name, p.name), p) for p in self.archetype.params]
        if self.archetype.kind == "list":
            if self.archetype.limit_param:
                name = self.binding.rename.get(self.archetype.limit_param, self.archetype.limit_param)
                bound.append(BoundParam(name, Param(
                    self.archetype.limit_param, "NUMBER",
                    f"Max results (1-{self.archetype.max_limit})",
                    self.archetype.default_limit, required=False)))
            if self.archetype.paginate:
                bound.append(BoundParam("page", Param("page", "NUMBER", "Page number", 1,
                                                      required=False)))
        return tuple(bound)

    def bound_name(self, logical: str) -> str:
        return self.binding.rename.get(logical, logical)

    def logical_name(self, bound: str) -> str | None:
        for param in self.params:
            if param.name == bound:
                return param.param.name
        return None

    @property
    def key(self) -> tuple[str, str]:
        return (self.tool, self.name)


class Catalog:
    """All categories, tools and APIs, with lookups by original names."""

    def __init__(self, categories: tuple[CategoryDef, ...], archetypes: tuple[Archetype, ...]):
        self.categories = categories
        self.archetypes = {a.key: a for a in archetypes}
        if len(self.archetypes) != len(archetypes):
            raise ValueError("duplicate archetype keys")
        self.apis: dict[tuple[str, str], BoundApi] = {}
        self.tools: dict[str, ToolDef] = {}
        self.tool_category: dict[str, str] = {}
        for category in categories:
            for tool in category.tools:
                if tool.name in self.tools:
                    raise ValueError(f"duplicate tool {tool.name}")
                self.tools[tool.name] = tool
                self.tool_category[tool.name] = category.name
                for binding in tool.bindings:
                    api = BoundApi(category.name, tool.name, binding, self.archetypes[binding.archetype])
                    if api.key in self.apis:
                        raise ValueError(f"duplicate API {api.key}")
                    self.apis[api.key] = api
        self._validate()

    def _validate(self) -> None:
        for api in self.apis.values():
            names = [p.name for p in api.params]
            if len(set(names)) != len(names):
                raise ValueError(f"{api.key}: duplicate parameter names")
            if RESERVED_NAMES & set(names):
                raise ValueError(f"{api.key}: parameter named one of {sorted(RESERVED_NAMES)}")
            for param in api.archetype.params:
                if param.resolve and not api.binding.dead:
                    resolver = self.resolver_in_tool(api.tool, param.resolve[0])
                    if resolver is None:
                        raise ValueError(f"{api.key}: needs archetype {param.resolve[0]} in the same tool")

    def tool_apis(self, tool: str) -> list[BoundApi]:
        return [self.apis[(tool, b.name)] for b in self.tools[tool].bindings]

    def resolver_in_tool(self, tool: str, archetype_key: str) -> BoundApi | None:
        for api in self.tool_apis(tool):
            if api.archetype.key == archetype_key and not api.binding.dead:
                return api
        return None

    def category_tools(self, category: str) -> list[str]:
        for cat in self.categories:
            if cat.name == category:
                return [t.name for t in cat.tools]
        raise KeyError(category)

    def category(self, name: str) -> CategoryDef:
        for cat in self.categories:
            if cat.name == name:
                return cat
        raise KeyError(name)
