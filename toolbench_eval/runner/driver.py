"""What every executor shares: the work plan, result recording and progress.

The driver decides which queries still need an answer (those without an answer file), records
each outcome as it arrives (answer file + event), and shows progress: one line for the run
(trajectories done and in flight, model calls, generated tokens/s, ETA; refreshed every few seconds
even when nothing finishes) and one tqdm bar per group with live counts. Executors only turn work
items into outcomes; so `local` and `ray` resume identically.

A query that fails is never given an answer file, so the next run retries it. Failures come in two
kinds: `infrastructure_error` (a tool server or the model's server was unavailable:
`reasoning.protocols.InfrastructureError`) and `errors` (anything else, e.g. a bug). Once more than
`max_infra_failures` queries failed for infrastructure, no new query is started: the run ends with
what is in flight and says so (`Recorder.abort_reason`).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tqdm import tqdm

from reasoning.protocols import InfrastructureError
from toolbench_eval.benchmark.model import Group, Query
from toolbench_eval.runner.agent import SolveResult
from toolbench_eval.runner.rundir import RunDir

PROGRESS_REFRESH_S = 2.0
INFRASTRUCTURE = "infrastructure_error"


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


def is_infrastructure_failure(error: BaseException) -> bool:
    """True for an `InfrastructureError`, also when it arrives wrapped (a Ray task error keeps it as `cause`)."""
    seen = 0
    while error is not None and seen < 8:
        if isinstance(error, InfrastructureError):
            return True
        error = getattr(error, "cause", None) or error.__cause__
        seen += 1
    return False


@dataclass
class RunSummary:
    # per group: done, answered, gave_up, no_answer, errors, infrastructure_error
    counts: dict[str, Counter] = field(default_factory=dict)
    seconds: float = 0.0
    abort_reason: str | None = None

    def total(self, key: str) -> int:
        return sum(c[key] for c in self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 3), "groups": {g: dict(c) for g, c in self.counts.items()},
                "aborted": self.abort_reason}


class RunProgress:
    """The run's one-line status: done / in flight, model calls, generated tokens/s, ETA.

    Executors report model calls as they happen (`model_call`); where they cannot (Ray workers), the
    counts of each finished trajectory are added when it finishes. A daemon thread refreshes the line
    every `PROGRESS_REFRESH_S` seconds, so a long first query still shows calls and tokens moving."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.bar = tqdm(total=total, desc="run", unit="q", position=0, disable=not enabled, dynamic_ncols=True,
                        leave=True)
        self.in_flight = 0
        self.calls = 0
        self.generated_tokens = 0
        self.live_calls = False  # True once an executor reports calls as they happen
        self._t0 = time.perf_counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = None
        if enabled:
            self._thread = threading.Thread(target=self._tick, name="toolbench-eval-progress", daemon=True)
            self._thread.start()

    def model_call(self, completion_tokens: int) -> None:
        with self._lock:
            self.live_calls = True
            self.calls += 1
            self.generated_tokens += completion_tokens

    def trajectory_finished(self, query_count: Any, total_tokens: Any) -> None:
        """Counts of a finished trajectory, for executors that could not report its calls live."""
        if self.live_calls:
            return
        with self._lock:
            self.calls += int(query_count or 0)
            self.generated_tokens += int(total_tokens or 0)

    def status(self) -> dict[str, Any]:
        seconds = max(time.perf_counter() - self._t0, 1e-9)
        with self._lock:
            return {"in_flight": self.in_flight, "calls": self.calls,
                    "tok/s": f"{self.generated_tokens / seconds:.1f}"}

    def refresh(self) -> None:
        self.bar.set_postfix(self.status(), refresh=True)

    def _tick(self) -> None:
        while not self._stop.wait(PROGRESS_REFRESH_S):
            self.refresh()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.refresh()
        self.bar.close()


