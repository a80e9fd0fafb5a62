"""OpenAI SDK clients with our retry policy, and what their errors mean once the SDK has given up.

The SDK already retries what is worth retrying (HTTP 408/409/429/5xx, timeouts, connection errors) with
exponential backoff and jitter, honouring `Retry-After`. We hand it the number of attempts and the
per-attempt timeout and keep no retry loop of our own. Left to us:

- counting requests and retries (`stats["requests"]`, `stats["retries"]`) with an httpx event hook:
  the SDK numbers each retry in a request header, so the count is what went over the wire;
- telling a transient failure that outlasted every attempt (`gave_up`) from a refusal no retry fixes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import openai

log = logging.getLogger(__name__)

RETRY_COUNT_HEADER = "x-stainless-retry-count"  # set by the SDK on every request: 0, then 1, 2, ...
TRANSIENT_STATUSES = frozenset({408, 409, 429})  # with every 5xx: the statuses the SDK retries


class RequestCounter:
    """Counts every request a client sends into `stats`, and logs each retry (the SDK only logs at INFO)."""

    def __init__(self, stats: dict[str, int], *, where: str, attempts: int) -> None:
        self.stats = stats
        self.where = where
        self.attempts = attempts
        self._lock = threading.Lock()  # the judge shares one client between worker threads

    def __call__(self, request: Any) -> None:
        retry = int(request.headers.get(RETRY_COUNT_HEADER) or 0)
        with self._lock:
            self.stats["requests"] += 1
            self.stats["retries"] += bool(retry)
        if retry:
            log.warning("%s: retry %d/%d", self.where, retry, self.attempts - 1)

    async def async_hook(self, request: Any) -> None:  # an AsyncClient awaits its hooks
        self(request)


def sync_client(*, api_key: str, base_url: str | None, timeout: float, counter: RequestCounter) -> openai.OpenAI:
    """A client that makes `counter.attempts` tries (at least 1) of `timeout` seconds each."""
    return openai.OpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=counter.attempts - 1,
                         http_client=openai.DefaultHttpxClient(event_hooks={"request": [counter]}))


def async_client(*, api_key: str, base_url: str | None, timeout: float,
                 counter: RequestCounter) -> openai.AsyncOpenAI:
    """The async twin of `sync_client`."""
    hooks = {"request": [counter.async_hook]}
    return openai.AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout, max_retries=counter.attempts - 1,
                              http_client=openai.DefaultAsyncHttpxClient(event_hooks=hooks))


def gave_up(error: openai.APIStatusError | openai.APIConnectionError, scrub: Callable[[str], str]) -> str | None:
    """``"failed N times (last: ...)"`` when `error` is a transient failure the SDK retried until its attempts
    ran out; None when the server refused the request (no retry would help). `scrub` cleans the error text."""
    if isinstance(error, openai.APIStatusError):
        if error.status_code not in TRANSIENT_STATUSES and error.status_code < 500:
            return None
        last = f"HTTP {error.status_code}"
    else:  # connection errors and timeouts (APITimeoutError is an APIConnectionError)
        last = f"{type(error).__name__}: {scrub(str(error))}"
    attempts = int(error.request.headers.get(RETRY_COUNT_HEADER) or 0) + 1
    return f"failed {attempts} times (last: {last})"
