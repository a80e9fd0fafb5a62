"""The pass-rate report, `RUN_DIR/scores/pass_rate_<judge-id>.json`: settings, per-group numbers and every
query's labels. `score` writes it; `compare`, `export` and `diagnose` read it back.

Reading a report and writing it again gives the same bytes, for the reports of earlier versions too (those
made before infrastructure failures were counted have no `n_infrastructure_error`, and keep none).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, field_validator

from toolbench_eval.atomic import write_text_atomic
from toolbench_eval.errors import located
from toolbench_eval.json_fields import Number, validated
from toolbench_eval.scoring import stats
from toolbench_eval.scoring.labels import AnswerStatus

REPORT_KIND = "toolbench-eval pass rate"
DENOMINATOR_RULES = {False: "all queries; a missing answer counts as Unsolved",
                     True: "answered queries only (upstream)"}
STD_RULE = "population std (ddof=0) over evaluation rounds"
AVERAGE_NOTE = "unweighted mean of the group SoPRs; std is the mean of the group stds"
# Either spelling appears in files (see `AnswerStatus.parse`).
Status = Annotated[AnswerStatus, BeforeValidator(AnswerStatus.parse)]


class Record(BaseModel):
    """The report's records: strict (JSON holds no "50" for 50, no true for 1); keys of no field are
    ignored (`note`, written from the numbers). Mutable: scoring fills in the labels round by round."""

    model_config = ConfigDict(strict=True)


class QueryLabels(Record):
    """A query's statuses over the evaluation rounds, with the reasons behind them."""

    query_id: str  # in the file, the key above the labels
    statuses: list[Status]
    reasons: list[str] = []
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


class GroupScore(Record):
    """One group's numbers (`passrate.summarize_group`) and its labels."""

    n: int  # queries in the denominator
    n_queries: int
    n_answered: int
    n_missing: int
    n_infrastructure_error: int | None = None  # None in reports made before it was counted
    run_scores: list[Number]  # the pass rate of each evaluation round, 0-1
    sopr: Number | None  # mean over rounds, in %
    std: Number | None
    ci95: list[Number] | None  # bootstrap interval over queries, in %
    label_counts: dict[str, int]
    short_circuited: int
    malformed_judgements: int
    label: str  # the column title, e.g. I1-Inst
    unexpected_answers: list[str]  # answers for ids outside the run's selection (not scored)
    labels: dict[str, QueryLabels]

    @field_validator("labels", mode="before")
    @classmethod
    def _ids_from_keys(cls, labels: Any) -> Any:
        """In the file a query's id is the key above its labels, not one of their fields."""
        if not isinstance(labels, dict):
            return labels  # refused by the field's own check
        return {qid: {**entry, "query_id": qid} if isinstance(entry, dict) else entry
                for qid, entry in labels.items()}

    def to_json(self) -> dict[str, Any]:
        absent = {"n_infrastructure_error"} if self.n_infrastructure_error is None else set()
        return {**self.model_dump(exclude={"labels", *absent}),
                "labels": {qid: labels.to_json() for qid, labels in self.labels.items()}}


class AverageScore(Record):
    """The unweighted mean over the groups that have a pass rate (StableToolBench's Average column)."""

    sopr: Number | None
    std: Number | None  # the mean of the group stds
    ci95: list[Number] | None
    groups: list[str]
    complete: bool  # all six groups

    def to_json(self) -> dict[str, Any]:
        return {**self.model_dump(), **({"note": AVERAGE_NOTE} if self.sopr is not None else {})}


class PassRateReport(Record):
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
        not_scored = {*cls.model_fields, "kind", "denominator", "std"}  # the last three written from the fields
        return validated(cls, {**data, "scored": {k: v for k, v in data.items() if k not in not_scored}}, source)

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
