"""Load benchmarks in ToolBench layout into typed objects (`Query`, `Api`, `Tool`, `Group`).

Layout (ToolBench `data/` and StableToolBench `solvable_queries/` alike)::

    <root>/test_instruction/<group>.json     a JSON list of queries (or JSON Lines, `.jsonl`)
    <root>/test_query_ids/<group>.json       optional: {"<query_id>": int}; its keys select the queries
    <root>/toolenv/tools/<Category>/<tool>.json   optional tool documentation (file stem = standardized name)

Query files (a JSON list, or JSON Lines) are parsed with the standard library, so `Query.raw` is the entry
exactly as written: key order, ints and floats, absent keys. (Arrow, under `datasets`, would give every row
one schema, fill absent keys with nulls and turn 1 beside 2.5 into 1.0.) Tool files and id files are
single JSON objects.

Without tool files (the StableToolBench test sets ship none), each tool is built from the
queries' `api_list`, which carries names, descriptions and parameters; the loader says so once.
Upstream skips a query whose tools are missing; we keep every query and report what was missing.

A query file must hold at least one query, and no entry may carry absurd amounts of text (one text
field over `MAX_TEXT_LENGTH` characters, or more than `MAX_ENTRY_TEXT` in all): both are `UserError`s
raised right after parsing, because a 50 MB query would cost minutes and gigabytes once a prompt holding it
is tokenized.

>>> from pathlib import Path
>>> root = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "toolbench_min"
>>> group = load_group(root, "G1_instruction")
>>> [q.query_id for q in group.queries]
['101', '102']
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from toolbench_eval.benchmark.model import GROUPS, Api, GroundTruth, Group, Parameter, Query, Tool
from toolbench_eval.benchmark.naming import change_name, standardize
from toolbench_eval.errors import UserError, located
from toolbench_eval.paths import DATA_DIR

log = logging.getLogger(__name__)

QUERIES_DIR = "test_instruction"
QUERY_IDS_DIR = "test_query_ids"
TOOLS_SUBDIR = Path("toolenv") / "tools"
STB_SUBDIR = "solvable_queries"
LOCALTOOLBENCH = "localtoolbench"

# Real ToolBench text is far shorter: StableToolBench's longest query is about 1,000 characters, its longest
# API description about 8,000, and its largest entry about 40,000 characters of text in all. These limits
# only stop broken or hostile files, whose text every prompt (and every tokenizer call) would carry.
MAX_TEXT_LENGTH = 100_000
MAX_ENTRY_TEXT = 1_000_000
_QUERY_FILE_SHAPE = (
    "a query file holds a JSON list of query objects (a .jsonl file: one object per line), each with "
    '"query_id", "query" and "api_list", e.g. [{"query_id": 1, "query": "...", "api_list": [...]}]'
)


# ---------------------------------------------------------------------------------------------------------
# Locating a benchmark


def resolve_benchmark_root(name_or_path: str | Path) -> Path:
    """The folder holding `test_instruction/`.

    `"localtoolbench"` names the bundled benchmark (`data/localtoolbench`); anything else is a path.
    A StableToolBench checkout (or its copy) is accepted as is: its files sit under `solvable_queries/`.
    """
    if str(name_or_path) == LOCALTOOLBENCH:
        candidate = DATA_DIR / LOCALTOOLBENCH
    else:
        candidate = Path(name_or_path).expanduser()
    if (candidate / QUERIES_DIR).is_dir():
        return candidate
    if (candidate / STB_SUBDIR / QUERIES_DIR).is_dir():
        return candidate / STB_SUBDIR
    if not candidate.exists():
        raise UserError(
            f"{candidate}: no such benchmark folder; pass a folder in ToolBench layout or '{LOCALTOOLBENCH}'"
        )
    raise UserError(
        f"{candidate}: not a benchmark root: expected a {QUERIES_DIR}/ folder (ToolBench layout) or "
        f"{STB_SUBDIR}/{QUERIES_DIR}/ (StableToolBench layout) inside it"
    )


def default_tools_dir(name_or_path: str | Path) -> Path | None:
    """`toolenv/tools` beside the queries (or at the StableToolBench checkout root), if there is one."""
    root = resolve_benchmark_root(name_or_path)
    for candidate in (root / TOOLS_SUBDIR, root.parent / TOOLS_SUBDIR if root.name == STB_SUBDIR else None):
        if candidate is not None and candidate.is_dir():
            return candidate
    return None


def available_groups(root: str | Path) -> list[str]:
    """Group names with a query file under `root`: the standard six first (in order), then others sorted."""
    folder = resolve_benchmark_root(root) / QUERIES_DIR
    present = {p.stem for p in folder.iterdir() if p.suffix in (".json", ".jsonl") and p.is_file()}
    return [g for g in GROUPS if g in present] + sorted(present - set(GROUPS))


# ---------------------------------------------------------------------------------------------------------
# Reading JSON files


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text (byte {error.start}); save it as UTF-8 JSON") from None


def _parse_json(path: Path, text: str, line_offset: int = 0) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(
            f"{path}: line {error.lineno + line_offset} column {error.colno}: malformed JSON: {error.msg}; "
            "fix the file (a JSON validator shows the spot)"
        ) from None


def _parse_records(path: Path, text: str) -> list[Any]:
    if path.suffix == ".jsonl":
        return [_parse_json(path, line, n) for n, line in enumerate(text.splitlines()) if line.strip()]
    records = _parse_json(path, text)
    if not isinstance(records, list):
        raise UserError(
            f"{path}: expected a JSON list of query objects, found a JSON {type(records).__name__}; "
            "a query file holds `[{...}, {...}]`"
        )
    return records


# ---------------------------------------------------------------------------------------------------------
# Validating entries


@dataclass(frozen=True)
class _Where:
    """Where an entry sits, for error messages."""

    path: Path
    entry: str | None = None

    def error(self, field_name: str | None, message: str) -> UserError:
        return located(self.path, message, entry=self.entry, field=field_name)


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _too_long(length: int) -> str:
    return (
        f"{length:,} characters; one text field may hold at most {MAX_TEXT_LENGTH:,} (real ToolBench queries "
        "stay under 3,000 characters and API descriptions under 10,000); shorten it"
    )


def _text(obj: dict, key: str, where: _Where, prefix: str, *, required: bool, nonempty: bool = False) -> str:
    field_name = f"{prefix}{key}"
    if key not in obj:
        if required:
            raise where.error(field_name, f"missing; every entry needs a {key!r} string")
        return ""
    value = obj[key]
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise where.error(field_name, f"must be a string, got {_type_name(value)} {value!r:.60}")
    if len(value) > MAX_TEXT_LENGTH:
        raise where.error(field_name, _too_long(len(value)))
    if nonempty and not value.strip():
        raise where.error(field_name, "must not be empty")
    return value


def _list(obj: dict, key: str, where: _Where, prefix: str, *, required: bool) -> list:
    field_name = f"{prefix}{key}"
    if key not in obj:
        if required:
            raise where.error(field_name, "missing; it must be a JSON list")
        return []
    value = obj[key]
    if not isinstance(value, list):
        raise where.error(field_name, f"must be a JSON list, got {_type_name(value)} {value!r:.60}")
    return value


def _object(value: Any, where: _Where, field_name: str) -> dict:
    if not isinstance(value, dict):
        raise where.error(field_name, f"must be a JSON object, got {_type_name(value)} {value!r:.60}")
    return value


def _parameters(obj: dict, key: str, where: _Where, prefix: str) -> tuple[Parameter, ...]:
    parameters = []
    for i, item in enumerate(_list(obj, key, where, prefix, required=False)):
        at = f"{prefix}{key}[{i}]"
        spec = _object(item, where, at)
        parameters.append(
            Parameter(
                name=_text(spec, "name", where, f"{at}.", required=True, nonempty=True),
                type=_text(spec, "type", where, f"{at}.", required=True),
                description=_text(spec, "description", where, f"{at}.", required=False),
                default=spec.get("default"),
            )
        )
    return tuple(parameters)


def _api(item: Any, where: _Where, prefix: str, *, category: str | None = None, tool_name: str = "") -> Api:
    """An entry of a query's `api_list` (it names its category and tool, and has `api_name` and
    `api_description`), or of a tool file's, given `category` and `tool_name` (it has `name` and `description`)."""
    spec = _object(item, where, prefix.rstrip("."))
    name_key, description_key = ("api_name", "api_description") if category is None else ("name", "description")
    if category is None:
        category = _text(spec, "category_name", where, prefix, required=True, nonempty=True)
        tool_name = _text(spec, "tool_name", where, prefix, required=True, nonempty=True)
    return Api(
        category_name=category,
        tool_name=tool_name,
        api_name=_text(spec, name_key, where, prefix, required=True, nonempty=True),
        api_description=_text(spec, description_key, where, prefix, required=False),
        required_parameters=_parameters(spec, "required_parameters", where, prefix),
        optional_parameters=_parameters(spec, "optional_parameters", where, prefix),
        method=_text(spec, "method", where, prefix, required=False) or "GET",
        template_response=spec.get("template_response"),
    )


