"""What every executor shares: the work plan, result recording and progress.

The driver decides which queries still need an answer (those without an answer file), records
each outcome as it arrives (answer file + event), and shows one tqdm bar per group with live
counts. Executors only turn work items into outcomes; so `local` and `ray` resume identically.
"""

from __future__ import annotations

import time
import traceback
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from toolbench_eval.benchmark.model import Group, Query
from toolbench_eval.runner.agent import SolveResult
from toolbench_eval.runner.rundir import RunDir


@dataclass(frozen=True)
class WorkItem:
    group: str
    query: Query

    @property
    def key(self) -> str:
        return f"{self.group}/{self.query.query_id}"


@dataclass
class WorkPlan:
    todo: list[WorkItem]
    totals: dict[str, int]  # queries per group after --limit
    already_done: dict[str, int]  # finished before this run started


def plan_work(groups: Mapping[str, Group], order: Iterable[str], rundir: RunDir, method: str,
              limit: int | None = None) -> WorkPlan:
    """Queries of each group (first `limit`), minus those whose answer file exists."""
    todo: list[WorkItem] = []
    totals: dict[str, int] = {}
    done: dict[str, int] = {}
    for name in order:
        queries = list(groups[name].queries)
        if limit is not None:
            queries = queries[:limit]
        finished = rundir.finished_ids(name, method)
        totals[name] = len(queries)
        done[name] = sum(1 for q in queries if q.query_id in finished)
        todo.extend(WorkItem(name, q) for q in queries if q.query_id not in finished)
    return WorkPlan(todo, totals, done)


@dataclass
class RunSummary:
    counts: dict[str, Counter] = field(default_factory=dict)  # per group: done, answered, gave_up, no_answer, errors
    seconds: float = 0.0

    def total(self, key: str) -> int:
        return sum(c[key] for c in self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 3), "groups": {g: dict(c) for g, c in self.counts.items()}}


class Recorder:
    """Writes outcomes to the run directory and keeps the progress bars current."""

    def __init__(self, rundir: RunDir, method: str, plan: WorkPlan, *, progress: bool = True) -> None:
        self.rundir = rundir
        self.method = method
        self.summary = RunSummary(counts={g: Counter() for g in plan.totals})
        self._bars: dict[str, tqdm] = {}
        for position, (group, total) in enumerate(plan.totals.items()):
            bar = tqdm(total=total, initial=plan.already_done[group], desc=group, position=position,
                       unit="q", disable=not progress, dynamic_ncols=True, leave=True)
            self._bars[group] = bar
            self._show(group)
        self._started: dict[str, float] = {}
        self._t0 = time.perf_counter()

    def _show(self, group: str) -> None:
        c = self.summary.counts[group]
        self._bars[group].set_postfix(answered=c["answered"], gave_up=c["gave_up"], errors=c["errors"],
                                      refresh=True)

    def started(self, item: WorkItem) -> None:
        self._started[item.key] = time.perf_counter()
        self.rundir.log("query_started", group=item.group, query_id=item.query.query_id)

    def finished(self, item: WorkItem, result: SolveResult) -> None:
        seconds = time.perf_counter() - self._started.pop(item.key, time.perf_counter())
        # The answer file first: once it exists the query is finished, whatever happens next.
        self.rundir.write_answer(item.group, item.query.query_id, self.method, result.answer)
        outcome = result.outcome
        generation = result.answer.get("answer_generation", {})
        self.rundir.log("query_finished", group=item.group, query_id=item.query.query_id, outcome=outcome,
                        query_count=generation.get("query_count"), total_tokens=generation.get("total_tokens"),
                        seconds=round(seconds, 3))
        counts = self.summary.counts[item.group]
        counts["done"] += 1
        counts[outcome] += 1
        self._bars[item.group].update(1)
        self._show(item.group)

    def failed(self, item: WorkItem, error: BaseException, trace: str | None = None) -> None:
        seconds = time.perf_counter() - self._started.pop(item.key, time.perf_counter())
        trace = trace or "".join(traceback.format_exception(type(error), error, error.__traceback__))
        self.rundir.log("query_failed", group=item.group, query_id=item.query.query_id,
                        error=f"{type(error).__name__}: {error}", traceback=trace[-4000:],
                        seconds=round(seconds, 3))
        self.summary.counts[item.group]["errors"] += 1
        self._show(item.group)

    def close(self) -> RunSummary:
        self.summary.seconds = time.perf_counter() - self._t0
        for bar in self._bars.values():
            bar.close()
        return self.summary