class Recorder:
    """Writes outcomes to the run directory and keeps the progress display current."""

    def __init__(self, rundir: RunDir, method: str, plan: WorkPlan, *, progress: bool = True,
                 max_infra_failures: int | None = None, bucket_spec: Any = None) -> None:
        self.rundir = rundir
        self.method = method
        # The run's `engines.base.BucketSpec`: the bases and fusion rule written into each weights sidecar.
        self.bucket_spec = bucket_spec
        self.max_infra_failures = max_infra_failures
        self.summary = RunSummary(counts={g: Counter() for g in plan.totals})
        self.progress = RunProgress(len(plan.todo), enabled=progress)
        self._bars: dict[str, tqdm] = {}
        for position, (group, total) in enumerate(plan.totals.items(), start=1):
            bar = tqdm(total=total, initial=plan.already_done[group], desc=group, position=position,
                       unit="q", disable=not progress, dynamic_ncols=True, leave=True)
            self._bars[group] = bar
            self._show(group)
        self._started: dict[str, float] = {}
        self._t0 = time.perf_counter()
        self.last_infrastructure_error: str | None = None

    @property
    def abort_reason(self) -> str | None:
        """Why no new query should start (None while the run may go on)."""
        return self.summary.abort_reason

    def _show(self, group: str) -> None:
        c = self.summary.counts[group]
        postfix = {"answered": c["answered"], "gave_up": c["gave_up"], "errors": c["errors"]}
        if c[INFRASTRUCTURE]:
            postfix["infra"] = c[INFRASTRUCTURE]
        self._bars[group].set_postfix(postfix, refresh=True)

    def started(self, item: WorkItem) -> None:
        self._started[item.key] = time.perf_counter()
        self.progress.in_flight += 1
        self.rundir.log("query_started", group=item.group, query_id=item.query.query_id)

    def _ended(self, item: WorkItem) -> float:
        self.progress.in_flight -= 1
        self.progress.bar.update(1)
        return time.perf_counter() - self._started.pop(item.key, time.perf_counter())

    def finished(self, item: WorkItem, result: SolveResult) -> None:
        # The answer file first: once it exists the query is finished, whatever happens next.
        self.rundir.write_answer(item.group, item.query.query_id, self.method, result.answer,
                                 encoding=result.encoding)
        if result.bucket_weights is not None and self.bucket_spec is not None:
            from toolbench_eval.runner.bucket_weights import sidecar

            self.rundir.write_bucket_weights(item.group, item.query.query_id, sidecar(
                self.bucket_spec.bases, self.bucket_spec.fusion, result.bucket_weights))
        seconds = self._ended(item)
        outcome = result.outcome
        generation = result.answer.get("answer_generation", {})
        self.progress.trajectory_finished(generation.get("query_count"), generation.get("total_tokens"))
        self.rundir.log("query_finished", group=item.group, query_id=item.query.query_id, outcome=outcome,
                        query_count=generation.get("query_count"), total_tokens=generation.get("total_tokens"),
                        seconds=round(seconds, 3))
        counts = self.summary.counts[item.group]
        counts["done"] += 1
        counts[outcome] += 1
        self._bars[item.group].update(1)
        self._show(item.group)

    def requeued(self, item: WorkItem, reason: str) -> None:
        """The query's worker was lost before it finished; it stays in flight and runs again elsewhere."""
        self.rundir.log("query_requeued", group=item.group, query_id=item.query.query_id, reason=reason[-1000:])

    def failed(self, item: WorkItem, error: BaseException, trace: str | None = None) -> None:
        seconds = self._ended(item)
        kind = INFRASTRUCTURE if is_infrastructure_failure(error) else "errors"
        trace = trace or "".join(traceback.format_exception(type(error), error, error.__traceback__))
        message = f"{type(error).__name__}: {error}"
        self.rundir.log("query_failed", group=item.group, query_id=item.query.query_id,
                        kind="error" if kind == "errors" else kind, error=message, traceback=trace[-4000:],
                        seconds=round(seconds, 3))
        self.summary.counts[item.group][kind] += 1
        self._show(item.group)
        if kind == INFRASTRUCTURE:
            self.last_infrastructure_error = message
            failures = self.summary.total(INFRASTRUCTURE)
            if self.max_infra_failures is not None and failures > self.max_infra_failures \
                    and self.summary.abort_reason is None:
                self.summary.abort_reason = (
                    f"{failures} queries failed because a tool server or the model's server was unavailable "
                    f"(more than --max-infra-failures {self.max_infra_failures}); last: {message}")
                self.rundir.log("run_aborted", reason=self.summary.abort_reason)

    def close(self) -> RunSummary:
        self.summary.seconds = time.perf_counter() - self._t0
        self.progress.close()
        for bar in self._bars.values():
            bar.close()
        return self.summary