def _relevant_apis(raw: dict, where: _Where) -> tuple[tuple[str, str], ...]:
    pairs = []
    for i, pair in enumerate(_list(raw, "relevant APIs", where, "", required=False)):
        if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
            raise where.error(
                f"relevant APIs[{i}]", f"must be a [tool_name, api_name] pair of strings, got {pair!r:.80}"
            )
        pairs.append((pair[0], pair[1]))
    return tuple(pairs)


def _ground_truth(raw: dict, where: _Where) -> GroundTruth | None:
    if raw.get("ground_truth") is None:
        return None
    spec = _object(raw["ground_truth"], where, "ground_truth")
    facts = _list(spec, "facts", where, "ground_truth.", required=True)
    for i, fact in enumerate(facts):
        if not isinstance(fact, str):
            raise where.error(f"ground_truth.facts[{i}]", f"must be a string, got {_type_name(fact)}")
    plan = []
    for i, step in enumerate(_list(spec, "call_plan", where, "ground_truth.", required=False)):
        at = f"ground_truth.call_plan[{i}]."
        step = _object(step, where, at.rstrip("."))
        _text(step, "tool_name", where, at, required=True, nonempty=True)
        _text(step, "api_name", where, at, required=True, nonempty=True)
        _object(step.get("arguments", {}), where, f"{at}arguments")
        plan.append(dict(step))
    return GroundTruth(facts=tuple(facts), call_plan=tuple(plan))


