"""The `ray` executor's driver loop: queries to agent workers, and what happens when a worker is lost.

Each agent worker runs up to `concurrency` trajectories; the driver keeps every live worker that
busy, least-busy first, and records each outcome itself (answer file, then event), so an answer is
written once, by one process, whatever happens to the workers.

A worker can die mid-run (its node is lost, its process is killed). Its calls then fail with Ray's
actor-died error; those queries had no answer yet, so each goes back to the front of the queue and
runs again on a live worker (`query_requeued` event). The lost worker gets no more work until a probe
call comes back: Ray restarts a worker (`ray.max_restarts`) and the probe waits for that; a worker
dead for good (Ray's `ActorDiedError`) fails the probe and stays out. A query that loses its worker `MAX_REQUEUES` times is
recorded as an infrastructure failure (a re-run retries it), so a query that itself kills workers
cannot go round forever; with no worker left, the queries still queued are recorded the same way.

(`ray.util.ActorPool` does the least-busy hand-out, but one task per actor at a time and without
surviving a dead actor, hence this loop.)
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

from reasoning.protocols import InfrastructureError
from toolbench_eval.runner.driver import Recorder, WorkItem

MAX_REQUEUES = 3
# A lost worker Ray is restarting answers calls with `ActorUnavailableError` until it is up again: the probe
# asks again every RESTART_POLL_S, and counts the worker out after RESTART_WAIT_S (no room to restart it).
RESTART_POLL_S = 0.5
RESTART_WAIT_S = 300.0


def actor_gone(error: BaseException) -> bool:
    """True for Ray's actor-died errors (`RayActorError` and its `ActorDiedError` / `ActorUnavailableError`)."""
    try:
        from ray.exceptions import RayActorError
    except ImportError:
        return False
    return isinstance(error, RayActorError)


def worker_gone(error: BaseException) -> bool:
    """True when a call failed because the worker actor itself died or is restarting.

    An error raised inside the worker's own code arrives as a `RayTaskError`; Ray makes it an instance of
    its cause's class too, so an engine's actor-died error passed up through `solve` would look like the
    worker's own death without this check: the worker is alive, the query simply failed."""
    from ray.exceptions import RayTaskError

    return actor_gone(error) and not isinstance(error, RayTaskError)


def restarting(error: BaseException) -> bool:
    """True for Ray's "restarting, ask again later" error (the worker has restarts left)."""
    from ray.exceptions import ActorUnavailableError

    return isinstance(error, ActorUnavailableError)


async def await_ref(ref: Any) -> Any:
    """Await a Ray object ref (or any awaitable, as the tests' stand-in handles return)."""
    if hasattr(ref, "future"):
        return await asyncio.wrap_future(ref.future())
    return await ref


async def wait_for_restart(worker: Any, *, poll_s: float | None = None, wait_s: float | None = None) -> None:
    """Returns once a lost `worker` answers again (Ray restarted it); raises if it is dead for good (Ray's
    `ActorDiedError`) or still not back after `wait_s` (default `RESTART_WAIT_S`)."""
    poll_s = RESTART_POLL_S if poll_s is None else poll_s
    wait_s = RESTART_WAIT_S if wait_s is None else wait_s
    waited = 0.0
    while True:
        try:
            await await_ref(worker.ready.remote())
            return
        except Exception as error:
            if not restarting(error) or waited >= wait_s:
                raise
        await asyncio.sleep(poll_s)
        waited += poll_s


class AgentDispatcher:
    """Hands `items` to agent worker actors and records the outcomes; survives lost workers (module doc)."""

    def __init__(self, workers: Sequence[Any], concurrency: int, recorder: Recorder, *,
                 max_requeues: int = MAX_REQUEUES) -> None:
        self.workers = list(workers)
        self.concurrency = concurrency
        self.recorder = recorder
        self.max_requeues = max_requeues
        self.busy: dict[int, int] = {index: 0 for index in range(len(self.workers))}  # live workers only
        self.probes: dict[asyncio.Future, int] = {}  # lost workers waiting to come back
        self.pending: dict[asyncio.Future, tuple[WorkItem, int]] = {}
        self.queue: deque[WorkItem] = deque()
        self.started: set[str] = set()
        self.requeues: Counter[str] = Counter()
        self.workers_lost = 0

    async def run(self, items: Sequence[WorkItem]) -> dict[str, int]:
        self.queue.extend(items)
        while (self.queue and not self.recorder.abort_reason) or self.pending:
            self._hand_out()
            if not self.busy and not self.probes:
                self._fail_queued("every agent worker was lost")
            waiting = list(self.pending)
            if self.queue and not self.recorder.abort_reason:
                waiting += list(self.probes)  # only worth waiting for while work is left to give them
            if not waiting:
                break
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                if future in self.probes:
                    self._probe_answered(future)
                else:
                    self._outcome(future)
        for probe in self.probes:
            probe.cancel()
        return {"workers_lost": self.workers_lost, "queries_requeued": sum(self.requeues.values())}

    def _hand_out(self) -> None:
        while self.queue and not self.recorder.abort_reason and self.busy:
            index = min(self.busy, key=self.busy.__getitem__)
            if self.busy[index] >= self.concurrency:
                return
            item = self.queue.popleft()
            if item.key not in self.started:  # a requeued query was started once; its clock keeps running
                self.started.add(item.key)
                self.recorder.started(item)
            self.busy[index] += 1
            future = asyncio.ensure_future(await_ref(self.workers[index].solve.remote(item.query)))
            self.pending[future] = (item, index)

    def _outcome(self, future: asyncio.Future) -> None:
        item, index = self.pending.pop(future)
        if index in self.busy:
            self.busy[index] -= 1
        error = future.exception()
        if error is None:
            self.recorder.finished(item, future.result())
        elif worker_gone(error):
            self._worker_lost(index)
            self._requeue(item, error)
        else:
            self.recorder.failed(item, error, trace=str(error))

    def _worker_lost(self, index: int) -> None:
        """No more work for worker `index` until a probe call says Ray restarted it."""
        if index not in self.busy:
            return  # its other in-flight queries report the same loss
        del self.busy[index]
        self.workers_lost += 1
        probe = asyncio.ensure_future(wait_for_restart(self.workers[index]))
        self.probes[probe] = index

    def _probe_answered(self, probe: asyncio.Future) -> None:
        index = self.probes.pop(probe)
        if probe.exception() is None:
            self.busy[index] = 0  # restarted by Ray: back in the pool

    def _requeue(self, item: WorkItem, error: BaseException) -> None:
        self.requeues[item.key] += 1
        if self.requeues[item.key] > self.max_requeues:
            lost = InfrastructureError(f"lost its agent worker {self.requeues[item.key]} times; last: {error}")
            lost.__cause__ = error
            self.recorder.failed(item, lost, trace=str(error))
            return
        self.recorder.requeued(item, reason=f"{type(error).__name__}: {error}")
        self.queue.appendleft(item)  # first in line: its trajectory was already under way

    def _fail_queued(self, reason: str) -> None:
        """No live worker and none coming back: every queued query fails as infrastructure (a re-run retries)."""
        while self.queue:
            item = self.queue.popleft()
            if item.key not in self.started:
                self.started.add(item.key)
                self.recorder.started(item)
            self.recorder.failed(item, InfrastructureError(reason))
