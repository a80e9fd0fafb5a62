"""Published ToolBench / StableToolBench numbers (`data/reference/published.json`) as leaderboard rows.

These are the upstream authors' figures, copied from their READMEs: published, not our measurement.
Every exported row built from them says so in its `source` column, and names its benchmark, so that
export can keep it away from runs on another benchmark (`benchmark_identity`, `same_benchmark`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import Any

from toolbench_eval.errors import UserError, located
from toolbench_eval.paths import DATA_DIR
from toolbench_eval.scoring.rows import Cell, LeaderboardRow

PUBLISHED_PATH = DATA_DIR / "reference" / "published.json"

# Which tables each `--reference-rows` choice loads: (pass-rate table, win-rate table or None).
CHOICES: dict[str, tuple[str, str | None]] = {
    "stabletoolbench": ("stabletoolbench-sopr", "stabletoolbench-sowr"),
    "stabletoolbench-mirrorapi": ("stabletoolbench-mirrorapi-sopr", None),
    "toolbench": ("toolbench-pass-rate", "toolbench-win-rate"),
}

# The `benchmark` values of published.json, as a title says them.
BENCHMARK_TITLES = {
    "stabletoolbench": "StableToolBench",
    "toolbench": "ToolBench",
    "localtoolbench": "LocalToolBench",
}

STABLETOOLBENCH = "stabletoolbench"
TOOLBENCH = "toolbench"
LOCALTOOLBENCH = "localtoolbench"
UNRECORDED_BENCHMARK = "unrecorded"


def _folded(name: str) -> str:
    """`StableToolBench`, `stable_toolbench` and `stable-toolbench` all fold to `stabletoolbench`."""
    return re.sub(r"[^a-z0-9]", "", name.casefold())


def benchmark_identity(name: str, root: str) -> str:
    """Which benchmark a run's manifest (`benchmark.name`, `benchmark.root`) points at, in the words of
    published.json's `benchmark` field where we can tell, else the recorded name.

    Runs record the folder they were given, not a benchmark id, so this reads the folder names and
    claims a published benchmark only on clear evidence; a wrong "same" would put published figures
    beside numbers they cannot be compared with, while a wrong "different" only moves them into a
    table of their own. Names are compared case- and punctuation-blind (`_folded`):

    - `stabletoolbench`: the recorded name or the root's last folder is `stabletoolbench` (a checkout
      or a copy named after it) or `solvable_queries` (StableToolBench's own query folder, which the
      loader also finds inside a checkout). `solvable_queries_example` is not the benchmark.
    - `toolbench`: the name is `toolbench`, or the root is ToolBench's `data/` folder inside a folder
      named `toolbench`, and nothing above says StableToolBench.
    - `localtoolbench`: the name or the root's last folder is `localtoolbench` (the bundled one).
    - anything else: the recorded name (or the root's folder name), which matches no published table.

    >>> benchmark_identity("solvable_queries", "/x/StableToolBench/solvable_queries")
    'stabletoolbench'
    >>> benchmark_identity("localtoolbench", "data/localtoolbench"), benchmark_identity("mine", "/tmp/mine")
    ('localtoolbench', 'mine')
    >>> benchmark_identity("data", "/ckpt/ToolBench/data"), benchmark_identity("lt", "/tmp/toolbench/lt")
    ('toolbench', 'lt')
    """
    path = PurePath(root) if root else PurePath()
    folder, parent = _folded(path.name), _folded(path.parent.name)
    names = {_folded(name), folder} - {""}
    if names & {STABLETOOLBENCH, "solvablequeries"}:
        return STABLETOOLBENCH
    if TOOLBENCH in names or (folder == "data" and parent == TOOLBENCH):
        return TOOLBENCH
    if LOCALTOOLBENCH in names:
        return LOCALTOOLBENCH
    return name or path.name or UNRECORDED_BENCHMARK


def same_benchmark(published: LeaderboardRow, ours: Sequence[LeaderboardRow]) -> bool:
    """True when a published row may stand in one table with our rows: all of them ran its benchmark."""
    return bool(ours) and all(row.benchmark == published.benchmark for row in ours)


def published_title(benchmark: str) -> str:
    """The heading of a table of published figures kept apart from our rows."""
    name = BENCHMARK_TITLES.get(benchmark, benchmark)
    return f"Published {name} figures (a different benchmark: not comparable with the rows above)"


def load_published(path: Path = PUBLISHED_PATH) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            f"{path}: the published reference numbers are missing; reinstall the package data"
        ) from None
    except json.JSONDecodeError as error:
        raise located(path, f"not valid JSON ({error})") from None


def _cell(value: Any) -> Cell:
    if isinstance(value, list):
        return Cell(float(value[0]), float(value[1]))
    return Cell(float(value))


def reference_rows(choice: str, path: Path = PUBLISHED_PATH) -> list[LeaderboardRow]:
    """Rows for `choice` (`stabletoolbench`, `stabletoolbench-mirrorapi`, `toolbench` or `none`)."""
    if choice == "none":
        return []
    if choice not in CHOICES:
        raise UserError(f"unknown reference rows {choice!r}; choose one of {', '.join([*CHOICES, 'none'])}")
    tables = {t["id"]: t for t in load_published(path)["tables"]}
    pass_id, win_id = CHOICES[choice]
    pass_table = tables[pass_id]
    wins: dict[tuple[str, str], dict[str, Any]] = {}
    if win_id:
        wins = {(r["method"], r["model"]): r for r in tables[win_id]["rows"]}
    benchmark = pass_table.get("benchmark", UNRECORDED_BENCHMARK)
    rows = []
    for entry in pass_table["rows"]:
        win = wins.get((entry["method"], entry["model"]))
        rows.append(
            LeaderboardRow(
                source=f"published, not our measurement: {pass_table['source']}",
                run=pass_id,
                method=entry["method"],
                model=entry["model"],
                bases="–",
                judge=pass_table["evaluator"],
                benchmark=benchmark,
                protocol=f"{benchmark} (upstream code)",  # figures made by the upstream authors' own code
                pass_rate={g: _cell(v) for g, v in entry["groups"].items()},
                average=_cell(entry["average"]),
                average_complete=True,
                win_rate={g: float(v) for g, v in (win or {}).get("groups", {}).items()},
                win_average=float(win["average"]) if win else None,
                win_reference=tables[win_id].get("reference") if win_id and win else None,
                published=True,
            )
        )
    return rows