def _query_id(raw: dict, where: _Where) -> str:
    if "query_id" not in raw:
        raise where.error("query_id", "missing; every query needs a query_id (an integer or a string)")
    value = raw["query_id"]
    if isinstance(value, bool) or not isinstance(value, (int, str)) or str(value).strip() == "":
        raise where.error(
            "query_id", f"must be an integer or a non-empty string, got {_type_name(value)} {value!r:.40}"
        )
    return str(value)


def parse_query(raw: Any, group: str, *, path: str | Path = "<query>", index: int = 0) -> Query:
    """One entry of a query file as a `Query`; `UserError` names the file, the entry and the field."""
    where = _Where(Path(path), f"#{index}")
    raw = _object(raw, where, None)
    query_id = _query_id(raw, where)
    where = _Where(Path(path), f"#{index} (query_id {query_id})")
    if "api_list" not in raw:
        raise where.error(
            "api_list",
            "missing; every query needs the list of its APIs (category_name, tool_name, api_name, ...)",
        )
    api_items = _list(raw, "api_list", where, "", required=True)
    return Query(
        query_id=query_id,
        query=_text(raw, "query", where, "", required=True),
        group=group,
        api_list=tuple(_api(item, where, f"api_list[{i}].") for i, item in enumerate(api_items)),
        relevant_apis=_relevant_apis(raw, where),
        ground_truth=_ground_truth(raw, where),
        raw=raw,
    )


