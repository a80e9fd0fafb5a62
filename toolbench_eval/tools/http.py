"""Async HTTP plumbing shared by the remote tool backends (stb, rapidapi, mirror).

One `HttpClient` per backend owns: per-attempt timeouts, retries with exponential backoff and
jitter, a limit on requests in flight, optional spacing between requests, and the translation of
every transport failure into a ToolBench status (`HttpFailure`), so a backend's `call` can turn
any failure into an `Observation` instead of raising.

Failure texts follow upstream `rapidapi_wrapper._step` (StableToolBench) so a model sees what it
would have seen there:

| what happened                          | status              | error text                                      |
|----------------------------------------|---------------------|-------------------------------------------------|
| timeout                                | TIMEOUT (5)         | `Timeout error...`                              |
| connection failed (after retries)      | NOT_WORKING (6)     | `API not working error... (connection failed)`  |
| HTTP 5xx (after retries)               | NOT_WORKING (6)     | `request invalid, data error. status_code=503`  |
| HTTP 429 (after retries)               | TOO_MANY_REQUESTS (9)| `request invalid, data error. status_code=429` |
| other non-200 / body not JSON          | REQUEST_ERROR (12)  | `request invalid, data error[. status_code=N]`  |

Upstream maps every non-200 to 12; we keep its text and give 5xx and 429 their meaningful codes.

A failure is also marked `unavailable` when it says the *server* cannot serve us (connection failed, timeout,
HTTP 401/403/404/407/408/429/5xx after retries): backends then raise `ToolServerUnavailable` (an
infrastructure failure, retried on resume) unless told to hand the error to the model as upstream does.
A circuit breaker stops calling a server that failed `breaker_threshold` calls in a row: for
`breaker_cooldown_s` every call fails at once, then one call tries again.

Secrets: keys live in `Secret` objects (masked in `repr`/`str`), are only ever put into request
headers/bodies, and every text we produce passes through `redact`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from toolbench_eval import redaction
from toolbench_eval.errors import UserError
from toolbench_eval.tools.base import ON_UNAVAILABLE, Observation, Status, ToolServerUnavailable

try:  # openai >= 3 ships httpx2 (same API); older stacks ship httpx. Either comes with `openai`.
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on the installed openai
    import httpx  # type: ignore[no-redef]

logger = logging.getLogger(__name__)

TIMEOUT_ERROR = "Timeout error..."
NOT_WORKING_ERROR = "API not working error..."
DATA_ERROR = "request invalid, data error"

# Upstream `_step`: the server's `error` string decides the status code; anything else is 0.
UPSTREAM_ERROR_STATUS: dict[str, Status] = {
    "API not working error...": Status.NOT_WORKING,
    "Unauthorized error...": Status.UNAUTHORIZED,
    "Unsubscribed error...": Status.UNSUBSCRIBED,
    "Too many requests error...": Status.TOO_MANY_REQUESTS,
    "Rate limit per minute error...": Status.RATE_LIMIT,
    "Message error...": Status.MESSAGE_ERROR,
}
# Upstream's server (`server.py: process_error`) emits "Rate limit error..." but `_step` only matches
# "Rate limit per minute error...", so real rate limits were scored as status 0. We fix that by default.
CORRECTED_ERROR_STATUS: dict[str, Status] = {
    **UPSTREAM_ERROR_STATUS,
    "Rate limit error...": Status.RATE_LIMIT,
}


def status_for_error(error: Any, *, upstream: bool = False) -> Status:
    """The ToolBench status for a server reply's `error` string (exact match, as upstream `_step`).

    >>> status_for_error("Unauthorized error...")
    <Status.UNAUTHORIZED: 7>
    >>> status_for_error("Rate limit error..."), status_for_error("Rate limit error...", upstream=True)
    (<Status.RATE_LIMIT: 10>, <Status.OK: 0>)
    >>> status_for_error("")
    <Status.OK: 0>
    """
    table = UPSTREAM_ERROR_STATUS if upstream else CORRECTED_ERROR_STATUS
    return table.get(error, Status.OK) if isinstance(error, str) else Status.OK


class Secret:
    """A credential that never shows itself: `repr`/`str`/f-strings give a mask; `reveal()` the value.

    >>> key = Secret("abc123")
    >>> f"{key}", repr(key), key.reveal(), bool(Secret(""))
    ('***', "Secret('***')", 'abc123', False)
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:  # f"{secret}" must mask too
        return "***"

    def __reduce__(self):  # never pickled into Ray payloads or result files by accident
        raise TypeError("Secret values cannot be pickled; read them from the environment where needed")


