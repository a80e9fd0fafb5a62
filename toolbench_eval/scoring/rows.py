"""One leaderboard row: what export writes for a run or a published result."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Cell:
    """A pass rate in %: mean, std over evaluation rounds, bootstrap interval (each may be absent),
    and how many queries stand behind it, so that 100.0±0.0 from one query cannot pass for certainty."""

    mean: float | None
    std: float | None = None
    ci95: tuple[float, float] | None = None
    n: int | None = None  # queries in the denominator; None where the source does not say (published)
    n_missing: int | None = None  # queries without an answer file (see the report's denominator rule)

    def text(self) -> str:
        """`52.2±1.1`, or `27.8` without a std, or `–` with no value."""
        if self.mean is None:
            return "–"
        return f"{self.mean:.1f}" if self.std is None else f"{self.mean:.1f}±{self.std:.1f}"

    def size_text(self) -> str:
        """`(n=60)`, `(n=60, 2 missing)`, or `` when N is unknown.

        >>> Cell(50.0, n=4, n_missing=1).size_text(), Cell(50.0, n=1).size_text(), Cell(50.0).size_text()
        ('(n=4, 1 missing)', '(n=1)', '')
        """
        if self.n is None:
            return ""
        missing = f", {self.n_missing} missing" if self.n_missing else ""
        return f"(n={self.n}{missing})"


@dataclass(frozen=True)
class LeaderboardRow:
    source: str  # "this project" or "published (...); not our measurement"
    run: str  # run id, or the published table id
    method: str
    model: str
    bases: str  # "none", "10000, 17500, 25000", or "–" where unknown
    judge: str
    benchmark: str = "–"  # "localtoolbench", "stabletoolbench", ...: see `reference.benchmark_identity`
    protocol: str = "–"  # the run's `Manifest.protocol_label`, or the upstream code for published rows
    pass_rate: dict[str, Cell] = field(default_factory=dict)  # by group name; absent = not run
    average: Cell | None = None
    average_complete: bool = False  # True when the average covers all six groups
    win_rate: dict[str, float] = field(default_factory=dict)
    win_average: float | None = None
    win_tie_rate: float | None = None
    win_reference: str | None = None
    missing_answers: int | None = None
    infrastructure_failures: int | None = None  # missing answers whose query failed because a server was down
    missing_in_n: bool | None = None  # False when scored with --upstream-denominator; None if unknown
    has_buckets: bool = False
    published: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