def _entry_label(index: int, raw: Any) -> str:
    """`#3 (query_id 17)` when the entry has a printable id, else `#3` (the id is validated later)."""
    query_id = raw.get("query_id") if isinstance(raw, dict) else None
    if isinstance(query_id, (int, str)) and not isinstance(query_id, bool) and 0 < len(str(query_id)) <= 80:
        return f"#{index} (query_id {query_id})"
    return f"#{index}"


def _field_name(parent: str, key: Any) -> str:
    """`parent.key` or `parent[3]`; a key too long to print is cut (it may be the over-long text itself)."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    key = key if len(key) <= 60 else f"{key[:40]}... (a key of {len(key):,} characters)"
    return f"{parent}.{key}" if parent else key


def _string_lengths(value: Any, name: str) -> Iterable[tuple[str, int]]:
    """(field name, length) of every string inside a parsed JSON value, keys included.

    Iterative: a JSON file may nest deeper than Python's recursion limit allows.
    """
    stack = [(name, value)]
    while stack:
        name, value = stack.pop()
        if isinstance(value, str):
            yield name, len(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                child = _field_name(name, key)
                yield child, len(key)
                stack.append((child, item))
        elif isinstance(value, list):
            stack.extend((_field_name(name, i), item) for i, item in enumerate(value))


def _check_text_sizes(path: Path, index: int, raw: Any) -> None:
    """Refuse an entry with one over-long text field or too much text in all (see `MAX_TEXT_LENGTH`)."""
    if not isinstance(raw, dict):
        return  # parse_query reports the shape
    where = _Where(path, _entry_label(index, raw))
    per_field: dict[str, int] = {}
    for key, value in raw.items():
        top = _field_name("", key)
        per_field[top] = 0
        for name, length in _string_lengths({key: value}, ""):
            if length > MAX_TEXT_LENGTH:
                raise where.error(name, _too_long(length))
            per_field[top] += length
    total = sum(per_field.values())
    if total > MAX_ENTRY_TEXT:
        biggest = max(per_field, key=per_field.__getitem__)
        raise where.error(
            biggest,
            f"{per_field[biggest]:,} characters of text ({total:,} in the whole entry); one query may hold at "
            f"most {MAX_ENTRY_TEXT:,} (real ToolBench queries hold under 40,000); list fewer APIs or shorten "
            "their documentation",
        )


def _query_records(path: Path) -> list[Any]:
    """The entries of a query file, checked for emptiness and size."""
    records = _parse_records(path, _read_text(path))
    if not records:
        raise UserError(f"{path}: holds no queries; {_QUERY_FILE_SHAPE}")
    for i, raw in enumerate(records):
        _check_text_sizes(path, i, raw)
    return records


def load_query_file(path: str | Path, group: str | None = None) -> list[Query]:
    """All queries of one query file (no id filtering); the group name defaults to the file stem.

    An empty file, an over-long text and a duplicate query id are errors (answer files are named by
    query id).
    """
    path = Path(path)
    group = group or path.stem
    queries = [parse_query(raw, group, path=path, index=i) for i, raw in enumerate(_query_records(path))]
    seen: dict[str, int] = {}
    for i, query in enumerate(queries):
        if query.query_id in seen:
            raise located(
                path,
                f"query_id {query.query_id} also used by entry #{seen[query.query_id]}; ids must be unique",
                entry=f"#{i}",
                field="query_id",
            )
        seen[query.query_id] = i
    return queries


def load_query_ids(path: str | Path) -> list[str]:
    """The ids of a `test_query_ids/<group>.json` file: its dict's keys (a plain list is accepted too)."""
    path = Path(path)
    data = _parse_json(path, _read_text(path))
    ids = list(data) if isinstance(data, (dict, list)) else None
    if ids is None or not all(isinstance(i, (str, int)) and not isinstance(i, bool) for i in ids):
        raise UserError(f'{path}: expected a JSON object {{"<query_id>": 0, ...}} (or a list of ids)')
    return [str(i) for i in ids]