def redact(text: str, secrets: Iterable[Secret]) -> str:
    """The redaction rule (`toolbench_eval.redaction`) plus these `secrets`, however short.

    >>> redact("key=abc123 failed", [Secret("abc123")])
    'key=*** failed'
    """
    return redaction.redact(text, [secret.reveal() for secret in secrets])


def redact_value(value: Any, secrets: Iterable[Secret]) -> Any:
    """`redact` applied to every string inside a JSON-like value (a server might echo a key back).

    >>> redact_value({"echo": ["abc123", 1]}, [Secret("abc123")])
    {'echo': ['***', 1]}
    """
    return redaction.redact_value(value, [secret.reveal() for secret in secrets])


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry transient failures (connection errors, 5xx, 429).

    The wait before retry `n` (0-based) is uniform in `[d/2, d]` with `d = min(max_delay_s, base_delay_s * 2**n)`
    ("equal jitter"): exponential growth, but concurrent clients do not retry in lockstep.
    """

    max_retries: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    retry_statuses: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    retry_on_timeout: bool = False  # a timeout already cost the full timeout; retrying multiplies it

    def delay(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.max_delay_s, self.base_delay_s * (2**attempt))
        return rng.uniform(ceiling / 2, ceiling)


# HTTP statuses that say the server (or our access to it) is the problem, not the request the model made.
UNAVAILABLE_STATUSES = frozenset({401, 403, 404, 407, 408, 429}) | frozenset(range(500, 600))


class HttpFailure(Exception):
    """A request that produced no usable reply, already classified as a ToolBench status and error text;
    `unavailable` when the server itself could not serve it (see the module docstring)."""

    def __init__(self, status: Status, error: str, *, unavailable: bool = False) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.unavailable = unavailable


class CircuitBreaker:
    """Open after `threshold` unavailable failures in a row; while open (`cooldown_s`) calls fail at once.

    After the cool-down one call goes through: a success closes the breaker, a failure opens it again.

    >>> breaker = CircuitBreaker(threshold=2, cooldown_s=60, clock=lambda: 0.0)
    >>> breaker.record(False); breaker.record(False); breaker.open_for()
    60.0
    """

    def __init__(self, *, threshold: int = 5, cooldown_s: float = 30.0, clock=time.monotonic) -> None:
        if threshold < 1:
            raise UserError(f"breaker_threshold must be >= 1, got {threshold}")
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self.failures_in_a_row = 0
        self._opened_at: float | None = None

    def open_for(self) -> float:
        """Seconds the breaker stays open (0 when calls may go through)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown_s - self._clock())

    def record(self, ok: bool) -> None:
        if ok:
            self.failures_in_a_row, self._opened_at = 0, None
            return
        self.failures_in_a_row += 1
        if self.failures_in_a_row >= self.threshold:
            self._opened_at = self._clock()


@dataclass(frozen=True)
class HttpReply:
    """A 200 reply whose body parsed as JSON."""

    body: Any


