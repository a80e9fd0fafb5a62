"""One function call of the model, executed the way StableToolBench's `rapidapi_wrapper._step` does.

Status codes (upstream's `_step` docstring): 0 normal, 1 no such function, 2 error in the input,
3 final answer, 4 give up (prunes the node), 5-12 API failures (reported by the tool environment).

- `Finish`: the arguments are read with `json.loads(strict=False)`, falling back to upstream's string
  search; `give_up_and_restart` -> 4, `give_answer` with `final_answer` -> 3, otherwise 2, with
  upstream's observation texts (including their odd quoting).
- An unknown function name -> 1 with `{"error": "No such function name: <name>", "response": ""}`.
  The protocol's `name_matching` decides: `exact` (ours) or `suffix` (upstream's `endswith`).
- Arguments that are not a JSON object -> `{"error": "Tool input parse error...\\n", "response": ""}`,
  the text StableToolBench's server answers with (empty arguments mean `{}`, as there), with the
  protocol's `bad_input_status` (upstream records the server's reply as 0; ours says 2, "error in the
  input"). With `tool_input: parsed` we parse leniently (`strict=False`) and answer that ourselves; with
  `raw` the tool environment gets the model's text as written plus a strict parse (None when it fails),
  and answers as upstream's server does.
- Otherwise the `ToolEnvironment` is called; if it raises, the model sees a request error (12).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from reasoning.eval_protocol import TOOLBENCH_EVAL, EvalProtocol
from reasoning.parser import match_function_name
from reasoning.protocols import InfrastructureError, ToolEnvironment

FINISH = "Finish"
GIVE_ANSWER = "give_answer"
GIVE_UP = "give_up_and_restart"
HALLUCINATED_NAME = "invalid_hallucination_function_name"

FINISH_MISSING_RETURN_TYPE = '{error:"must have "return_type""}'
FINISH_GIVE_UP = '{"response":"chose to give up and restart"}'
FINISH_MISSING_ANSWER = '{error:"must have "final_answer""}'
FINISH_ANSWERED = '{"response":"successfully giving the final answer."}'
FINISH_BAD_RETURN_TYPE = '{error:""return_type" is not a valid choice"}'
TOOL_INPUT_PARSE_ERROR = "Tool input parse error...\n"

STATUS_OK = 0
STATUS_NO_SUCH_FUNCTION = 1
STATUS_BAD_INPUT = 2
STATUS_FINAL_ANSWER = 3
STATUS_GIVE_UP = 4
STATUS_REQUEST_ERROR = 12


@dataclass(frozen=True)
class StepResult:
    observation: str
    status: int


# Upstream cuts every observation `step` returns to this many characters and appends "...".
MAX_OBSERVATION_LENGTH = 1024


def cut_observation(observation: str, max_length: int = MAX_OBSERVATION_LENGTH) -> str:
    """`observation` cut to `max_length` characters plus "..." when longer (upstream `rapidapi_wrapper.step`)."""
    return observation[:max_length] + "..." if len(observation) > max_length else observation


def error_observation(error: str) -> str:
    """An observation in the tool servers' shape: `{"error": ..., "response": ""}`."""
    return json.dumps({"error": error, "response": ""})


def _finish_fields(action_input: str) -> dict[str, Any]:
    try:
        data = json.loads(action_input, strict=False)
    except (ValueError, TypeError, RecursionError):
        data = None
    if isinstance(data, dict):
        return data
    # Upstream's fallback for arguments that are not JSON: look for the two fields as text.
    fields: dict[str, Any] = {}
    if not isinstance(action_input, str):
        return fields
    marker = '"return_type": "'
    if marker in action_input:
        if '"return_type": "give_answer"' in action_input:
            fields["return_type"] = GIVE_ANSWER
        elif '"return_type": "give_up_and_restart"' in action_input:
            fields["return_type"] = GIVE_UP
        else:
            start = action_input.find(marker) + len(marker)
            fields["return_type"] = action_input[start:action_input.find('",')]
    answer_marker = '"final_answer": "'
    if answer_marker in action_input:
        fields["final_answer"] = action_input[action_input.find(answer_marker) + len(answer_marker):]
    return fields


