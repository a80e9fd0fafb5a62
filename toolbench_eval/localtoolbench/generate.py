"""Write the LocalToolBench world: tool files, test groups, the train split and expert trajectories.

    toolbench-eval localtoolbench generate [--seed 7] [--out data/localtoolbench]

Everything is a pure function of (code version, seed, scale): two runs write byte-identical files.
Layout written under `out`:

    world.json                           version, seed, scale, database digest, counts, splits
    README.md                            what the world is and how it is split
    toolenv/tools/<Category>/<tool>.json ToolBench tool documentation
    test_instruction/<group>.json        the six test groups (ToolBench query format + "ground_truth")
    test_query_ids/<group>.json          {"<query_id>": 0, ...}
    train/queries.json                   train split (same format, plus "group": G1 | G2 | G3)
    train/trajectories.jsonl             expert trajectories for the train split
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from tqdm import tqdm

from toolbench_eval.benchmark.model import GROUPS
from toolbench_eval.benchmark.naming import standardize
from toolbench_eval.localtoolbench import WORLD_VERSION
from toolbench_eval.localtoolbench.catalog import Catalog
from toolbench_eval.localtoolbench.database import connect, content_digest, ensure_database
from toolbench_eval.localtoolbench.domains import CATALOG, COLLECTIONS, HELD_OUT_CATEGORIES, HELD_OUT_TOOLS
from toolbench_eval.localtoolbench.queries import (
    INSTRUCTION_RULES,
    TRAIN_RULES,
    UNSEEN_RULES,
    QueryBuilder,
    SplitRules,
)

TEST_QUERIES_PER_GROUP = 60
TRAIN_QUERIES = {"G1": 950, "G2": 620, "G3": 480}
TEST_ID_BASE = 100000  # test ids: TEST_ID_BASE + 1000 * group index + i; train ids start at 1


@dataclass(frozen=True)
class Splits:
    """Which tools each split may draw from."""

    catalog: Catalog

    @property
    def train_tools(self) -> list[str]:
        return [t for c in self.catalog.categories if c.name not in HELD_OUT_CATEGORIES for t in
                self.catalog.category_tools(c.name) if t not in HELD_OUT_TOOLS]

    @property
    def train_categories(self) -> list[str]:
        return [c.name for c in self.catalog.categories if c.name not in HELD_OUT_CATEGORIES]

    def category_tools(self, category: str, allowed: list[str]) -> list[str]:
        return [t for t in self.catalog.category_tools(category) if t in allowed]


def _draw(builder: QueryBuilder, rng: random.Random, shape: str, rules: SplitRules, catalog: Catalog,
          tools_allowed: list[str], distractors_allowed: list[str], g1_tools: list[str] | None = None
          ) -> dict[str, Any] | None:
    """One attempt at a query of `shape` (G1, G2, G3)."""
    if shape == "G1":
        tool = rng.choice(g1_tools or tools_allowed)
        category = catalog.tool_category[tool]
        pool = [t for t in catalog.category_tools(category) if t in distractors_allowed or t == tool]
        return builder.build([tool], [rng.choice([1, 1, 2])], rules, pool, catalog.category(category).context)
    if shape == "G2":
        categories = sorted({catalog.tool_category[t] for t in tools_allowed})
        category = rng.choice(categories)
        candidates = [t for t in catalog.category_tools(category) if t in tools_allowed]
        if len(candidates) < 2:
            return None
        tools = rng.sample(candidates, 2)
        pool = [t for t in catalog.category_tools(category) if t in distractors_allowed]
        return builder.build(tools, [1, 1], rules, pool, catalog.category(category).context)
    collection = rng.choice(sorted(COLLECTIONS))
    members = list(COLLECTIONS[collection])
    rng.shuffle(members)
    tools: list[str] = []
    for tool in members:
        if catalog.tool_category[tool] not in {catalog.tool_category[t] for t in tools}:
            tools.append(tool)
    tools = tools[: rng.choice([2, 2, 3])]
    return builder.build(tools, [1] * len(tools), rules, list(COLLECTIONS[collection]), ())


def _collect(count: int, draw: Callable[[], dict[str, Any] | None], seen: set[str], label: str) -> list[dict]:
    queries: list[dict] = []
    attempts = 0
    with tqdm(total=count, desc=label, unit="query", leave=False) as bar:
        while len(queries) < count:
            attempts += 1
            if attempts > count * 200:
                raise RuntimeError(f"{label}: could only build {len(queries)} of {count} queries")
            query = draw()
            if query is None or query["query"] in seen:
                continue
            seen.add(query["query"])
            queries.append(query)
            bar.update(1)
    return queries


def build_queries(conn, seed: int, catalog: Catalog = CATALOG, test_size: int = TEST_QUERIES_PER_GROUP,
                  train_sizes: dict[str, int] | None = None) -> tuple[dict[str, list[dict]], list[dict]]:
    """The six test groups and the train split (each train query carries "group": G1 | G2 | G3)."""
    train_sizes = TRAIN_QUERIES if train_sizes is None else train_sizes
    splits = Splits(catalog)
    train_tools = splits.train_tools
    held_cat_tools = [t for c in HELD_OUT_CATEGORIES for t in catalog.category_tools(c)]
    seen_tools = [t for t in catalog.tools if catalog.tool_category[t] not in HELD_OUT_CATEGORIES]
    for members in COLLECTIONS.values():
        assert set(members) <= set(train_tools), "collections must hold train tools only"
    rng = random.Random(f"localtoolbench-queries-{seed}")
    builder = QueryBuilder(catalog, conn, rng)
    seen: set[str] = set()
    plans = {
        "G1_instruction": ("G1", INSTRUCTION_RULES, train_tools, train_tools, None),
        "G1_category": ("G1", UNSEEN_RULES, held_cat_tools, held_cat_tools, None),
        # Unseen tools in seen categories: distractors may come from the category's seen tools.
        "G1_tool": ("G1", UNSEEN_RULES, list(HELD_OUT_TOOLS), seen_tools, list(HELD_OUT_TOOLS)),
        "G2_instruction": ("G2", INSTRUCTION_RULES, train_tools, train_tools, None),
        "G2_category": ("G2", UNSEEN_RULES, held_cat_tools, held_cat_tools, None),
        "G3_instruction": ("G3", INSTRUCTION_RULES, train_tools, train_tools, None),
    }
    test: dict[str, list[dict]] = {}
    for index, group in enumerate(GROUPS):
        shape, rules, tools, distractors, g1_tools = plans[group]
        draw = partial(_draw, builder, rng, shape, rules, catalog, tools, distractors, g1_tools)
        queries = _collect(test_size, draw, seen, group)
        for i, query in enumerate(queries):
            query["query_id"] = TEST_ID_BASE + 1000 * index + i
        test[group] = queries
    train: list[dict] = []
    for shape, count in train_sizes.items():
        draw = partial(_draw, builder, rng, shape, TRAIN_RULES, catalog, train_tools, train_tools)
        queries = _collect(count, draw, seen, f"train {shape}")
        for query in queries:
            query["group"] = shape
        train.extend(queries)
    for i, query in enumerate(train, 1):
        query["query_id"] = i
    return test, train


def tool_document(catalog: Catalog, tool_name: str) -> dict[str, Any]:
    """A ToolBench `toolenv/tools/<Category>/<tool>.json` document."""
    from toolbench_eval.localtoolbench.queries import parameter_doc

    tool = catalog.tools[tool_name]
    standard = standardize(tool_name)
    host = standard.replace("_", "-")
    apis = []
    for api in catalog.tool_apis(tool_name):
        apis.append({
            "name": api.name,
            "url": f"https://{host}.p.rapidapi.com/{standardize(api.name).replace('_', '-')}",
            "description": api.description,
            "method": "GET",
            "required_parameters": [parameter_doc(p) for p in api.params if p.param.required],
            "optional_parameters": [parameter_doc(p) for p in api.params if not p.param.required],
        })
    return {"tool_name": tool_name, "tool_description": tool.description, "title": tool_name,
            "standardized_name": standard, "api_list": apis}


def _write_json(path: Path, data: Any, *, indent: int | None = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    separators = None if indent else (",", ":")
    path.write_text(json.dumps(data, ensure_ascii=False, indent=indent, separators=separators) + "\n",
                    encoding="utf-8")


def _public(query: dict[str, Any]) -> dict[str, Any]:
    """A query as written to files: upstream key order, our ground truth last, internal keys dropped."""
    keys = ("query", "query_id", "api_list", "relevant APIs", "group", "ground_truth")
    return {k: query[k] for k in keys if k in query}


def write_trajectories(out: Path, train: list[dict], seed: int, database: Path) -> Counter:
    from toolbench_eval.benchmark.loader import load_tools
    from toolbench_eval.localtoolbench.backend import LocalBackend
    from toolbench_eval.localtoolbench.oracle import Oracle

    tools = load_tools(out / "toolenv" / "tools")
    backend = LocalBackend(connection=connect(database), seed=seed)
    oracle = Oracle(backend, tools)
    rng = random.Random(f"localtoolbench-oracle-{seed}")
    stats: Counter = Counter()
    path = out / "train" / "trajectories.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for query in tqdm(train, desc="trajectories", unit="query", leave=False):
            trajectory = oracle.solve(_public(query), query["group"], query["_answer"], rng)
            stats["trajectories"] += 1
            stats[f"style_{trajectory.style}"] += 1
            if trajectory.failed_calls:
                stats["with_failed_calls"] += 1
            stats["mistakes_weight_0"] += sum(m.get("weight") == 0 for m in trajectory.messages)
            if any("function_call" in m and m["function_call"]["name"] == "Finish" and "give_up" in
                   m["function_call"]["arguments"] for m in trajectory.messages):
                stats["with_restart"] += 1
            record = {"query_id": query["query_id"], "group": query["group"], "query": query["query"],
                      "style": trajectory.style, "failed_calls": trajectory.failed_calls,
                      "functions": trajectory.functions, "messages": trajectory.messages}
            handle.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
    return stats


def generate_world(out: str | Path, seed: int, *, scale: float = 1.0, test_size: int = TEST_QUERIES_PER_GROUP,
                   train_sizes: dict[str, int] | None = None, trajectories: bool = True,
                   database: str | Path | None = None) -> dict[str, Any]:
    """Write the world into `out` (replacing generated files there) and return `world.json`'s content."""
    out = Path(out)
    database = Path(database) if database is not None else ensure_database(seed, scale)
    if not database.exists():
        from toolbench_eval.localtoolbench.database import build_database

        build_database(database, seed, scale)
    with closing(connect(database)) as conn:
        digest = content_digest(conn)
        test, train = build_queries(conn, seed, test_size=test_size, train_sizes=train_sizes)
    staging = Path(tempfile.mkdtemp(prefix=".localtoolbench-", dir=out.parent if out.parent.exists() else None))
    try:
        for category in CATALOG.categories:
            for tool in category.tools:
                _write_json(staging / "toolenv" / "tools" / category.name / f"{standardize(tool.name)}.json",
                            tool_document(CATALOG, tool.name))
        for group, queries in test.items():
            _write_json(staging / "test_instruction" / f"{group}.json", [_public(q) for q in queries])
            _write_json(staging / "test_query_ids" / f"{group}.json", {str(q["query_id"]): 0 for q in queries})
        _write_json(staging / "train" / "queries.json", [_public(q) for q in train], indent=None)
        stats = write_trajectories(staging, train, seed, database) if trajectories else Counter()
        info = {
            "name": "LocalToolBench",
            "version": WORLD_VERSION,
            "seed": seed,
            "scale": scale,
            "database_digest": digest,
            "counts": {
                "categories": len(CATALOG.categories),
                "tools": len(CATALOG.tools),
                "apis": len(CATALOG.apis),
                "test_queries": {g: len(q) for g, q in test.items()},
                "train_queries": dict(Counter(q["group"] for q in train)),
                "trajectories": dict(sorted(stats.items())),
            },
            "splits": {"held_out_categories": list(HELD_OUT_CATEGORIES), "held_out_tools": list(HELD_OUT_TOOLS),
                       "collections": {k: list(v) for k, v in COLLECTIONS.items()}},
        }
        _write_json(staging / "world.json", info)
        (staging / "README.md").write_text(readme(info), encoding="utf-8")
        out.mkdir(parents=True, exist_ok=True)
        for name in ("toolenv", "test_instruction", "test_query_ids", "train"):
            shutil.rmtree(out / name, ignore_errors=True)
        for item in sorted(staging.iterdir()):
            target = out / item.name
            if target.is_file():
                target.unlink()
            shutil.move(str(item), str(target))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return info


