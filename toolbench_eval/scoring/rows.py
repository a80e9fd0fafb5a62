"""One leaderboard row: what export writes for a run or a published result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Cell:
    """A pass rate in %: mean, std over evaluation rounds, bootstrap interval (each may be absent)."""

    mean: float | None
    std: float | None = None
    ci95: tuple[float, float] | None = None

    def text(self) -> str:
        """`52.2±1.1`, or `27.8` without a std, or `–` with no value."""
        if self.mean is None:
            return "–"
        return f"{self.mean:.1f}" if self.std is None else f"{self.mean:.1f}±{self.std:.1f}"


@dataclass(frozen=True)
class LeaderboardRow:
    source: str  # "this project" or "published (...); not our measurement"
    run: str  # run id, or the published table id
    method: str
    model: str
    bases: str  # "none", "10000, 17500, 25000", or "–" where unknown
    judge: str
    pass_rate: dict[str, Cell] = field(default_factory=dict)  # by group name; absent = not run
    average: Cell | None = None
    average_complete: bool = False  # True when the average covers all six groups
    win_rate: dict[str, float] = field(default_factory=dict)
    win_average: float | None = None
    win_tie_rate: float | None = None
    win_reference: str | None = None
    missing_answers: int | None = None
    has_buckets: bool = False
    published: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
