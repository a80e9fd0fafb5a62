"""`toolbench-eval inspect`: per-group size of a benchmark, prompt lengths included.

Usage::

    toolbench-eval inspect QUERY_FILE_OR_ROOT [--groups G [G ...]] [--tools-dir DIR]
                           [--tokenizer default|none|PATH] [--upstream-quirks] [--json]

- `QUERY_FILE_OR_ROOT`: one query file (one group, named by its file stem; no id filtering), a
  benchmark folder in ToolBench layout (ids in `test_query_ids/` filter the queries), a StableToolBench
  checkout (its `solvable_queries/`), or `localtoolbench`.
- `--groups`: groups to show for a folder (default: the standard six that are present).
- `--tokenizer`: `default` (SmolLM2-135M-Instruct, the default model), `none` (skip token counts), a
  Hugging Face tokenizer folder or a `.gguf` file. Loaded offline.
- `--json`: print `{"tokenizer", "prompt", "groups": [{group, queries, tools, apis_per_query_mean,
  apis_per_query_max, relevant_apis_per_query_mean, prompt_tokens_median, prompt_tokens_max}, ...]}`;
  the last entry (`"group": "all"`) pools every query shown.

The prompt counted is the one ToolLLaMA sees at its first step: the system message (tool list, with
the `process_system_message` format hint and the function schemas) and the user message, rendered
`System: ...\\nUser: ...\\nAssistant:\\n`. Its length is what Attention Buckets acts on.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from reasoning.eval_protocol import DEFAULT_PROTOCOL, PROTOCOLS, resolve_protocol
from reasoning.prompts import (
    build_system_message,
    build_user_message,
    process_system_message,
    render_toolllama_prompt,
)
from toolbench_eval.benchmark.loader import load_benchmark, load_file_group
from toolbench_eval.benchmark.model import Group, Query
from toolbench_eval.benchmark.naming import standardize
from toolbench_eval.benchmark.schemas import build_functions, tool_descriptions
from toolbench_eval.errors import UserError

PromptRenderer = Callable[[Query, list[dict], list[tuple[str, str]]], str]
_BATCH = 32
# StableToolBench's longest first prompt is about 38,000 characters. The loader bounds each query's text,
# but tool files and many small APIs can still add up; tokenizing megabytes takes minutes and gigabytes.
MAX_PROMPT_CHARS = 2_000_000


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="per-group summary of a benchmark: queries, tools, APIs per query, prompt tokens",
        description="Per-group summary of a benchmark: queries, tools, APIs per query, prompt tokens.",
    )
    parser.add_argument(
        "source", metavar="QUERY_FILE_OR_ROOT", help="a query file, a benchmark folder or 'localtoolbench'"
    )
    parser.add_argument(
        "--groups", nargs="+", metavar="G", help="groups to show (default: the standard six present)"
    )
    parser.add_argument("--tools-dir", metavar="DIR", help="toolenv/tools folder with tool JSON files")
    parser.add_argument(
        "--tokenizer",
        default="default",
        metavar="SPEC",
        help="'default' (SmolLM2-135M-Instruct), 'none', a tokenizer folder or a .gguf file",
    )
    parser.add_argument(
        "--protocol", choices=sorted(PROTOCOLS), default=DEFAULT_PROTOCOL,
        help="whose schema rules the counted prompts use (default stabletoolbench, as `run`); docs/protocol.md")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def prompt_renderer() -> tuple[PromptRenderer, str]:
    """How a query's first prompt is rendered (`reasoning.prompts`), and a note saying which prompt that is."""

    def toolllama(query: Query, functions: list[dict], descriptions: list[tuple[str, str]]) -> str:
        system = process_system_message(build_system_message(descriptions), functions)
        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": build_user_message(query.query)},
        ]
        return render_toolllama_prompt(messages)

    return toolllama, "ToolLLaMA first-step prompt: System (process_system_message) + User + 'Assistant:\\n'"


@dataclass
class GroupSummary:
    group: str
    queries: int
    tools: int
    apis_per_query_mean: float
    apis_per_query_max: int
    relevant_apis_per_query_mean: float
    prompt_tokens_median: float | None
    prompt_tokens_max: int | None


