"""A scripted fake engine for tests: replies come from a list or a function, no model involved.

It honours the parts of the `Engine` contract callers depend on: one `Completion` per prompt, stop
strings cut the text (finish_reason ``"stop"``), `max_new_tokens` caps the length in whitespace
tokens (finish_reason ``"length"``), and every call is recorded in `calls` for assertions.

>>> import asyncio
>>> engine = ScriptedEngine(["Thought: done\\nAction: Finish"])
>>> [c] = asyncio.run(engine.generate(["prompt"], SamplingParams(stop=("\\nAction",))))
>>> c.text, c.finish_reason
('Thought: done', 'stop')
>>> engine.calls[0].prompt
'prompt'
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from toolbench_eval.engines.base import BucketSpec, Completion, SamplingParams

# Used when no script is given (e.g. `--model scripted` in a dry run): a ToolLLaMA-format turn
# that gives up, so every trajectory terminates after one step.
DEFAULT_REPLY = (
    "Thought: I cannot solve this task with the available tools.\n"
    "Action: Finish\n"
    'Action Input: {"return_type": "give_up_and_restart"}'
)

Reply = str | Callable[[str, SamplingParams], str | Awaitable[str]]


@dataclass(frozen=True)
class ScriptedCall:
    prompt: str
    params: SamplingParams
    cache_key: str | None


class ScriptedEngine:
    """Answers prompts from `replies`: a list consumed in order (each item a string or a
    function), or one function ``f(prompt, params) -> str`` (sync or async) used for every
    prompt. With a list, running out raises unless `repeat_last=True`."""

    name = "scripted"

    def __init__(
        self,
        replies: Sequence[Reply] | Reply | None = None,
        *,
        bucket_spec: BucketSpec | None = None,
        repeat_last: bool = False,
    ) -> None:
        if replies is None:
            replies, repeat_last = [DEFAULT_REPLY], True
        self._function = replies if callable(replies) else None
        self._replies = [] if callable(replies) else [replies] if isinstance(replies, str) else list(replies)
        self.repeat_last = repeat_last
        self.bucket_spec = bucket_spec
        self.calls: list[ScriptedCall] = []
        self.batch_sizes: list[int] = []  # prompts per generate call: a call is this engine's one "step"
        self.closed = False

    async def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        *,
        cache_keys: Sequence[str | None] | None = None,
    ) -> list[Completion]:
        keys = list(cache_keys) if cache_keys is not None else [None] * len(prompts)
        self.batch_sizes.append(len(prompts))
        completions = []
        for prompt, key in zip(prompts, keys):
            self.calls.append(ScriptedCall(prompt, params, key))
            text = await self._reply(prompt, params)
            completions.append(self._finish(prompt, text, params))
        return completions

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    async def close(self) -> None:
        self.closed = True

    async def _reply(self, prompt: str, params: SamplingParams) -> str:
        reply: Reply
        if self._function is not None:
            reply = self._function
        else:
            index = len(self.calls) - 1
            if index >= len(self._replies):
                if not (self.repeat_last and self._replies):
                    raise RuntimeError(f"ScriptedEngine ran out of replies after {len(self._replies)} call(s)")
                index = len(self._replies) - 1
            reply = self._replies[index]
        if callable(reply):
            reply = reply(prompt, params)
            if inspect.isawaitable(reply):
                reply = await reply
        return str(reply)

    def _finish(self, prompt: str, text: str, params: SamplingParams) -> Completion:
        hits = [i for i in (text.find(stop) for stop in params.stop if stop) if i >= 0]
        finish = "stop"
        if hits:
            text = text[: min(hits)]
        else:
            words = text.split()
            if len(words) > params.max_new_tokens:
                text, finish = " ".join(words[: params.max_new_tokens]), "length"
        weights = None
        if self.bucket_spec is not None:  # uniform weights: there is no model to be confident
            weights = [[1.0 / self.bucket_spec.n] * self.bucket_spec.n for _ in text.split()]
        return Completion(
            text=text,
            prompt_tokens=self.count_tokens(prompt),
            completion_tokens=self.count_tokens(text),
            finish_reason=finish,
            bucket_weights=weights,
        )
