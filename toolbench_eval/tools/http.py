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

Secrets: keys live in `Secret` objects (masked in `repr`/`str`), are only ever put into request
headers/bodies, and every text we produce passes through `redact`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from toolbench_eval.errors import UserError
from toolbench_eval.tools.base import Status

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


def secret_from_env(*names: str) -> Secret:
    """The first non-empty environment variable among `names`, as a `Secret` (empty when none is set)."""
    for name in names:
        value = os.environ.get(name, "")
        if value:
            return Secret(value)
    return Secret("")


def redact(text: str, secrets: Iterable[Secret]) -> str:
    """Replace every secret value in `text` by `***` (a last line of defence for error texts and logs).

    >>> redact("key=abc123 failed", [Secret("abc123")])
    'key=*** failed'
    """
    for secret in secrets:
        value = secret.reveal()
        if value:
            text = text.replace(value, "***")
    return text


def redact_value(value: Any, secrets: Iterable[Secret]) -> Any:
    """`redact` applied to every string inside a JSON-like value (a server might echo a key back).

    >>> redact_value({"echo": ["abc123", 1]}, [Secret("abc123")])
    {'echo': ['***', 1]}
    """
    secrets = tuple(s for s in secrets if s)
    if not secrets:
        return value
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, list):
        return [redact_value(item, secrets) for item in value]
    if isinstance(value, dict):
        return {redact_value(k, secrets): redact_value(v, secrets) for k, v in value.items()}
    return value


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


class HttpFailure(Exception):
    """A request that produced no usable reply, already classified as a ToolBench status and error text."""

    def __init__(self, status: Status, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


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
                await self._pace()
                outcome, retryable = await self._attempt(url, payload, headers)
                if isinstance(outcome, HttpReply):
                    return outcome
                if not retryable or attempt >= self.retry.max_retries:
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
            return HttpFailure(Status.TIMEOUT, TIMEOUT_ERROR), self.retry.retry_on_timeout
        except httpx.ConnectError as exc:
            reason = self._clean(str(exc) or type(exc).__name__)
            return HttpFailure(Status.NOT_WORKING, f"{NOT_WORKING_ERROR} (connection failed: {reason})"), True
        except httpx.HTTPError as exc:
            reason = self._clean(str(exc) or type(exc).__name__)
            return HttpFailure(Status.REQUEST_ERROR, f"{DATA_ERROR}. {reason}"), isinstance(
                exc, httpx.TransportError
            )
        code = response.status_code
        if code != 200:
            text = f"{DATA_ERROR}. status_code={code}"
            if code == 429:
                status = Status.TOO_MANY_REQUESTS
            elif code >= 500:
                status = Status.NOT_WORKING
            else:
                status = Status.REQUEST_ERROR
            return HttpFailure(status, text), code in self.retry.retry_statuses
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


def _safe_url(url: str) -> str:
    """The URL without its query string (where some services put keys)."""
    return url.split("?", 1)[0]
