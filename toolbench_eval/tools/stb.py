"""`stb` backend: a StableToolBench virtual API server (`server/main.py`, `POST /virtual`).

The request is the one upstream's `rapidapi_wrapper._step` sends (and the ToolBench RapidAPI proxy
accepts, see `rapidapi.py`):

    POST <url>   header  toolbench_key: <key>
    {"category": <category as in the query's api_list>,
     "tool_name": <standardize(tool_name)>,            # the tool JSON file stem
     "api_name": <change_name(standardize(api_name))>,
     "tool_input": <the arguments as a JSON string>,
     "strip": "truncate" | "filter" | "random",        # upstream --observ_compress_method
     "toolbench_key": <key>}

and the reply is `{"error": str, "response": ...}`; its `error` string sets the status code as in
`_step`. The server standardizes the category itself, so the category goes out as written.

Under a protocol with `tool_input: raw` (`stabletoolbench`) `tool_input` is the model's argument text
as written, as upstream sends it. Otherwise argument names go out standardized
(`change_name(standardize(name))`, the names the model saw in the function schema) and re-serialised;
the server's cache is keyed by the parsed arguments, so the standardized names hit entries the model's
own spelling of an original name would miss.

The URL comes from the `url` option or the `SERVICE_URL` environment variable (as upstream); the
key from `TOOLBENCH_KEY` (an STB server only forwards it to the real RapidAPI proxy on a cache
miss, so it may be empty).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from toolbench_eval.api_keys import key_from_env
from toolbench_eval.benchmark.naming import change_name, parameter_name, standardize
from toolbench_eval.errors import UserError
from toolbench_eval.tools.base import Observation, Status, ToolBackend, ToolCall
from toolbench_eval.tools.http import (
    DATA_ERROR,
    CircuitBreaker,
    HttpClient,
    HttpFailure,
    RetryPolicy,
    Secret,
    check_on_unavailable,
    redact_value,
    status_for_error,
    unavailable_or_observation,
)

logger = logging.getLogger(__name__)

STRIP_METHODS = ("truncate", "filter", "random")
# How HTTP failures become status codes: `classified` (ours: 429 -> 9, 5xx -> 6 after retries, other non-200
# -> 12) or `upstream` (`_step`: one try, every non-200 reply -> 12).
HTTP_FAILURES = ("classified", "upstream")
SERVICE_URL_ENV = "SERVICE_URL"


def standardize_arguments(arguments: dict[str, Any]) -> dict[str, Any]:
    """Top-level argument names as the function schema shows them; values untouched, order kept.

    >>> standardize_arguments({"Start Date": "2024-01-01", "id": 3})
    {'start_date': '2024-01-01', 'is_id': 3}
    """
    return {parameter_name(str(name)): value for name, value in arguments.items()}


def toolbench_payload(
    call: ToolCall, *, strip: str, key: Secret, standardize_argument_names: bool = True
) -> dict[str, Any]:
    """The JSON body upstream `_step` posts for `call` (see the module docstring).

    >>> body = toolbench_payload(ToolCall("Data", "Weather API", "Get Forecast", {"City": "Paris"}),
    ...                          strip="truncate", key=Secret(""))
    >>> body["tool_name"], body["api_name"], body["tool_input"]
    ('weather_api', 'get_forecast', '{"city": "Paris"}')
    """
    if call.raw_arguments is not None:
        tool_input = call.raw_arguments
    else:
        arguments = standardize_arguments(call.arguments) if standardize_argument_names else dict(call.arguments)
        tool_input = json.dumps(arguments, ensure_ascii=False)
    return {
        "category": call.category_name,
        "tool_name": standardize(call.tool_name),
        "api_name": change_name(standardize(call.api_name)),
        "tool_input": tool_input,
        "strip": strip,
        "toolbench_key": key.reveal(),
    }


def observation_from_reply(body: Any, *, upstream_status: bool = False) -> Observation:
    """Turn a server's JSON reply into an Observation; a reply without the `{error, response}` shape is
    a data error (status 12) rather than a crash."""
    if not isinstance(body, dict) or not ("error" in body or "response" in body):
        return Observation(error=DATA_ERROR, response="", status=Status.REQUEST_ERROR)
    error = body.get("error", "")
    error = error if isinstance(error, str) else json.dumps(error, ensure_ascii=False)
    return Observation(error=error, response=body.get("response", ""),
                       status=status_for_error(error, upstream=upstream_status), reply=body)


class ToolBenchServerBackend(ToolBackend):
    """Shared client for servers speaking the ToolBench `{category, tool_name, ...}` protocol."""

    name = "toolbench-server"
    # Takes the model's argument text as written (`ToolCall.raw_arguments`): the server parses it itself.
    accepts_raw_arguments = True

    def __init__(
        self,
        url: str,
        *,
        key: Secret,
        strip: str = "truncate",
        timeout_s: float | None = 120.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        max_concurrency: int = 8,
        min_interval_s: float = 0.0,
        standardize_argument_names: bool = True,
        upstream_status: bool = False,
        http_failures: str = "classified",
        trust_env: bool = True,
        on_unavailable: str = "fail",
        breaker_threshold: int = 5,
        breaker_cooldown_s: float = 30.0,
    ) -> None:
        check_on_unavailable(self.name, on_unavailable)
        if http_failures not in HTTP_FAILURES:
            raise UserError(f"{self.name} backend: http_failures {http_failures!r} is not one of {list(HTTP_FAILURES)}")
        self.on_unavailable = on_unavailable
        self.http_failures = http_failures
        if http_failures == "upstream":
            max_retries = 0  # upstream `_step` posts once
        if not url:
            raise UserError(f"{self.name} backend: no server URL; set the `url` option or ${SERVICE_URL_ENV}")
        if strip not in STRIP_METHODS:
            raise UserError(f"{self.name} backend: strip {strip!r} is not one of {list(STRIP_METHODS)}")
        self.url = url
        self.strip = strip
        self.standardize_argument_names = standardize_argument_names
        self.upstream_status = upstream_status
        self._key = key
        self._http = HttpClient(
            timeout_s=timeout_s,
            retry=RetryPolicy(max_retries=max_retries, base_delay_s=backoff_s, max_delay_s=max_backoff_s),
            max_concurrency=max_concurrency,
            min_interval_s=min_interval_s,
            secrets=(key,),
            trust_env=trust_env,
            breaker=CircuitBreaker(threshold=breaker_threshold, cooldown_s=breaker_cooldown_s),
        )

    def __repr__(self) -> str:
        key_state = "set" if self._key else "unset"
        return f"{type(self).__name__}(url={self.url!r}, strip={self.strip!r}, key=<{key_state}>)"

    async def call(self, call: ToolCall) -> Observation:
        try:
            payload = toolbench_payload(
                call, strip=self.strip, key=self._key, standardize_argument_names=self.standardize_argument_names
            )
        except (TypeError, ValueError) as exc:  # arguments that are not JSON (never produced by json.loads)
            return Observation(error=f"Tool input parse error...\n{exc}", response="", status=Status.BAD_INPUT)
        headers = {"toolbench_key": self._key.reveal()}
        try:
            reply = await self._http.post_json(self.url, payload, headers=headers)
        except HttpFailure as failure:
            logger.info("%s %s/%s: %s", self.name, payload["tool_name"], payload["api_name"], failure.error)
            if self.http_failures == "upstream" and failure.error.startswith(DATA_ERROR):
                # Upstream gives every non-200 reply (and an unreadable body) status 12.
                failure = HttpFailure(Status.REQUEST_ERROR, failure.error, unavailable=failure.unavailable)
            return unavailable_or_observation(self, failure, (self._key,))
        body = redact_value(reply.body, (self._key,))
        observation = observation_from_reply(body, upstream_status=self.upstream_status)
        logger.debug("%s %s/%s -> status %d", self.name, payload["tool_name"], payload["api_name"],
                     observation.status)
        return observation

    async def close(self) -> None:
        await self._http.close()


class STBServerBackend(ToolBenchServerBackend):
    """A StableToolBench `/virtual` server (cache, then real API, then GPT simulation), or a MirrorAPI
    server (`main_mirrorapi.py`), which speaks the same protocol.

    Upstream waits forever on `/virtual`; we default to a generous 120 s so a hung server becomes a
    TIMEOUT observation instead of a hung run.
    """

    name = "stb"

    def __init__(self, url: str | None = None, *, key_env: str = "TOOLBENCH_KEY", **options: Any) -> None:
        super().__init__(url or os.environ.get(SERVICE_URL_ENV, ""), key=Secret(key_from_env(key_env)), **options)
