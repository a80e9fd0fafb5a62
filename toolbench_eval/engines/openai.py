"""The `openai` engine: any OpenAI-compatible server behind the async `Engine` contract.

Two targets, one engine:

- ``vllm serve`` (optionally with the Attention Buckets plugin, see ``docs/vllm.md``) or any local
  server: raw ToolLLaMA prompts go to ``/v1/completions`` (``mode="completions"``, the default
  when `base_url` is given).
- a hosted API for GPT baselines: ``/v1/chat/completions`` (``mode="chat"``, the default without
  `base_url`); each prompt is sent as one user message, after an optional `system_prompt`.

What it adds over the bare client:

- **Keys from the environment only.** The key is read from the variable named by `api_key_env`
  (default ``OPENAI_API_KEY``); passing a key as an argument is refused, so it can never land in a
  run manifest. It is never logged, and it is scrubbed from every error message we raise.
  A loopback server (127.0.0.1, localhost, ::1) needs no key.
- **Retries** by the OpenAI SDK (``toolbench_eval.openai_client``): 408/409/429/5xx, timeouts and
  connection errors, with exponential backoff, ``Retry-After`` honoured, `max_attempts` tries in all;
  401/403/404 are configuration errors and fail at once with a `UserError` that says what to fix.
- **A concurrency limit**: at most `max_concurrency` requests in flight per engine.
- **Stop strings**: hosted APIs accept at most 4, so only the first `max_api_stops` go to the
  server and every stop string is also applied to the returned text here (the cut is exact).
- **Seeds**: a seeded call gives prompt j the seed ``row_seed(seed, j)``, as the `hf` engine does.

>>> # doctest: +SKIP
>>> engine = OpenAIEngine("default", base_url="http://127.0.0.1:8000/v1")   # the served model
>>> [c] = await engine.generate(["System: ...\\nUser: ...\\nAssistant: "], SamplingParams(max_new_tokens=64))
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import openai

from buckets.sampling import GREEDY_BELOW, row_seed
from reasoning.protocols import InfrastructureError
from toolbench_eval.api_keys import endpoint_key, scrub
from toolbench_eval.engines.base import (
    BucketSpec,
    ChatReply,
    Completion,
    SamplingParams,
    assistant_message,
    check_cache_keys,
)
from toolbench_eval.errors import UserError
from toolbench_eval.openai_client import RequestCounter, async_client, gave_up

MODES = ("auto", "completions", "chat")
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
HOSTED_MAX_STOPS = 4  # the OpenAI API rejects more stop sequences than this
NO_CONSTRAINED_DECODING = ("--model openai: constrained decoding (decoding.constrain) is not available through the "
                           "OpenAI API; use the hf or vllm engine, or constrain: off")
CONFIG_STATUS = {
    401: "the server rejected the API key: set a valid key in ${env}",
    403: "the API key has no access to this model or endpoint (${env})",
    404: "the server does not know model {model!r} or this endpoint: check pretrained= and base_url=",
}


class EngineUnavailable(InfrastructureError):
    """The server kept failing (transport errors, 429/5xx) for `max_attempts` tries: an infrastructure
    failure, so the trajectory ends without an answer and the query is retried on the next run."""


class EngineRejectedAccess(UserError, InfrastructureError):
    """HTTP 401/403/404: the key, the model name or the URL is wrong. A user error with a fix, and in a run
    an infrastructure failure: no query is scored on it, and they are retried once the setting is fixed."""


class EngineRequestError(RuntimeError):
    """The server refused one request for a reason retrying will not fix (e.g. HTTP 400: prompt too long)."""


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """`text` up to (not including) the earliest stop string, and whether one was found.

    >>> cut_at_stop("Thought: x\\nAction: y", ["\\nAction", "\\nUser:"])
    ('Thought: x', True)
    >>> cut_at_stop("no stop here", ["</s>"])
    ('no stop here', False)
    """
    hits = [index for index in (text.find(stop) for stop in stops if stop) if index >= 0]
    if not hits:
        return text, False
    return text[: min(hits)], True


@dataclass(frozen=True)
class _Reply:
    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    message: dict[str, Any] | None = None  # chat with tools: the assistant message (see `assistant_message`)


class OpenAIEngine:
    """Batched async generation against an OpenAI-compatible endpoint (see the module docstring).

    `model` is the served model name; ``"default"`` asks the server (``GET /models``) and uses its
    first model, which is what a single-model ``vllm serve`` wants. `tokenizer` (a local
    transformers tokenizer directory) gives exact `count_tokens` and enables
    ``prompt_style: chat_template``; without it token counts are estimated (4 characters a token)
    unless the server reports usage.
    """

    name = "openai"

    def __init__(
        self,
        model: str = "default",
        *,
        base_url: str | None = None,
        mode: str = "auto",
        api_key_env: str = DEFAULT_KEY_ENV,
        max_concurrency: int = 8,
        max_attempts: int = 6,
        timeout: float = 300.0,
        max_api_stops: int | None = None,
        system_prompt: str | None = None,
        tokenizer: Any = None,
        bucket_spec: BucketSpec | None = None,
    ) -> None:
        if mode not in MODES:
            raise UserError(f"--model openai: mode={mode!r} is not one of {', '.join(MODES)}")
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        self.model = str(model) if model not in (None, "", "default") else None
        self.base_url = base_url
        self.mode = ("completions" if base_url else "chat") if mode == "auto" else mode
        self.api_key_env = api_key_env
        self.max_concurrency = int(max_concurrency)
        self.max_attempts = int(max_attempts)
        if self.max_concurrency < 1 or self.max_attempts < 1:
            raise UserError("--model openai: max_concurrency and max_attempts must be >= 1")
        self.timeout = float(timeout)
        if max_api_stops is None:
            max_api_stops = None if base_url and not _is_openai_host(base_url) else HOSTED_MAX_STOPS
        self.max_api_stops = None if max_api_stops is None else int(max_api_stops)
        self.system_prompt = system_prompt
        self.tokenizer = _load_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
        # A served bucket model decodes with its own bases; the spec here is informational only.
        self.bucket_spec = bucket_spec
        self.stats = {"requests": 0, "retries": 0}
        self._key = endpoint_key((api_key_env,), base_url, who="--model openai", url_option="base_url")
        self._client: openai.AsyncOpenAI | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._model_lock: asyncio.Lock | None = None

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIEngine(model={self.model!r}, base_url={self.base_url!r}, mode={self.mode!r})"

    # -- Engine protocol -------------------------------------------------------------------------

    async def generate(
        self,
        prompts: Sequence[str],
        params: SamplingParams,
        *,
        cache_keys: Sequence[str | None] | None = None,
    ) -> list[Completion]:
        """Complete each prompt (one request each, at most `max_concurrency` in flight).

        `cache_keys` are ignored: a vLLM server's automatic prefix caching reuses shared prefixes
        by content, with no key needed.
        """
        check_cache_keys(prompts, cache_keys)  # validated only (see above)
        self._bind_loop()
        await self._resolve_model()
        tasks = [self._complete(prompt, params, index) for index, prompt in enumerate(prompts)]
        return list(await asyncio.gather(*tasks))

    async def chat(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], params: SamplingParams,
                   *, upstream_request: bool = True, constrain: str = "off") -> ChatReply:
        """One native function-calling turn (`/v1/chat/completions` with `tools`).

        `upstream_request`: the request StableToolBench's `ChatGPTFunction` sends (`model, messages,
        max_tokens, frequency_penalty 0, presence_penalty 0, tools`; no temperature, so the server's default
        applies); otherwise greedy with our sampling settings (temperature, top_p, seed)."""
        if constrain != "off":
            raise UserError(NO_CONSTRAINED_DECODING)
        self._bind_loop()
        await self._resolve_model()
        request: dict[str, Any] = {"model": self.model, "messages": messages, "max_tokens": params.max_new_tokens}
        if upstream_request:
            request.update(frequency_penalty=0, presence_penalty=0)
        else:
            request["temperature"] = 0.0 if params.temperature < GREEDY_BELOW else params.temperature
            request["top_p"] = params.top_p
            if params.seed is not None:
                request["seed"] = params.seed
        if tools:
            request["tools"] = tools
        async with self._semaphore:
            reply = await self._ask(request, chat_tools=True)
        return ChatReply(reply.message or {}, reply.prompt_tokens or 0, reply.completion_tokens or 0)

    def count_tokens(self, text: str) -> int:
        if self.tokenizer is not None:
            return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return math.ceil(len(text) / 4)  # rough estimate; server usage figures win when present

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
        self._client = self._loop = self._semaphore = self._model_lock = None

    # -- one prompt ------------------------------------------------------------------------------

    async def _complete(self, prompt: str, params: SamplingParams, index: int) -> Completion:
        request = self._request(prompt, params, index)
        async with self._semaphore:
            reply = await self._ask(request)
        text, cut = cut_at_stop(reply.text, params.stop)
        finish = "stop" if cut or reply.finish_reason not in ("length",) else "length"
        completion_tokens = self.count_tokens(text) if cut or reply.completion_tokens is None \
            else reply.completion_tokens
        return Completion(
            text=text,
            prompt_tokens=reply.prompt_tokens if reply.prompt_tokens is not None else self.count_tokens(prompt),
            completion_tokens=completion_tokens,
            finish_reason=finish,
        )

    def _request(self, prompt: str, params: SamplingParams, index: int) -> dict[str, Any]:
        if params.grammar is not None:
            raise UserError(NO_CONSTRAINED_DECODING)
        stops = [s for s in params.stop if s]
        if self.max_api_stops is not None:
            stops = stops[: self.max_api_stops]  # the rest are applied to the text here
        request: dict[str, Any] = {
            "model": self.model,
            "max_tokens": params.max_new_tokens,
            "temperature": 0.0 if params.temperature < GREEDY_BELOW else params.temperature,
            "top_p": params.top_p,
        }
        if stops:
            request["stop"] = stops
        if params.seed is not None:
            request["seed"] = row_seed(params.seed, index)
        if params.truncate_prompt_tokens:  # what StableToolBench's vLLM client asks its server for
            request["extra_body"] = {"truncate_prompt_tokens": params.truncate_prompt_tokens}
        if self.mode == "completions":
            request["prompt"] = prompt
        else:
            messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
            request["messages"] = [*messages, {"role": "user", "content": prompt}]
        return request

    async def _ask(self, request: dict[str, Any], *, chat_tools: bool = False) -> _Reply:
        """One request; the client has retried transient failures, what still fails is classified here."""
        try:
            return await self._send(request, chat_tools=chat_tools)
        except (openai.APIStatusError, openai.APIConnectionError) as error:
            failed = gave_up(error, self._scrub)
            if failed:
                raise EngineUnavailable(f"{self._where()} {failed}; check that the server is up, "
                                        "or raise max_attempts") from None
            if error.status_code in CONFIG_STATUS:
                raise EngineRejectedAccess(self._describe_config_error(error.status_code, error)) from None
            raise EngineRequestError(
                f"{self._where()}: HTTP {error.status_code}: {self._scrub(_error_text(error))}") from None

    async def _send(self, request: dict[str, Any], *, chat_tools: bool = False) -> _Reply:
        client = self._ensure_client()
        plain = self.mode == "completions" and not chat_tools  # /v1/completions, else /v1/chat/completions
        response = await (client.completions if plain else client.chat.completions).create(**request)
        choice = response.choices[0]
        usage = getattr(response, "usage", None)
        return _Reply(text=(choice.text if plain else choice.message.content) or "", finish_reason=choice.finish_reason,
                      prompt_tokens=getattr(usage, "prompt_tokens", None),
                      completion_tokens=getattr(usage, "completion_tokens", None),
                      message=assistant_message(choice.message) if chat_tools else None)

    # -- plumbing --------------------------------------------------------------------------------

    def _bind_loop(self) -> None:
        """Client, semaphore and lock belong to one event loop: rebuild them when the loop changes."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop = loop
            self._client = None
            self._semaphore = asyncio.Semaphore(self.max_concurrency)
            self._model_lock = asyncio.Lock()

    def _ensure_client(self) -> openai.AsyncOpenAI:
        if self._client is None:
            counter = RequestCounter(self.stats, where=self._where(), attempts=self.max_attempts)
            self._client = async_client(api_key=self._key, base_url=self.base_url, timeout=self.timeout,
                                        counter=counter)
        return self._client

    async def _resolve_model(self) -> None:
        if self.model is not None:
            return
        async with self._model_lock:
            if self.model is not None:
                return
            try:
                models = [m.id async for m in self._ensure_client().models.list()]
            except openai.APIError as error:
                raise UserError(f"{self._where()}: could not list the served models ({self._scrub(str(error))}); "
                                "pass the model name with pretrained=NAME") from None
            if not models:
                raise UserError(f"{self._where()}: the server lists no models; pass pretrained=NAME")
            self.model = models[0]

    def _where(self) -> str:
        return f"OpenAI-compatible endpoint {self.base_url or 'https://api.openai.com/v1'}"

    def _describe_config_error(self, status: int, error: openai.APIStatusError) -> str:
        hint = CONFIG_STATUS[status].replace("${env}", self.api_key_env).format(model=self.model)
        return f"{self._where()}: HTTP {status}: {hint} ({self._scrub(_error_text(error))})"

    def _scrub(self, text: str) -> str:
        return scrub(text, self._key)[:300]


def _error_text(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error")
        message = inner.get("message") if isinstance(inner, dict) else body.get("message")
        if message:
            return str(message)
    return str(error.message)


def _is_openai_host(base_url: str) -> bool:
    return (urlparse(base_url).hostname or "").endswith("openai.com")


def _load_tokenizer(path: str):
    from transformers import AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise UserError(f"--model openai: tokenizer={path}: could not load a tokenizer ({error})") from None
