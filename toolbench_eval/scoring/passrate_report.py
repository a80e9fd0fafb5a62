"""The pass-rate report, `RUN_DIR/scores/pass_rate_<judge-id>.json`: settings, per-group numbers and every
query's labels. `score` writes it; `compare`, `export` and `diagnose` read it back.

Reading a report and writing it again gives the same bytes, for the reports of earlier versions too (those
made before infrastructure failures were counted have no `n_infrastructure_error`, and keep none).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from toolbench_eval.atomic import write_text_atomic
from toolbench_eval.errors import located
from toolbench_eval.json_fields import read_fields
from toolbench_eval.scoring import stats
from toolbench_eval.scoring.labels import AnswerStatus

REPORT_KIND = "toolbench-eval pass rate"
DENOMINATOR_RULES = {False: "all queries; a missing answer counts as Unsolved",
                     True: "answered queries only (upstream)"}
STD_RULE = "population std (ddof=0) over evaluation rounds"
AVERAGE_NOTE = "unweighted mean of the group SoPRs; std is the mean of the group stds"


@dataclass
class QueryLabels:
    """A query's statuses over the evaluation rounds, with the reasons behind them."""

    query_id: str
    statuses: list[AnswerStatus]
    reasons: list[str] = field(default_factory=list)
    missing: bool = False
    short_circuit: str | None = None
    malformed: int = 0  # rounds whose judge reply was malformed (counted as Unsure)
    infrastructure_error: str | None = None  # why a missing answer is missing, when a server was down

    @property
    def values(self) -> list[float]:
        return [s.value_for_sopr for s in self.statuses]

    @property
    def score(self) -> float:
        """Mean value over rounds (the query's contribution to the bootstrap)."""
        return sum(self.values) / len(self.values) if self.values else 0.0

    def majority_status(self) -> AnswerStatus:
        """The most frequent status over rounds; Unsure when statuses tie (StableToolBench takes
        "the most frequent result for each query")."""
        return AnswerStatus(stats.majority([s.value for s in self.statuses], tie="Unsure"))

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"statuses": [s.value for s in self.statuses], "reasons": self.reasons}
        if self.missing:
            data["missing"] = True
        if self.short_circuit:
            data["short_circuit"] = self.short_circuit
        if self.malformed:
            data["malformed"] = self.malformed
        if self.infrastructure_error:
            data["infrastructure_error"] = self.infrastructure_error
        return data

    @classmethod
    def from_json(cls, query_id: str, data: Any, source: str | Path, where: str) -> QueryLabels:
        values = read_fields(cls, data, source, where=where, only=LABEL_KEYS)
        try:
            statuses = [AnswerStatus.parse(s) for s in values["statuses"]]
        except (ValueError, TypeError) as error:
            raise located(source, str(error), field=f"{where}.statuses") from None
        return cls(**{**values, "query_id": query_id, "statuses": statuses})


LABEL_KEYS = frozenset(f.name for f in fields(QueryLabels)) - {"query_id"}  # the id is the key above them


@dataclass(kw_only=True)
class GroupScore:
    """One group's numbers (`passrate.summarize_group`) and its labels."""

    n: int  # queries in the denominator
    n_queries: int
    n_answered: int
    n_missing: int
    n_infrastructure_error: int | None = None  # None in reports made before it was counted
    run_scores: list[float]  # the pass rate of each evaluation round, 0-1
    sopr: float | None  # mean over rounds, in %
    std: float | None
    ci95: list[float] | None  # bootstrap interval over queries, in %
    label_counts: dict[str, int]
    short_circuited: int
    malformed_judgements: int
    label: str  # the column title, e.g. I1-Inst
    unexpected_answers: list[str]  # answers for ids outside the run's selection (not scored)
    labels: dict[str, QueryLabels]

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.n_infrastructure_error is None:
            del data["n_infrastructure_error"]
        data["labels"] = {qid: labels.to_json() for qid, labels in self.labels.items()}
        return data

    @classmethod
    def from_json(cls, data: Any, source: str | Path, where: str) -> GroupScore:
        values = read_fields(cls, data, source, where=where)
        labels = {str(qid): QueryLabels.from_json(str(qid), entry, source, f"{where}.labels.{qid}")
                  for qid, entry in values["labels"].items()}
        return cls(**{**values, "labels": labels})


@dataclass(kw_only=True)
class AverageScore:
    """The unweighted mean over the groups that have a pass rate (StableToolBench's Average column)."""

    sopr: float | None
    std: float | None  # the mean of the group stds
    ci95: list[float] | None
    groups: list[str]
    complete: bool  # all six groups

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.sopr is not None:
            data["note"] = AVERAGE_NOTE
        return data

    @classmethod
    def from_json(cls, data: Any, source: str | Path) -> AverageScore:
        return cls(**read_fields(cls, data, source, where="average"))


@dataclass(kw_only=True)
class PassRateReport:
    """One scoring of a run (or of a converted file) by one judge: the settings, the numbers of each group and
    their average, and every query's labels."""

    created: str
    # What was scored, written at the top level: run_id, run_dir, model_name, method, method_label, buckets and
    # universe for a run; converted_file, model_name and method for a converted file.
    scored: dict[str, Any]
    judge: dict[str, Any]  # `Judge.describe()`
    judge_id: str
    evaluate_times: int
    upstream_denominator: bool
    bootstrap: dict[str, Any]  # resamples, seed, confidence, unit
    groups: dict[str, GroupScore]
    average: AverageScore

    @property
    def denominator(self) -> str:
        return DENOMINATOR_RULES[self.upstream_denominator]

    @property
    def missing_answers(self) -> int:
        return sum(group.n_missing for group in self.groups.values())

    @property
    def infrastructure_failures(self) -> int:
        return sum(group.n_infrastructure_error or 0 for group in self.groups.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": REPORT_KIND,
            "created": self.created,
            **self.scored,
            "judge": self.judge,
            "judge_id": self.judge_id,
            "evaluate_times": self.evaluate_times,
            "upstream_denominator": self.upstream_denominator,
            "denominator": self.denominator,
            "bootstrap": self.bootstrap,
            "std": STD_RULE,
            "groups": {name: group.to_json() for name, group in self.groups.items()},
            "average": self.average.to_json(),
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_json(cls, data: Any, source: str | Path) -> PassRateReport:
        if not isinstance(data, dict) or data.get("kind") != REPORT_KIND:
            raise located(source, "not a toolbench-eval pass-rate report", field="kind")
        typed = frozenset(f.name for f in fields(cls)) - {"scored"}
        values = read_fields(cls, data, source, only=typed)
        derived = {"kind", "denominator", "std"}  # written from the fields, not read
        return cls(**{
            **values,
            "scored": {key: value for key, value in data.items() if key not in typed | derived},
            "groups": {str(name): GroupScore.from_json(entry, source, f"groups.{name}")
                       for name, entry in values["groups"].items()},
            "average": AverageScore.from_json(values["average"], source),
        })

    def save(self, scores_dir: Path) -> Path:
        return write_text_atomic(report_path(scores_dir, self.judge_id), self.dumps())


def report_path(scores_dir: Path, judge_id: str) -> Path:
    return Path(scores_dir) / f"pass_rate_{judge_id}.json"


def load_report(scores_dir: Path, judge_id: str) -> PassRateReport | None:
    """A saved pass-rate report, or None when there is none."""
    path = report_path(scores_dir, judge_id)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise located(path, f"not valid JSON ({error}); delete it and score again") from None
    return PassRateReport.from_json(data, path)
