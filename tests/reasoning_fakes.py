"""The scripted model the reasoner tests drive ReAct and DFSDT with."""

from __future__ import annotations

import asyncio
import copy
from typing import NamedTuple

from reasoning.protocols import ModelOutput

GIVE_UP = 'Action: Finish\nAction Input: {"return_type": "give_up_and_restart"}'


class ModelCall(NamedTuple):
    messages: list[dict]  # a deep copy: what the model saw, not what the history became later
    functions: list[dict]
    trajectory_id: str


class ScriptedModel:
    """Returns `outputs` in order (an exception item is raised instead), then `default` forever; every call's
    input is kept in `calls`. Each call yields to the event loop once, so concurrent trajectories interleave."""

    def __init__(self, outputs=(), default: str = GIVE_UP, *, prompt_tokens: int = 10,
                 completion_tokens: int = 1) -> None:
        self.outputs = list(outputs)
        self.default = default
        self.tokens = (prompt_tokens, completion_tokens)
        self.calls: list[ModelCall] = []

    async def generate(self, messages, functions, *, trajectory_id):
        self.calls.append(ModelCall(copy.deepcopy(messages), functions, trajectory_id))
        await asyncio.sleep(0)
        item = self.outputs.pop(0) if self.outputs else self.default
        if isinstance(item, BaseException):
            raise item
        return ModelOutput(item, *self.tokens)
