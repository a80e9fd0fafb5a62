"""The engine contract: batched, async text generation, optionally with Attention Buckets.

An engine receives many prompts at once (from many trajectories in flight) and returns one
completion per prompt. A `BucketSpec` belongs to the engine, not to a call: every request an
engine serves is decoded with the same bases and fusion rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from buckets.generation import DecodeParams


@dataclass(frozen=True)
class BucketSpec:
    """Attention Buckets settings: one RoPE base per bucket and the rule that fuses their outputs."""

    bases: tuple[float, ...]
    fusion: str = "max_logit"

    def __post_init__(self) -> None:
        if not self.bases:
            raise ValueError("BucketSpec needs at least one base")

    @property
    def n(self) -> int:
        return len(self.bases)


@dataclass(frozen=True)
class SamplingParams(DecodeParams):
    """Per-call decoding settings (temperature 0: greedy): the bucketed generator's own `DecodeParams` (a
    `grammar` is a Lark grammar every completion must match; engines that cannot constrain decoding raise
    rather than ignore it. `min_new_tokens=1` is upstream's HF `force_generate`; the `vllm` engine can only
    suppress the EOS, `min_tokens`), plus what only engines read."""

    # Keep only the last N prompt tokens (None: all), as StableToolBench's clients do (HF 7160, vLLM 7168).
    truncate_prompt_tokens: int | None = None


@dataclass(frozen=True)
class ChatReply:
    """One native function-calling turn (`Engine.chat`): the assistant message as StableToolBench records it
    (`content, refusal, role, function_call, tool_calls`), the turn's token usage and, where the engine returns
    them, its bucket weights."""

    message: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int
    # Per generated token, per bucket (engines with Attention Buckets that were asked to return them).
    bucket_weights: list[list[float]] | None = field(default=None, repr=False)


def assistant_message(message: Any) -> dict[str, Any]:
    """The assistant message as StableToolBench's `ChatGPTFunction` stores it: the `.dict()` of the openai
    SDK's `ChatCompletionMessage` at the version it pins (1.51), whatever SDK is installed here:
    `content, refusal, role, function_call, tool_calls` with calls as `id, function{arguments, name}, type`.
    Every native turn has this form: the `openai` engine's, in-process engines' and replayed ones. `message` is
    an SDK object or a dict with those fields (missing ones are None).

    >>> list(assistant_message({"content": "hi"}))
    ['content', 'refusal', 'role', 'function_call', 'tool_calls']
    """
    def field(obj: Any, name: str) -> Any:
        return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)

    calls = field(message, "tool_calls")
    function_call = field(message, "function_call")
    return {
        "content": field(message, "content"),
        "refusal": field(message, "refusal"),
        "role": field(message, "role") or "assistant",
        "function_call": None if function_call is None else {
            "arguments": field(function_call, "arguments"), "name": field(function_call, "name")},
        "tool_calls": None if not calls else [
            {"id": field(call, "id"),
             "function": {"arguments": field(field(call, "function"), "arguments"),
                          "name": field(field(call, "function"), "name")},
             "type": field(call, "type") or "function"}
            for call in calls],
    }


def as_bool(value: Any) -> bool:
    """A model argument as a flag: `--model-args` gives strings (`true`, `1`, `yes`, `on`), configs give booleans.

    >>> as_bool("True"), as_bool("0"), as_bool(True)
    (True, False, True)
    """
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def truncate_prompt(ids: list[int], params: SamplingParams) -> list[int]:
    """The prompt's last `params.truncate_prompt_tokens` ids (left truncation: the system prompt goes first).

    >>> truncate_prompt([1, 2, 3, 4], SamplingParams(truncate_prompt_tokens=2)), truncate_prompt([1, 2], SamplingParams())
    ([3, 4], [1, 2])
    """
    limit = params.truncate_prompt_tokens
    return ids[-limit:] if limit and len(ids) > limit else ids


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (stop string or EOS) | "length"
    bucket_weights: list[list[float]] | None = field(default=None, repr=False)  # per generated token, per bucket


def check_cache_keys(prompts: Sequence[str], cache_keys: Sequence[str | None] | None) -> list[str | None]:
    """The per-prompt cache keys of a `generate` call (None where a prompt has none)."""
    if cache_keys is None:
        return [None] * len(prompts)
    if len(cache_keys) != len(prompts):
        raise ValueError(f"got {len(cache_keys)} cache keys for {len(prompts)} prompts")
    return list(cache_keys)


@runtime_checkable
class Engine(Protocol):
    """What the runner needs from a model backend (hf, vllm, openai, scripted)."""

    name: str
    bucket_spec: BucketSpec | None

    async def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        *,
        cache_keys: Sequence[str | None] | None = None,
    ) -> list[Completion]:
        """Complete each prompt. `cache_keys` (e.g. a trajectory id) lets an engine keep a prefix
        cache per trajectory so a follow-up prompt that extends an earlier one only prefills the
        new tokens; engines without such a cache ignore it."""
        ...

    def count_tokens(self, text: str) -> int: ...

    async def close(self) -> None: ...