def finish_step(action_input: str) -> StepResult:
    """The outcome of a `Finish` call.

    >>> finish_step('{"return_type": "give_answer", "final_answer": "42"}').status
    3
    >>> finish_step('{"return_type": "give_up_and_restart"}').observation
    '{"response":"chose to give up and restart"}'
    """
    fields = _finish_fields(action_input)
    if "return_type" not in fields:
        return StepResult(FINISH_MISSING_RETURN_TYPE, STATUS_BAD_INPUT)
    if fields["return_type"] == GIVE_UP:
        return StepResult(FINISH_GIVE_UP, STATUS_GIVE_UP)
    if fields["return_type"] == GIVE_ANSWER:
        if "final_answer" not in fields:
            return StepResult(FINISH_MISSING_ANSWER, STATUS_BAD_INPUT)
        return StepResult(FINISH_ANSWERED, STATUS_FINAL_ANSWER)
    return StepResult(FINISH_BAD_RETURN_TYPE, STATUS_BAD_INPUT)


def parse_arguments(action_input: str, *, strict: bool = False) -> dict[str, Any] | None:
    """The call's arguments as a dict, or None when they are not a JSON object ("" means {}; with
    `strict`, as StableToolBench's server parses them: only "" is empty, control characters in strings
    are errors).

    >>> parse_arguments(""), parse_arguments('{"q": "x"}'), parse_arguments("q=x")
    ({}, {'q': 'x'}, None)
    >>> parse_arguments(" "), parse_arguments(" ", strict=True)
    ({}, None)
    """
    if not isinstance(action_input, str):
        return None
    if action_input == "" or (not strict and action_input.strip() == ""):
        return {}
    try:
        value = json.loads(action_input, strict=strict)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


async def execute_step(action_name: str, action_input: str, function_names: list[str], env: ToolEnvironment,
                       *, protocol: EvalProtocol = TOOLBENCH_EVAL) -> StepResult:
    """Run one call: Finish, unknown name, bad arguments, or the real API through `env`. Under
    `cut_all_observations` every observation is cut, as upstream's `step` cuts whatever `_step` returns."""
    result = await _run_step(action_name, action_input, function_names, env, protocol)
    if protocol.cut_all_observations:
        return StepResult(cut_observation(result.observation), result.status)
    return result


async def _run_step(action_name: str, action_input: str, function_names: list[str], env: ToolEnvironment,
                    protocol: EvalProtocol) -> StepResult:
    if action_name == FINISH:
        return finish_step(action_input)
    # Finish is left out of the candidates: upstream's `endswith` could match it and then crash (KeyError).
    callable_names = [name for name in function_names if name != FINISH]
    name = match_function_name(action_name, callable_names, suffix_match=protocol.name_matching == "suffix")
    if name is None:
        return StepResult(error_observation(f"No such function name: {action_name}"), STATUS_NO_SUCH_FUNCTION)
    try:
        if protocol.tool_input == "raw":
            # As upstream: the text goes to the tool server, which parses it (and answers a parse error).
            result = await env.call(name, parse_arguments(action_input, strict=True), raw_arguments=action_input)
        else:
            arguments = parse_arguments(action_input)
            if arguments is None:
                return StepResult(error_observation(TOOL_INPUT_PARSE_ERROR), protocol.bad_input_status)
            result = await env.call(name, arguments)
        observation, status = result.observation, int(result.status)
    except InfrastructureError:
        raise  # the tool server is down: no observation the model could be scored on
    except Exception as error:  # noqa: BLE001  (a tool environment bug must not end the trajectory)
        return StepResult(error_observation(f"Request error: {type(error).__name__}: {error}"),
                          STATUS_REQUEST_ERROR)
    if not isinstance(observation, str):
        observation = json.dumps(observation, ensure_ascii=False, default=str)
    return StepResult(observation, status)
