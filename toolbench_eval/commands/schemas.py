"""`toolbench-eval schemas`: the exact function schemas each query of a query file gets.

Usage::

    toolbench-eval schemas QUERY_FILE [--tools-dir DIR] [--upstream-quirks] [--json]

- `QUERY_FILE`: a ToolBench query file (`test_instruction/<group>.json`, a JSON list; `.jsonl` works
  too). Every query in it is listed; `test_query_ids` filtering is not applied.
- `--tools-dir DIR`: tool documentation (`toolenv/tools`); by default `toolenv/tools` of the benchmark
  root when QUERY_FILE sits in its `test_instruction/` folder, else the queries' `api_list` entries.
- `--upstream-quirks`: StableToolBench's current form (`"required": [""]`, `"optional": [""]`,
  optional parameters dropped from APIs without required ones, `null` defaults as `example_value`).
- `--json`: print a JSON list `[{"query_id": "<id>", "functions": [<bare function dicts>, ..., Finish]}]`
  (query ids as strings, in file order). Without it, a short summary per query.

Exit status 0; 2 for bad input (the message names the file, the entry and the field).
"""

from __future__ import annotations

import json

from reasoning.eval_protocol import DEFAULT_PROTOCOL, PROTOCOLS, resolve_protocol
from toolbench_eval.benchmark.loader import load_file_group
from toolbench_eval.benchmark.schemas import build_functions


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "schemas",
        help="print the function schemas (Finish included) of every query in a query file",
        description="Print the exact function schemas (Finish included) of every query in a query file.",
    )
    parser.add_argument("query_file", metavar="QUERY_FILE", help="a test_instruction/<group>.json file")
    parser.add_argument("--tools-dir", metavar="DIR", help="toolenv/tools folder with tool JSON files")
    parser.add_argument(
        "--protocol", choices=sorted(PROTOCOLS), default=DEFAULT_PROTOCOL,
        help="whose schema rules: stabletoolbench (default, as `run`: required: [\"\", ...], optional-only APIs "
             "without parameters) or toolbench-eval (clean lists); docs/protocol.md")
    parser.add_argument("--json", action="store_true", help="print JSON: [{query_id, functions}]")
    parser.set_defaults(func=run)


def schema_listing(query_file, *, tools_dir=None, upstream_quirks: bool = False) -> list[dict]:
    """`[{"query_id", "functions"}]` for every query of `query_file`, as `schemas --json` prints it."""
    group = load_file_group(query_file, tools_dir=tools_dir)
    return [
        {
            "query_id": q.query_id,
            "functions": build_functions(q, group.tools, upstream_quirks=upstream_quirks),
        }
        for q in group.queries
    ]


def _summary(listing: list[dict]) -> str:
    lines = []
    for item in listing:
        names = [f["name"] for f in item["functions"]]
        shown = ", ".join(names[:4]) + (f", ... (+{len(names) - 4})" if len(names) > 4 else "")
        lines.append(f"{item['query_id']:>8}  {len(names):>3} functions  {shown}")
    total = sum(len(item["functions"]) for item in listing)
    lines.append(f"{len(listing)} queries, {total} functions (Finish included); --json prints the schemas")
    return "\n".join(lines)


def run(args) -> int:
    quirks = resolve_protocol(args.protocol).schema_quirks
    listing = schema_listing(args.query_file, tools_dir=args.tools_dir, upstream_quirks=quirks)
    # Everything is built before anything is printed: a bad entry never leaves half an output.
    text = json.dumps(listing, indent=2, ensure_ascii=False) if args.json else _summary(listing)
    print(text)
    return 0
