"""The tool-backend contract and the pieces every backend shares.

A backend executes one function call for one API of a query and returns an `Observation`
`{"error": str, "response": ...}` plus a ToolBench status code. Truncation to
`max_observation_length` (1,024 characters, with "..." appended, as upstream) happens in one
place: `render_observation`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from reasoning.protocols import InfrastructureError
from reasoning.step import MAX_OBSERVATION_LENGTH, cut_observation

# What a remote backend does when its server is unavailable (connection refused, 5xx/429 after retries,
# timeouts, the server rejecting our key): `fail` ends the trajectory as an infrastructure failure, so no
# answer is written and a re-run retries the query; `observe` hands the model the error text and status code,
# as upstream StableToolBench does (a dead server then reads as a model that failed to use its tools).
ON_UNAVAILABLE = ("fail", "observe")


class ToolServerUnavailable(InfrastructureError):
    """A remote tool backend's server could not serve a call (see `ON_UNAVAILABLE`)."""


class Status(IntEnum):
    """ToolBench `_step` status codes (StableToolBench `rapidapi.py`)."""

    OK = 0
    NO_SUCH_FUNCTION = 1
    BAD_INPUT = 2
    FINAL_ANSWER = 3
    GIVE_UP = 4
    TIMEOUT = 5
    NOT_WORKING = 6  # 404 / "API not working"
    UNAUTHORIZED = 7  # upstream code maps "Unauthorized error..." here
    UNSUBSCRIBED = 8  # upstream code maps "Unsubscribed error..." here
    TOO_MANY_REQUESTS = 9
    RATE_LIMIT = 10
    MESSAGE_ERROR = 11
    REQUEST_ERROR = 12


@dataclass(frozen=True)
class ToolCall:
    """A call of one API: names as in the query's api_list (unstandardized) and the parsed arguments.

    `raw_arguments` is the model's argument text as written, set under a protocol with `tool_input: raw`:
    a StableToolBench server then receives exactly that (upstream sends the text, not a re-serialisation)."""

    category_name: str
    tool_name: str
    api_name: str
    arguments: dict[str, Any]
    raw_arguments: str | None = None


@dataclass(frozen=True)
class Observation:
    """What an API call returned. `reply` is a server's whole JSON reply when there was one (upstream
    shows the model all of it), else None."""

    error: str
    response: Any
    status: Status = Status.OK
    reply: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {"error": self.error, "response": self.response}


OBSERVATION_FORMATS = ("unicode_error_response", "ascii_whole_reply")


def render_observation(observation: Observation, max_length: int = MAX_OBSERVATION_LENGTH,
                       observation_format: str = "unicode_error_response") -> str:
    """The observation text a model sees, cut to `max_length` characters with "..." appended (upstream
    `rapidapi_wrapper.step`). `unicode_error_response` (ours): the JSON of `{"error", "response"}` as UTF-8;
    `ascii_whole_reply` (upstream): `json.dumps` of the server's whole reply (every key, ASCII escapes).

    >>> render_observation(Observation("", "café", reply={"error": "", "response": "café", "id": 3}),
    ...                    observation_format="ascii_whole_reply")
    '{"error": "", "response": "caf\\\\u00e9", "id": 3}'
    """
    if observation_format == "ascii_whole_reply":
        reply = observation.reply if isinstance(observation.reply, dict) else observation.as_dict()
        text = json.dumps(reply)
    else:
        text = json.dumps(observation.as_dict(), ensure_ascii=False)
    return cut_observation(text, max_length)


class ToolBackend:
    """Executes API calls. Implementations never raise on bad arguments or bad responses: they
    return the error observation a real API (or server) would."""

    name: str = "backend"
    # True for servers that parse the model's argument text themselves (`ToolCall.raw_arguments`); other
    # backends get arguments that did not parse answered with upstream's parse-error observation.
    accepts_raw_arguments: bool = False

    async def call(self, call: ToolCall) -> Observation:
        raise NotImplementedError

    def for_trajectory(self) -> ToolBackend:
        """The backend one trajectory calls. A backend with per-trajectory state (LocalToolBench's flaky-API
        attempts) hands out a fresh view, so a trajectory's observations never depend on the others in flight."""
        return self

    async def close(self) -> None:
        """Release connections; the run calls it once at the end."""
