"""Leaderboard rows read back from a `leaderboard.json`, so its figures can be redrawn without the runs.

Committed leaderboards outlive their run folders (runs are git-ignored, often made on a lent GPU); the
JSON keeps every number the plots draw. Older files lack fields added since (N, benchmark, protocol):
those read back as unknown (`None` / the row's defaults), and the plots say `n=?` rather than guess.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from toolbench_eval.errors import UserError
from toolbench_eval.scoring.rows import Cell, LeaderboardRow

_CELL_FIELDS = {f.name for f in dataclasses.fields(Cell)}
_ROW_FIELDS = {f.name for f in dataclasses.fields(LeaderboardRow)}


def cell_from_json(data: dict[str, Any] | None) -> Cell | None:
    if data is None:
        return None
    values = {k: v for k, v in data.items() if k in _CELL_FIELDS}
    if values.get("ci95") is not None:
        values["ci95"] = tuple(values["ci95"])
    return Cell(**values)


def row_from_json(data: dict[str, Any]) -> LeaderboardRow:
    """One row of `leaderboard.json` (`to_json()`'s shape, plus export's `table` key, which is dropped)."""
    values = {k: v for k, v in data.items() if k in _ROW_FIELDS}
    values["pass_rate"] = {g: cell_from_json(c) for g, c in (values.get("pass_rate") or {}).items()}
    values["average"] = cell_from_json(values.get("average"))
    return LeaderboardRow(**values)


def rows_from_leaderboard_json(path: str | Path) -> list[LeaderboardRow]:
    path = Path(path)
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["rows"]
        return [row_from_json(row) for row in rows]
    except FileNotFoundError:
        raise UserError(f"{path}: no such leaderboard; pass the leaderboard.json that `export` wrote") from None
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise UserError(f"{path}: not a leaderboard.json written by `export` ({error}); re-export it") from None
