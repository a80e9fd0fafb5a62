"""Published ToolBench / StableToolBench numbers (`data/reference/published.json`) as leaderboard rows.

These are the upstream authors' figures, copied from their READMEs: published, not our measurement.
Every exported row built from them says so in its `source` column.
"""

from __future__ import annotations

import json
from pathlib import Path
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