def readme(info: dict[str, Any]) -> str:
    counts = info["counts"]
    groups = "\n".join(f"| {g} | {n} |" for g, n in counts["test_queries"].items())
    trajectories = counts["trajectories"]
    collections = "\n".join(f"- **{name}**: {', '.join(tools)}" for name, tools in info["splits"]["collections"].items())
    return f"""# LocalToolBench

An executable, offline tool world in the exact ToolBench / StableToolBench layout. Every API is a function
over a SQLite database built deterministically from a seed, so calls return real, consistent data, and
every query carries ground truth: the facts a correct final answer must state and a minimal call plan.

Generated by `toolbench-eval localtoolbench generate --seed {info['seed']} --out data/localtoolbench`
(world version {info['version']}). Do not edit by hand: regenerate.

## Contents

- {counts['categories']} categories, {counts['tools']} tools, {counts['apis']} APIs (`toolenv/tools/<Category>/<tool>.json`)
- test groups (`test_instruction/<group>.json`, ids in `test_query_ids/<group>.json`):

| group | queries |
|---|---|
{groups}

- train split: `train/queries.json` ({sum(counts['train_queries'].values())} queries: {', '.join(f'{k} {v}' for k, v in counts['train_queries'].items())}),
  same format as the test files plus `"group"` (G1 single tool, G2 multi-tool in a category, G3 collection)
- expert trajectories: `train/trajectories.jsonl` ({trajectories.get('trajectories', 0)} lines: `query_id`, `group`, `query`,
  `style`, `failed_calls`, `functions`, `messages`); {trajectories.get('with_failed_calls', 0)} contain failed calls that are
  recovered (flaky APIs retried, wrong or missing arguments corrected) and {trajectories.get('with_restart', 0)} a
  `Finish(give_up_and_restart)` branch followed by the DFSDT diversity prompt and a fresh chain.
  The {trajectories.get('mistakes_weight_0', 0)} deliberate mistakes in them (a call with a wrong argument, a dead-end call) are
  assistant messages with `"weight": 0`: kept as context, not trained on (`toolbench-eval train` honours
  message weights; `--ignore-message-weights` trains on every assistant turn, as upstream ToolLLaMA does).

## Query format

Upstream keys (`query`, `query_id`, `api_list` with full API entries, `relevant APIs`) plus
`"ground_truth": {{"facts": [...], "call_plan": [{{"tool_name", "api_name", "arguments"}}]}}`. Facts are
texts read from the database by executing the plan (numbers written plainly); each one is visible in the
first 1,024 characters of its observation. Each `api_list` has 4-8 APIs of which 1-3 are relevant; the others
are distractors from the same tools and category (or collection).

## Splits (the same meaning as ToolBench)

- G1_instruction, G2_instruction, G3_instruction: tools seen in training; held-out sentence templates and
  held-out entities.
- G1_tool: unseen tools of seen categories: {', '.join(info['splits']['held_out_tools'])}.
- G1_category, G2_category: unseen categories: {', '.join(info['splits']['held_out_categories'])}.
- G3 collections (cross-category):
{collections}

None of the held-out tools or categories appears in any train query's `api_list`.

## Execution

`LocalBackend` (`toolbench_eval.localtoolbench.backend`, backend name `local`) executes calls by original
category/tool/API/parameter names. The database is not committed: it is built at first use into
`$TOOLBENCH_EVAL_CACHE` (default `~/.cache/toolbench-eval`) as
`localtoolbench-{info['version']}-{info['seed']}.sqlite` (about 1.5 MB, under a second), atomically, and checked against
`database_digest` in `world.json`. Rebuild explicitly with `toolbench-eval localtoolbench build-db`.

Realistic behaviour: list APIs paginate (`page`, `limit`), some responses (reviews, track lists, recipes)
exceed the 1,024-character observation cut, bad or missing arguments give 400-style messages
(`{{"message": "Missing required parameter: city"}}`, `... got an unexpected keyword argument 'x'`), and a few
APIs are unreliable: they fail the first attempt of some calls with a rate limit (429), a 500 "API not
working" or a timeout, chosen deterministically from a hash of the seed, the API and the arguments, and
succeed on retry. Two APIs (ClimaCast `alerts`, SkyCheck `Check Alerts`) are permanently broken.
"""