def _summarize(name: str, queries: list[Query], token_counts: list[int] | None) -> GroupSummary:
    api_counts = [len(q.api_list) for q in queries] or [0]
    tools = {(a.category_name, standardize(a.tool_name)) for q in queries for a in q.api_list}
    return GroupSummary(
        group=name,
        queries=len(queries),
        tools=len(tools),
        apis_per_query_mean=round(statistics.fmean(api_counts), 2),
        apis_per_query_max=max(api_counts),
        relevant_apis_per_query_mean=round(
            statistics.fmean([len(q.relevant_apis) for q in queries] or [0]), 2
        ),
        prompt_tokens_median=statistics.median(token_counts) if token_counts else None,
        prompt_tokens_max=max(token_counts) if token_counts else None,
    )


def _bounded(prompt: str, query: Query) -> str:
    """The prompt, unless it is too long to tokenize in reasonable time and memory."""
    if len(prompt) > MAX_PROMPT_CHARS:
        raise UserError(
            f"group {query.group}: query_id {query.query_id}: its first prompt is {len(prompt):,} characters, "
            f"more than the {MAX_PROMPT_CHARS:,} inspect tokenizes (real ToolBench prompts stay under 40,000); "
            "give the query fewer APIs or shorter tool documentation, or pass --tokenizer none to skip "
            "token counts"
        )
    return prompt


def count_prompt_tokens(
    groups: dict[str, Group], tokenizer, render: PromptRenderer, *, upstream_quirks: bool = False
):
    """Prompt token counts per group, in query order (one progress bar over all queries)."""
    prompts = {
        name: [
            _bounded(
                render(
                    q,
                    build_functions(q, g.tools, upstream_quirks=upstream_quirks),
                    tool_descriptions(q, g.tools),
                ),
                q,
            )
            for q in g.queries
        ]
        for name, g in groups.items()
    }
    counts: dict[str, list[int]] = {}
    total = sum(len(p) for p in prompts.values())
    with tqdm(total=total, desc="tokenizing prompts", unit="prompt", disable=None, leave=False) as bar:
        for name, texts in prompts.items():
            counts[name] = []
            for start in range(0, len(texts), _BATCH):
                batch = texts[start : start + _BATCH]
                counts[name] += [len(ids) for ids in tokenizer(batch)["input_ids"]]
                bar.update(len(batch))
    return counts


def inspect_groups(
    groups: dict[str, Group], tokenizer=None, *, upstream_quirks: bool = False
) -> tuple[list[GroupSummary], str]:
    """One summary per group plus an `all` row, and the note on which prompt was counted."""
    render, note = prompt_renderer()
    counts = (
        count_prompt_tokens(groups, tokenizer, render, upstream_quirks=upstream_quirks) if tokenizer else None
    )
    rows = [_summarize(name, list(g.queries), counts[name] if counts else None) for name, g in groups.items()]
    pooled = [q for g in groups.values() for q in g.queries]
    rows.append(_summarize("all", pooled, [c for name in groups for c in counts[name]] if counts else None))
    return rows, note


def format_table(rows: list[GroupSummary]) -> str:
    """A plain-text table, one line per group."""
    header = [
        "group",
        "queries",
        "tools",
        "APIs/q mean",
        "APIs/q max",
        "relevant/q",
        "tokens median",
        "tokens max",
    ]

    def cell(value) -> str:
        if value is None:
            return "-"
        return f"{value:g}" if isinstance(value, float) else str(value)

    lines = [[cell(v) for v in asdict(row).values()] for row in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    render = [
        "  ".join(text.ljust(w) if i == 0 else text.rjust(w) for i, (text, w) in enumerate(zip(line, widths)))
        for line in [header, *lines]
    ]
    return "\n".join([render[0], "  ".join("-" * w for w in widths), *render[1:]])


def _load(args) -> dict[str, Group]:
    path = Path(args.source)
    if path.is_file():
        if args.groups:
            raise UserError(f"--groups applies to a benchmark folder; {path} is a single query file")
        group = load_file_group(path, tools_dir=args.tools_dir)
        return {group.name: group}
    return load_benchmark(args.source, args.groups, tools_dir=args.tools_dir)


def run(args) -> int:
    groups = _load(args)
    tokenizer = None
    if args.tokenizer != "none":
        from toolbench_eval.tokenizers import load_tokenizer

        tokenizer = load_tokenizer(args.tokenizer)
    rows, note = inspect_groups(groups, tokenizer, upstream_quirks=resolve_protocol(args.protocol).schema_quirks)
    if args.json:
        print(
            json.dumps(
                {"tokenizer": args.tokenizer, "prompt": note, "groups": [asdict(r) for r in rows]}, indent=2
            )
        )
    else:
        print(format_table(rows))
        print(f"tokenizer: {args.tokenizer}; prompt: {note}")
    return 0
