"""The two things a reasoner talks to, as small protocols.

`reasoning` never imports an engine or a tool backend: the pipeline (`toolbench_eval`) adapts
its engines and backends to these protocols, and tests use scripted fakes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


class InfrastructureError(RuntimeError):
    """The service behind a `ModelClient` or `ToolEnvironment` is unavailable (connection refused, server
    errors after retries, a timeout): nobody's answer, least of all the model's.

    Reasoners let it through instead of turning it into an observation or a failed try, so the trajectory
    ends without an answer and the pipeline can record the query as an infrastructure failure and retry it.
    """


@dataclass
class ModelOutput:
    """One model decision: the raw text it wrote (parsed by `reasoning.parser`) and token counts.

    `call_id` names the tool call in `tool_calls` messages; None lets the reasoner draw one (a replayed
    answer file hands back the ids it recorded). `message` is set by native function-calling clients: the
    assistant message with its `tool_calls`, as the API returned it (`text` is then its content)."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    call_id: str | None = None
    message: dict[str, Any] | None = None


@runtime_checkable
class ModelClient(Protocol):
    """Produces the next assistant turn for a conversation.

    `messages` are OpenAI-style dicts (role system/user/assistant/function, content); `functions`
    are the query's function schemas, Finish included. The client renders them into a prompt
    (ToolLLaMA `System:/User:/Function:/Assistant:` or a chat template) and returns the raw text.
    `trajectory_id` identifies the conversation so an engine can reuse its KV prefix cache.
    """

    async def generate(
        self, messages: list[dict[str, Any]], functions: list[dict[str, Any]], *, trajectory_id: str
    ) -> ModelOutput: ...


@dataclass
class ToolResult:
    """What an API call returned: the observation text the model will see (already truncated)
    and the ToolBench status code (0 ok, 1 no such function, 2 bad input, 5-12 API failures)."""

    observation: str
    status: int = 0


@runtime_checkable
class ToolEnvironment(Protocol):
    """Executes the query's real APIs by function name (`<api>_for_<tool>`), never Finish:
    the reasoner handles Finish, unknown names and unparseable arguments itself, as upstream's
    `_step` does. Under a protocol with `tool_input: raw` the reasoner passes the model's argument text as
    written (`raw_arguments`) and `arguments` is its strict parse, None when that failed: the environment
    then answers the server's parse error, as StableToolBench's server does."""

    async def call(self, function_name: str, arguments: dict[str, Any] | None, *,
                   raw_arguments: str | None = None) -> ToolResult: ...
