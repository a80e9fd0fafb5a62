"""Adapters from the pipeline's engines and tool backends to the reasoner's protocols.

- `EngineModelClient` is a `reasoning.protocols.ModelClient`: it renders the conversation into one
  prompt (ToolLLaMA `System:/User:/Function:/Assistant:` layout by default, the tokenizer's chat
  template optionally) and asks an `Engine` for one completion, keyed by the trajectory id so the
  engine can reuse that trajectory's KV prefix.
- `BackendToolEnvironment` is a `reasoning.protocols.ToolEnvironment`: it maps a schema function
  name (`<api>_for_<tool>`) back to the original category/tool/API names and parameter names,
  calls a `ToolBackend`, and renders the observation (1,024-char cut) with `render_observation`
  in the protocol's `observation_format`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from reasoning.action_grammar import check_level, react_action_grammar
from reasoning.eval_protocol import ROLE_LINE_STOP, TOOLBENCH_EVAL, EvalProtocol
from reasoning.prompts import bare_functions
from reasoning.protocols import InfrastructureError, ModelOutput, ToolResult
from reasoning.step import TOOL_INPUT_PARSE_ERROR, error_observation
from toolbench_eval.engines.base import Engine, SamplingParams
from toolbench_eval.errors import UserError
from toolbench_eval.runner.bucket_weights import CallWeights
from toolbench_eval.tools.base import (
    MAX_OBSERVATION_LENGTH,
    Observation,
    Status,
    ToolBackend,
    ToolCall,
    render_observation,
)

# Where a ToolLLaMA-style completion must end under our protocol: the model's turn is over once it starts
# writing the next role line (models not trained to emit EOS keep going otherwise). `</s>` is upstream's stop.
TOOLLLAMA_STOP: tuple[str, ...] = ROLE_LINE_STOP

PromptRenderer = Callable[[list[dict[str, Any]], list[dict[str, Any]]], str]


def toolllama_renderer(assistant_layout: str = "newline") -> PromptRenderer:
    """The ToolLLaMA layout from `reasoning.prompts` (the system message already lists the functions), with
    the protocol's `assistant_layout`."""
    from reasoning.prompts import render_toolllama_prompt

    def render(messages: list[dict[str, Any]], functions: list[dict[str, Any]]) -> str:
        return render_toolllama_prompt(messages, assistant_layout=assistant_layout)

    return render


def chat_template_renderer(tokenizer: Any) -> PromptRenderer:
    """The model's own chat template, via `reasoning.prompts.render_chat_template` (functions as tools)."""
    from reasoning.prompts import render_chat_template

    def render(messages: list[dict[str, Any]], functions: list[dict[str, Any]]) -> str:
        return render_chat_template(tokenizer, messages, functions)

    return render


class EngineModelClient:
    """`ModelClient` over an `Engine`: one prompt per call, `cache_keys=[trajectory_id]`.

    `constrain` (`reasoning.action_grammar` level: off, names, arguments) asks the engine to decode each
    step inside the ReAct grammar of the call's functions."""

    def __init__(self, engine: Engine, params: SamplingParams, render: PromptRenderer, *,
                 constrain: str = "off", weights: CallWeights | None = None) -> None:
        self.engine = engine
        self.params = params
        self.render = render
        self.constrain = check_level(constrain)
        self.calls = 0
        self.weights = weights  # set: each completion's bucket weights are kept here (`record_bucket_weights`)

    async def generate(
        self, messages: list[dict[str, Any]], functions: list[dict[str, Any]], *, trajectory_id: str
    ) -> ModelOutput:
        prompt = self.render(messages, functions)
        self.calls += 1
        params = self.params
        if self.constrain != "off":
            params = dataclasses.replace(params, grammar=react_action_grammar(bare_functions(functions), self.constrain))
        call = self.weights.begin() if self.weights is not None else None
        [completion] = await self.engine.generate([prompt], params, cache_keys=[trajectory_id])
        if self.weights is not None:
            self.weights.record(call, completion.bucket_weights)
        return ModelOutput(
            text=completion.text,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
        )


class NativeToolsClient:
    """`ModelClient` for native function calling: the conversation goes to the engine's `chat` with the
    functions as OpenAI `tools`; the reply is the assistant message with its `tool_calls`.

    What is sent is what StableToolBench's `chat_completion_request` sends: the messages as recorded (the
    reasoner already left out invalid ones), without `function_call`."""

    def __init__(self, engine: Engine, params: SamplingParams, *, upstream_request: bool,
                 constrain: str = "off", weights: CallWeights | None = None) -> None:
        self.engine = engine  # one with `chat` (`Agent` checks that before any query runs)
        self.params = params
        self.upstream_request = upstream_request
        self.constrain = check_level(constrain)
        self.calls = 0
        self.weights = weights  # as `EngineModelClient.weights`

    async def generate(
        self, messages: list[dict[str, Any]], functions: list[dict[str, Any]], *, trajectory_id: str
    ) -> ModelOutput:
        tools = [{"type": "function", "function": function} for function in bare_functions(functions)]
        sent = [{key: value for key, value in message.items() if key != "function_call"} for message in messages]
        self.calls += 1
        call = self.weights.begin() if self.weights is not None else None
        reply = await self.engine.chat(sent, tools, self.params, upstream_request=self.upstream_request,
                                       constrain=self.constrain)
        if self.weights is not None:
            self.weights.record(call, reply.bucket_weights)
        content = reply.message.get("content")
        return ModelOutput(text=content if isinstance(content, str) else "", prompt_tokens=reply.prompt_tokens,
                           completion_tokens=reply.completion_tokens, message=dict(reply.message))


