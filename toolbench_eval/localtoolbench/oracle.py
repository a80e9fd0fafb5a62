"""The oracle planner: expert trajectories for train queries, executed on the real tools.

It follows a query's ground-truth call plan through `LocalBackend`, reading resolved ids from the
observations it actually got, and writes ToolBench answer-style messages (system, user, then per
step an assistant `Thought` with a `function_call` and the truncated `function` observation, ending
with `Finish(give_answer)`). Function names, schemas and the system prompt come from the shared
pipeline code (`toolbench_eval.benchmark.schemas`, `reasoning.prompts`), so training sees exactly
what inference shows. Some trajectories show recoveries:

- a flaky API fails (rate limit, 500, timeout) and the same call is retried;
- a first call has a wrong or missing argument, the API says so, and the call is corrected;
- a dead-end call (a broken API, or a lookup that finds nothing) is followed by
  `Finish(give_up_and_restart)`, the DFSDT diversity prompt, and a fresh, correct chain.

The deliberate mistakes in those recoveries (the call with the wrong argument, the dead-end call) carry
`"weight": 0`, the chat fine-tuning convention for an assistant message that stays in the context but
is not a target: a model should learn to recover from them, not to make them. A flaky API's failed
first attempt is no mistake (the call was right) and keeps its weight.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

from reasoning.prompts import DIVERSITY_PROMPT, initial_messages
from reasoning.step import FINISH_GIVE_UP
from toolbench_eval.benchmark.loader import parse_query
from toolbench_eval.benchmark.naming import function_name, standardize
from toolbench_eval.benchmark.schemas import FINISH_NAME, ToolMap, build_function_index, tool_descriptions
from toolbench_eval.localtoolbench.backend import LocalBackend
from toolbench_eval.localtoolbench.thoughts import LOOKUP_NOTE, call_thought, lookup_thought
from toolbench_eval.tools.base import Status, ToolCall, render_observation

FAILED_STATUSES = {Status.TIMEOUT, Status.NOT_WORKING, Status.TOO_MANY_REQUESTS, Status.RATE_LIMIT}
WRONG_NAMES = {"city": "city_name", "location": "city", "q": "city", "title": "name", "name": "query",
               "symbol": "ticker", "ticker": "symbol", "query": "keyword", "keywords": "query"}


class OracleError(RuntimeError):
    """The plan did not reproduce (a bug in the world, never a user error)."""


@dataclass
class Trajectory:
    messages: list[dict[str, Any]]
    functions: list[dict[str, Any]]
    style: str
    failed_calls: int = 0
    observations: list[str] = field(default_factory=list)


def _short(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value


def _args_text(arguments: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_short(v)}" for k, v in arguments.items()) or "no arguments"


class Oracle:
    def __init__(self, backend: LocalBackend, tools: ToolMap):
        self.backend = backend
        self.tools = tools

    def solve(self, record: dict[str, Any], group: str, answer: str, rng: random.Random) -> Trajectory:
        query = parse_query(record, group)
        index = build_function_index(query, self.tools)
        functions = index.functions
        messages = initial_messages(query.query, tool_descriptions(query, self.tools), functions, toolllama=True)
        self.backend.reset_attempts()
        plan = record["ground_truth"]["call_plan"]
        roll = rng.random()
        style = "restart" if roll < 0.12 else "bad_arguments" if roll < 0.32 else "clean"
        trajectory = Trajectory(messages, functions, style)

        def call(name: str, arguments: dict[str, Any], thought: str, mistake: bool = False) -> tuple[str, Status, Any]:
            target = index[name]
            observation = self.backend.call_sync(ToolCall(target.category_name, target.tool_name, target.api_name,
                                                          target.original_arguments(arguments)))
            text = render_observation(observation)
            message = {"role": "assistant", "content": f"Thought: {thought}",
                       "function_call": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)}}
            if mistake:
                message["weight"] = 0
            messages.append(message)
            messages.append({"role": "function", "name": name, "content": text})
            trajectory.observations.append(text)
            return text, observation.status, observation.response

        if style == "restart" and not self._dead_end(query, plan, index, call, rng, messages):
            trajectory.style = style = "clean"
        bad_step = rng.randrange(len(plan)) if style == "bad_arguments" else -1
        resolved: dict[str, Any] = {}
        previous_note = ""
        for step_number, step in enumerate(plan):
            name = function_name(step["api_name"], standardize(step["tool_name"]))
            if name not in index:
                raise OracleError(f"plan function {name} not in the query's api_list")
            arguments = dict(step["arguments"])
            api = self.backend.catalog.apis[(step["tool_name"], step["api_name"])]
            is_resolver = step_number + 1 < len(plan) and self._feeds_next(plan, step_number)
            goal = api.description.rstrip(".").lower()
            thought = _intro(previous_note, name, arguments, goal, is_resolver)
            if step_number == bad_step:
                wrong, hint = self._mutate(arguments, api, rng)
                if wrong is not None:
                    text, status, _ = call(name, wrong, _intro(previous_note, name, wrong, goal, is_resolver),
                                           mistake=True)
                    if status == Status.BAD_INPUT:
                        thought = (f"The API rejected the request ({hint}). I'll correct the arguments and call "
                                   f"{name} again.")
                    elif status in FAILED_STATUSES:  # the gateway failed before the API saw the arguments
                        thought = (f"The call failed ({json.loads(text)['error'].rstrip('.')}), and {hint}. "
                                   f"I'll call {name} again with corrected arguments.")
                    else:
                        raise OracleError(f"mutated call to {name} was not rejected: {text[:200]}")
                    trajectory.failed_calls += 1
            text, status, response = call(name, arguments, thought)
            attempts = 1
            while status in FAILED_STATUSES and attempts < 3:
                trajectory.failed_calls += 1
                attempts += 1
                text, status, response = call(name, arguments, f"The call failed with a temporary error "
                                              f"({json.loads(text)['error'].rstrip('.')}). I'll retry the same request.")
            if status != Status.OK:
                raise OracleError(f"{name} failed in the oracle plan: {text[:200]}")
            previous_note = ""
            if is_resolver:
                for key, value in plan[step_number + 1]["arguments"].items():
                    if _found_in(response, value):
                        resolved[key] = value
                        previous_note = LOOKUP_NOTE.format(key=key, value=_short(value))
                        if _short(value) not in text:
                            raise OracleError(f"resolved id {value} is not visible in the observation of {name}")
                        break
            else:
                previous_note = "Got it. "
        final = json.dumps({"return_type": "give_answer", "final_answer": answer}, ensure_ascii=False)
        messages.append({"role": "assistant",
                         "content": "Thought: I have all the information the user asked for, so I'll give the final answer.",
                         "function_call": {"name": FINISH_NAME, "arguments": final}})
        seen = " ".join(trajectory.observations).lower()
        for fact in record["ground_truth"]["facts"]:
            if fact.lower() not in seen or fact not in answer:
                raise OracleError(f"fact {fact!r} missing from the observations or the answer")
        return trajectory

    def _feeds_next(self, plan: list[dict], step_number: int) -> bool:
        """Whether this step is a lookup whose result the next step takes as an id (a resolver)."""
        here, nxt = plan[step_number], plan[step_number + 1]
        if here["tool_name"] != nxt["tool_name"]:
            return False
        this_api = self.backend.catalog.apis[(here["tool_name"], here["api_name"])]
        next_api = self.backend.catalog.apis[(nxt["tool_name"], nxt["api_name"])]
        return any(p.resolve and p.resolve[0] == this_api.archetype.key for p in next_api.archetype.params)

    @staticmethod
    def _mutate(arguments: dict[str, Any], api, rng: random.Random) -> tuple[dict | None, str]:
        required = [p.name for p in api.params if p.param.required and p.name in arguments]
        options = []
        if required:
            options.append("missing")
            options.append("rename")
        numbers = [p.name for p in api.params if p.param.type == "NUMBER" and p.name in arguments
                   and not p.param.resolve]
        if numbers:
            options.append("type")
        if not options:
            return None, ""
        kind = rng.choice(options)
        wrong = dict(arguments)
        if kind == "missing":
            name = rng.choice(required)
            del wrong[name]
            return wrong, f"missing required parameter {name}"
        if kind == "rename":
            name = rng.choice(required)
            alias = WRONG_NAMES.get(name, f"{name}_value")
            if alias in arguments or api.logical_name(alias) is not None:
                alias = f"{name}_value"
            wrong[alias] = wrong.pop(name)
            return wrong, f"it does not accept '{alias}'; the parameter is '{name}'"
        name = rng.choice(numbers)
        wrong[name] = "all" if name in ("limit", "days") else "about " + _short(arguments[name])
        return wrong, f"'{name}' must be a number"

    def _dead_end(self, query, plan, index, call, rng, messages) -> bool:
        """A failing first attempt, `Finish(give_up_and_restart)` and the diversity prompt."""
        dead = [a for a in query.api_list if self.backend.catalog.apis[(a.tool_name, a.api_name)].binding.dead]
        if dead:
            entry = rng.choice(dead)
            api = self.backend.catalog.apis[(entry.tool_name, entry.api_name)]
            name = function_name(entry.api_name, standardize(entry.tool_name))
            value = next((v for s in plan for v in s["arguments"].values() if isinstance(v, str)),
                         api.params[0].param.default)
            arguments = {api.params[0].name: value}
            thought = f"I'll start with {name} for {_args_text(arguments)}."
            reason = f"{name} is not working right now"
        else:
            step = plan[0]
            name = function_name(step["api_name"], standardize(step["tool_name"]))
            arguments = dict(step["arguments"])
            key = next((k for k, v in arguments.items() if isinstance(v, str) and len(v) > 3), None)
            if key is None:
                return False
            arguments[key] = arguments[key][:-2] + "zq"  # a garbled value that finds nothing
            thought = f"I'll call {name} with {_args_text(arguments)}."
            reason = f"{name} found nothing for {arguments[key]}"
        text, status, response = call(name, arguments, thought, mistake=True)
        if status == Status.OK and not (isinstance(response, dict) and "message" in response):
            return False  # not a dead end after all; keep going normally
        messages.append({"role": "assistant",
                         "content": f"Thought: {reason}, so this path is a dead end. I'll give up and restart.",
                         "function_call": {"name": FINISH_NAME,
                                           "arguments": json.dumps({"return_type": "give_up_and_restart"})}})
        messages.append({"role": "function", "name": FINISH_NAME, "content": FINISH_GIVE_UP})
        candidate = [{"name": name, "arguments": json.dumps(arguments, ensure_ascii=False),
                      "function_output": text, "mento-carlo-action-value": 0.0}]
        messages.append({"role": "user", "content": DIVERSITY_PROMPT.replace(
            "{previous_candidate}", f"{json.dumps(candidate, indent=2)}\n")})
        return True


def _intro(note: str, name: str, arguments: dict[str, Any], goal: str, is_resolver: bool) -> str:
    """The thought before a planned call (call-first: `thoughts` also rewrites it goal-first for training)."""
    if is_resolver:
        return lookup_thought(note, name, _args_text(arguments))
    return call_thought(note, name, _args_text(arguments), goal)


def _found_in(response: Any, value: Any) -> bool:
    if isinstance(response, dict):
        return any(_found_in(v, value) for v in response.values())
    if isinstance(response, list):
        return any(_found_in(v, value) for v in response)
    return response == value