# ---------------------------------------------------------------------------------------------------------
# Tool documentation


def load_tool_file(path: str | Path, category: str | None = None) -> Tool:
    """One `toolenv/tools/<Category>/<tool>.json`; the category defaults to the parent folder's name."""
    path = Path(path)
    category = category or path.parent.name
    where = _Where(path)
    spec = _object(_parse_json(path, _read_text(path)), where, None)
    tool_name = _text(spec, "tool_name", where, "", required=True, nonempty=True)
    apis = [_api(item, where, f"api_list[{i}].", category=category, tool_name=tool_name)
            for i, item in enumerate(_list(spec, "api_list", where, "", required=True))]
    return Tool(
        category_name=category,
        tool_name=tool_name,
        standardized_name=path.stem,
        tool_description=_text(spec, "tool_description", where, "", required=False),
        title=_text(spec, "title", where, "", required=False),
        apis=tuple(apis),
        source=str(path),
    )


def load_tools(tools_dir: str | Path) -> dict[tuple[str, str], Tool]:
    """Every tool file under `tools_dir`, keyed by (category folder, standardized tool name = file stem)."""
    tools_dir = Path(tools_dir)
    if not tools_dir.is_dir():
        raise UserError(f"{tools_dir}: no such tools folder (expected toolenv/tools/<Category>/<tool>.json)")
    files = sorted(tools_dir.glob("*/*.json"))
    return {
        (f.parent.name, f.stem): load_tool_file(f)
        for f in tqdm(files, desc="tool files", unit="file", disable=len(files) < 500, leave=False)
    }


def tools_from_api_lists(queries: Iterable[Query]) -> dict[tuple[str, str], Tool]:
    """Tool documents rebuilt from the queries' `api_list` entries (first description of each API wins)."""
    apis: dict[tuple[str, str], dict[str, Api]] = defaultdict(dict)
    names: dict[tuple[str, str], str] = {}
    for query in queries:
        for api in query.api_list:
            key = (api.category_name, standardize(api.tool_name))
            names.setdefault(key, api.tool_name)
            apis[key].setdefault(api.api_name, api)
    return {
        key: Tool(
            category_name=key[0],
            tool_name=names[key],
            standardized_name=key[1],
            apis=tuple(apis[key].values()),
        )
        for key in apis
    }


@dataclass
class ToolCoverage:
    """Which tool documents a load found, for the one-line report."""

    tools_dir: Path | None
    queries: int = 0
    from_files: set[tuple[str, str]] = field(default_factory=set)
    from_api_list: set[tuple[str, str]] = field(default_factory=set)
    api_count: set[tuple[str, str, str]] = field(default_factory=set)
    missing_tools: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    missing_apis: dict[tuple[str, str, str], set[str]] = field(default_factory=lambda: defaultdict(set))

    def merge(self, other: ToolCoverage) -> None:
        self.queries += other.queries
        self.from_files |= other.from_files
        self.from_api_list |= other.from_api_list
        self.api_count |= other.api_count
        for key, ids in other.missing_tools.items():
            self.missing_tools[key] |= ids
        for key, ids in other.missing_apis.items():
            self.missing_apis[key] |= ids

    def report(self, what: str) -> None:
        """Log one message (never one per query)."""
        if self.tools_dir is None:
            log.warning(
                "%s: no tool documentation folder (toolenv/tools); built %d tools / %d APIs from the "
                "api_list of %d queries (pass --tools-dir to use tool JSON files)",
                what,
                len(self.from_api_list),
                len(self.api_count),
                self.queries,
            )
            return
        _warn_missing(what, f"tools have no file in {self.tools_dir}", self.missing_tools, "{}/{}")
        _warn_missing(what, "APIs are missing from their tool files", self.missing_apis, "{}/{}: {}")