@dataclass(frozen=True)
class FunctionTarget:
    """What a schema function name stands for: original names, and schema -> original parameter names."""

    category_name: str
    tool_name: str
    api_name: str
    parameter_names: Mapping[str, str] = field(default_factory=dict)


def coerce_target(value: Any) -> FunctionTarget:
    """Accept the schema index's entries (an object with the names, or a tuple) as a `FunctionTarget`."""
    if isinstance(value, FunctionTarget):
        return value
    if isinstance(value, (tuple, list)):
        category, tool, api, *rest = value
        return FunctionTarget(category, tool, api, dict(rest[0]) if rest else {})
    params = None
    for attr in ("parameter_names", "param_names", "parameters", "param_map", "parameter_map"):
        params = getattr(value, attr, None)
        if isinstance(params, Mapping):
            break
    return FunctionTarget(
        value.category_name, value.tool_name, value.api_name, dict(params) if isinstance(params, Mapping) else {}
    )


class BackendToolEnvironment:
    """`ToolEnvironment` over a `ToolBackend` for one query's functions."""

    def __init__(
        self,
        backend: ToolBackend,
        index: Mapping[str, Any],
        *,
        max_observation_length: int = MAX_OBSERVATION_LENGTH,
        protocol: EvalProtocol = TOOLBENCH_EVAL,
    ) -> None:
        self.backend = backend
        self.index = {name: coerce_target(target) for name, target in index.items()}
        self.max_observation_length = max_observation_length
        self.observation_format = protocol.observation_format
        self.bad_input_status = protocol.bad_input_status
        self.calls: list[ToolCall] = []

    def to_call(self, function_name: str, arguments: Mapping[str, Any],
                raw_arguments: str | None = None) -> ToolCall | None:
        target = self.index.get(function_name)
        if target is None:
            return None
        # Unknown argument names pass through unchanged: the API answers them as a real one would.
        original = {target.parameter_names.get(k, k): v for k, v in arguments.items()}
        return ToolCall(target.category_name, target.tool_name, target.api_name, original, raw_arguments)

    async def call(self, function_name: str, arguments: dict[str, Any] | None, *,
                   raw_arguments: str | None = None) -> ToolResult:
        if arguments is None and not self.backend.accepts_raw_arguments:
            # Unparseable text under `tool_input: raw`, for a backend that cannot take text: answer what
            # StableToolBench's server answers.
            return ToolResult(observation=error_observation(TOOL_INPUT_PARSE_ERROR), status=self.bad_input_status)
        call = self.to_call(function_name, arguments if isinstance(arguments, Mapping) else {}, raw_arguments)
        if call is None:
            # The reasoner normally catches unknown names itself; same text and code as upstream `_step`.
            return ToolResult(observation=error_observation(f"No such function name: {function_name}"),
                              status=int(Status.NO_SUCH_FUNCTION))
        self.calls.append(call)
        try:
            observation = await self.backend.call(call)
        except InfrastructureError:
            raise  # the server is down: the query is retried later, not answered from an error observation
        except Exception as error:  # noqa: BLE001 -- a backend bug must not end the trajectory: the model sees an error
            observation = Observation(
                error=f"Request error: {type(error).__name__}: {error}", response="", status=Status.REQUEST_ERROR
            )
        return ToolResult(
            observation=render_observation(observation, self.max_observation_length, self.observation_format),
            status=int(observation.status),
        )


def sampling_params(decoding: Mapping[str, Any], *, protocol: EvalProtocol = TOOLBENCH_EVAL,
                    seed: int | None = None) -> SamplingParams:
    """SamplingParams from the config's `decoding` block and the protocol's stop strings, prompt truncation
    and first-token EOS rule (unknown keys are an error upstream of here)."""
    stop = protocol.stop
    extra_stop = tuple(decoding.get("stop", ()) or ())
    try:
        return SamplingParams(
            truncate_prompt_tokens=protocol.truncate_prompt_tokens or None,
            min_new_tokens=1 if protocol.eos_first_token == "continue" else 0,
            max_new_tokens=int(decoding.get("max_new_tokens", 1024)),
            temperature=float(decoding.get("temperature", 0.0)),
            top_p=float(decoding.get("top_p", 1.0)),
            stop=tuple(dict.fromkeys((*stop, *extra_stop))),
            seed=seed,
        )
    except ValueError as error:  # e.g. a negative temperature
        raise UserError(f"decoding: {error}; fix the decoding settings (config `decoding:` or --gen-kwargs)") from None