class HttpClient:
    """Retrying, concurrency-limited JSON POSTs; every failure surfaces as `HttpFailure`.

    The underlying `AsyncClient` and semaphore are created lazily inside the running event loop
    (and re-created if a later call runs in a different loop, e.g. successive `asyncio.run`).
    """

    def __init__(
        self,
        *,
        timeout_s: float | None = 60.0,
        retry: RetryPolicy | None = None,
        max_concurrency: int = 8,
        min_interval_s: float = 0.0,
        secrets: Iterable[Secret] = (),
        trust_env: bool = True,
        seed: int | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise UserError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if timeout_s is not None and timeout_s <= 0:
            raise UserError(f"timeout_s must be > 0 (or null for no timeout), got {timeout_s}")
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.max_concurrency = max_concurrency
        self.min_interval_s = min_interval_s
        self.trust_env = trust_env
        self._secrets = tuple(secrets)
        self._rng = random.Random(seed)
        self.breaker = breaker or CircuitBreaker()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._semaphore: asyncio.Semaphore | None = None
        self._pace_lock: asyncio.Lock | None = None
        self._next_start = 0.0

    def __repr__(self) -> str:
        return (
            f"HttpClient(timeout_s={self.timeout_s}, max_retries={self.retry.max_retries}, "
            f"max_concurrency={self.max_concurrency})"
        )

    def _ensure_loop_state(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop and self._client is not None:
            return
        self._loop = loop
        self._client = httpx.AsyncClient(timeout=self.timeout_s, trust_env=self.trust_env)
        self._semaphore = asyncio.Semaphore(self.max_concurrency)
        self._pace_lock = asyncio.Lock()
        self._next_start = 0.0

    async def _pace(self) -> None:
        """Space request starts `min_interval_s` apart (upstream sleeps 2 s per call: 30 calls a minute)."""
        if self.min_interval_s <= 0:
            return
        assert self._pace_lock is not None
        async with self._pace_lock:
            now = time.monotonic()
            wait = self._next_start - now
            self._next_start = max(now, self._next_start) + self.min_interval_s
        if wait > 0:
            await asyncio.sleep(wait)

    def _clean(self, text: str) -> str:
        return redact(text, self._secrets)

    async def post_json(
        self, url: str, payload: Mapping[str, Any], *, headers: Mapping[str, str] | None = None
    ) -> HttpReply:
        """POST `payload` as JSON; return the parsed JSON of a 200 reply or raise `HttpFailure`."""
        self._ensure_loop_state()
        assert self._semaphore is not None
        async with self._semaphore:
            attempt = 0
            while True:
                closed_in = self.breaker.open_for()
                if closed_in > 0:
                    raise HttpFailure(Status.NOT_WORKING, (
                        f"{NOT_WORKING_ERROR} (circuit open: {self.breaker.failures_in_a_row} calls to "
                        f"{_safe_url(url)} failed in a row; not calling it for another {closed_in:.0f} s)"),
                        unavailable=True)
                await self._pace()
                outcome, retryable = await self._attempt(url, payload, headers)
                if isinstance(outcome, HttpReply):
                    self.breaker.record(True)
                    return outcome
                if not retryable or attempt >= self.retry.max_retries:
                    if outcome.unavailable:
                        self.breaker.record(False)
                    raise outcome
                delay = self.retry.delay(attempt, self._rng)
                logger.info(
                    "retrying %s in %.2fs after %s (retry %d of %d)",
                    _safe_url(url), delay, outcome.error, attempt + 1, self.retry.max_retries,
                )
                attempt += 1
                await asyncio.sleep(delay)

    async def _attempt(
        self, url: str, payload: Mapping[str, Any], headers: Mapping[str, str] | None
    ) -> tuple[HttpReply | HttpFailure, bool]:
        """One try: the reply, or (failure, whether retrying may help)."""
        try:
            response = await self._client.post(url, json=payload, headers=dict(headers or {}))
        except httpx.TimeoutException:
            return HttpFailure(Status.TIMEOUT, TIMEOUT_ERROR, unavailable=True), self.retry.retry_on_timeout
        except httpx.ConnectError as exc:
            reason = self._clean(str(exc) or type(exc).__name__)
            failure = HttpFailure(Status.NOT_WORKING, f"{NOT_WORKING_ERROR} (connection failed: {reason})",
                                  unavailable=True)
            return failure, True
        except httpx.HTTPError as exc:
            reason = self._clean(str(exc) or type(exc).__name__)
            transport = isinstance(exc, httpx.TransportError)
            return HttpFailure(Status.REQUEST_ERROR, f"{DATA_ERROR}. {reason}", unavailable=transport), transport
        code = response.status_code
        if code != 200:
            text = f"{DATA_ERROR}. status_code={code}"
            if code == 429:
                status = Status.TOO_MANY_REQUESTS
            elif code >= 500:
                status = Status.NOT_WORKING
            else:
                status = Status.REQUEST_ERROR
            failure = HttpFailure(status, text, unavailable=code in UNAVAILABLE_STATUSES)
            return failure, code in self.retry.retry_statuses
        try:
            return HttpReply(response.json()), False
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
            return HttpFailure(Status.REQUEST_ERROR, DATA_ERROR), False

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.aclose()
            except RuntimeError:  # its event loop is already gone; nothing left to release
                pass


def check_on_unavailable(backend: str, value: str) -> None:
    if value not in ON_UNAVAILABLE:
        raise UserError(f"tool backend {backend!r}: on_unavailable {value!r} is not one of {list(ON_UNAVAILABLE)} "
                        "(fail: retry the query on the next run; observe: show the model the error, as upstream)")


def unavailable_or_observation(backend: Any, failure: HttpFailure, secrets: Iterable[Secret]) -> Observation:
    """What a backend makes of a failed request: it raises `ToolServerUnavailable` when the server could not
    serve it (and the backend's `on_unavailable` is `fail`), else it returns the error observation."""
    error = redact(failure.error, secrets)
    if failure.unavailable and backend.on_unavailable == "fail":
        raise ToolServerUnavailable(f"tool backend {backend.name!r} is unavailable: {error}")
    return Observation(error=error, response="", status=failure.status)


def _safe_url(url: str) -> str:
    """The URL without its query string (where some services put keys)."""
    return url.split("?", 1)[0]