def _warn_missing(what: str, problem: str, missing: dict[tuple[str, ...], set[str]], spelling: str) -> None:
    """One warning for the tools or APIs without documentation: the first eight (`spelling` of the key), and
    how many queries use them."""
    if not missing:
        return
    names = ", ".join(spelling.format(*key) for key in sorted(missing)[:8])
    more = "" if len(missing) <= 8 else f" and {len(missing) - 8} more"
    log.warning("%s: %d %s (%s%s), used by %d queries; their api_list entries document them",
                what, len(missing), problem, names, more, len(set().union(*missing.values())))


class _ToolFiles:
    """Reads each needed tool file once per load (a load of all groups shares it)."""

    def __init__(self, tools_dir: Path):
        self.tools_dir = tools_dir
        self._cache: dict[tuple[str, str], Tool | None] = {}

    def get(self, category: str, standard_name: str) -> Tool | None:
        key = (category, standard_name)
        if key not in self._cache:
            path = self.tools_dir / category / f"{standard_name}.json"
            if not path.is_file():  # upstream's white list ignores the category; so do we, as a fallback
                path = next(iter(sorted(self.tools_dir.glob(f"*/{standard_name}.json"))), path)
            self._cache[key] = load_tool_file(path) if path.is_file() else None
        return self._cache[key]


def _group_tools(
    queries: list[Query], files: _ToolFiles | None
) -> tuple[dict[tuple[str, str], Tool], ToolCoverage]:
    coverage = ToolCoverage(files.tools_dir if files else None, queries=len(queries))
    rebuilt = tools_from_api_lists(queries)
    tools: dict[tuple[str, str], Tool] = {}
    for query in queries:
        for api in query.api_list:
            key = (api.category_name, standardize(api.tool_name))
            coverage.api_count.add((*key, api.api_name))
            tool = files.get(*key) if files else None
            if tool is None:
                tools.setdefault(key, rebuilt[key])
                coverage.from_api_list.add(key)
                if files:
                    coverage.missing_tools[key].add(query.query_id)
                continue
            tools.setdefault(key, tool)
            coverage.from_files.add(key)
            wanted = change_name(standardize(api.api_name))
            if not any(change_name(standardize(a.api_name)) == wanted for a in tool.apis):
                coverage.missing_apis[(*key, api.api_name)].add(query.query_id)
    return tools, coverage


# ---------------------------------------------------------------------------------------------------------
# Groups and benchmarks


def _query_file(root: Path, group: str) -> Path | None:
    for suffix in (".json", ".jsonl"):
        path = root / QUERIES_DIR / f"{group}{suffix}"
        if path.is_file():
            return path
    return None


def _filter_by_ids(queries: list[Query], ids_file: Path, query_file: Path) -> list[Query]:
    wanted = load_query_ids(ids_file)
    wanted_set = set(wanted)
    kept = [q for q in queries if q.query_id in wanted_set]
    if not kept:  # the group would run nothing and the run would still "succeed"
        raise UserError(
            f"{ids_file}: selects no query: none of its {len(wanted)} ids is a query_id of {query_file} "
            f"({len(queries)} queries); list ids of that file (keys of a JSON object) or delete the id file "
            "to keep every query"
        )
    dropped = len(queries) - len(kept)
    unknown = wanted_set - {q.query_id for q in queries}
    if dropped:
        log.info(
            "%s: %d of %d queries are not listed in %s and are left out",
            ids_file.stem,
            dropped,
            len(queries),
            ids_file,
        )
    if unknown:
        log.warning(
            "%s: %d ids in %s have no query in the query file (e.g. %s)",
            ids_file.stem,
            len(unknown),
            ids_file,
            ", ".join(sorted(unknown)[:5]),
        )
    return kept


def _load_group(root: Path, group: str, files: _ToolFiles | None) -> tuple[Group, ToolCoverage]:
    path = _query_file(root, group)
    if path is None:
        raise UserError(
            f"{root / QUERIES_DIR}: no query file for group {group!r}; groups here: "
            f"{', '.join(available_groups(root)) or 'none'}"
        )
    queries = load_query_file(path, group)
    ids_file = root / QUERY_IDS_DIR / f"{group}.json"
    if ids_file.is_file():
        queries = _filter_by_ids(queries, ids_file, path)
    tools, coverage = _group_tools(queries, files)
    return Group(name=group, queries=tuple(queries), tools=tools), coverage


def _tool_files(given: str | Path, tools_dir: str | Path | None) -> _ToolFiles | None:
    """The tool files of `tools_dir`, or else of the benchmark `given` (`default_tools_dir`), or None."""
    if tools_dir is not None:
        tools_dir = Path(tools_dir)
        if not tools_dir.is_dir():
            raise UserError(
                f"{tools_dir}: no such tools folder (expected toolenv/tools/<Category>/<tool>.json)"
            )
        return _ToolFiles(tools_dir)
    found = default_tools_dir(given)
    return _ToolFiles(found) if found else None


def load_group(root: str | Path, group: str, *, tools_dir: str | Path | None = None) -> Group:
    """One group of a benchmark root (see `resolve_benchmark_root`), filtered by its id file if present.

    `tools_dir` defaults to `<root>/toolenv/tools` when that exists; otherwise tools are rebuilt from
    the queries' `api_list` (reported once).
    """
    resolved = resolve_benchmark_root(root)
    loaded, coverage = _load_group(resolved, group, _tool_files(root, tools_dir))
    coverage.report(group)
    return loaded


def load_file_group(
    path: str | Path, group: str | None = None, *, tools_dir: str | Path | None = None
) -> Group:
    """A single query file as a `Group` (no id filtering), with its tools.

    `tools_dir` defaults to `toolenv/tools` of the benchmark root when the file sits in its
    `test_instruction/` folder.
    """
    path = Path(path)
    queries = load_query_file(path, group)
    in_benchmark = path.parent.name == QUERIES_DIR
    files = _tool_files(path.parent.parent, tools_dir) if tools_dir is not None or in_benchmark else None
    tools, coverage = _group_tools(queries, files)
    coverage.report(str(path))
    return Group(name=group or path.stem, queries=tuple(queries), tools=tools)


def load_benchmark(
    root: str | Path, groups: Iterable[str] | None = None, *, tools_dir: str | Path | None = None
) -> dict[str, Group]:
    """Several groups (default: those of the six standard groups present), tool files read once."""
    resolved = resolve_benchmark_root(root)
    present = available_groups(resolved)
    if groups is None:
        names = [g for g in GROUPS if g in present]
        if not names:
            raise UserError(
                f"{resolved / QUERIES_DIR}: none of the standard groups ({', '.join(GROUPS)}) is here; "
                f"name the groups to load (present: {', '.join(present) or 'none'})"
            )
    else:
        names = list(dict.fromkeys(groups))
        valid = list(dict.fromkeys([*GROUPS, *present]))
        for name in names:
            if name not in valid:
                raise UserError(f"unknown group {name!r}; valid groups: {', '.join(valid)}")
    files = _tool_files(root, tools_dir)
    total = ToolCoverage(files.tools_dir if files else None)
    loaded = {}
    for name in names:
        loaded[name], coverage = _load_group(resolved, name, files)
        total.merge(coverage)
    total.report(f"{resolved} ({len(names)} groups)")
    return loaded
