"""The LLM judge: ToolEval's checks as forced function calls to any OpenAI-compatible endpoint.

* Pass/fail follows ToolEval's `check_is_solved`: upstream short-circuits first (no Finish, empty
  answer, give-up: Unsolved, no request); then `check_answer_status` on the final answer; when that
  says Unsure, `parse_answer_status` on the whole answer record decides.
* Preference is `select_better_answer` over the two answer records (final answers cut to 1,000
  characters, as upstream's `process_answer`); identical answers are a tie without a request.
* Transport failures (connection errors, timeouts, HTTP 408/409/429 and 5xx) are retried by the
  OpenAI SDK (`toolbench_eval.openai_client`), `max_attempts` tries in all; endpoints that stay
  unreachable, or refuse a request, stop the scoring with a `JudgeUnavailable` error (finished work is
  cached). Malformed replies (no function call, arguments that are not JSON, a status outside the enum)
  are a content problem: the question is asked again, `max_attempts` times in all. A reply still
  malformed after that counts as **Unsure** (or a tie for preferences), is counted in
  `stats["malformed"]` and reported; it is never dropped.
* Replies are cached on disk (`judge_cache.ResponseCache`) keyed by model, temperature, function
  schema, prompt and evaluation round: rounds stay independent samples, re-scoring makes no requests.
  Malformed replies are not cached, so a re-run asks again.
* Keys come from the environment only (`TOOLBENCH_EVAL_JUDGE_KEY`, else `OPENAI_API_KEY`; see
  `toolbench_eval.api_keys`) and are never written anywhere. A loopback base URL needs no key.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

import openai

from toolbench_eval.api_keys import PLACEHOLDER, endpoint_key, scrub
from toolbench_eval.benchmark.model import Query
from toolbench_eval.errors import UserError
from toolbench_eval.openai_client import RequestCounter, gave_up, sync_client
from toolbench_eval.redaction import register_secret
from toolbench_eval.scoring.judge_cache import ResponseCache, cache_key
from toolbench_eval.scoring.judge_prompts import PROMPT_VERSION, STATUS_ENUM, render, schema_with_reason
from toolbench_eval.scoring.judges import Preference, Verdict
from toolbench_eval.scoring.labels import AnswerRecord, AnswerStatus, short_circuit

# StableToolBench's published SoPR tables were judged by this model (README, since 2024-06).
DEFAULT_MODEL = "gpt-4-turbo-2024-04-09"
# ToolEval's default evaluator config: temperature 0.2, max_tokens 1000.
DEFAULT_TEMPERATURE = 0.2
DEFAULT_MAX_TOKENS = 1000


class JudgeUnavailable(UserError):
    """The judge endpoint could not be reached or refused the request."""


class MalformedReply(ValueError):
    """The judge answered, but not with a usable function call."""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "model"


class LLMJudge:
    """ToolEval-style judge over an OpenAI-compatible chat endpoint (see the module docstring)."""

    deterministic = False
    needs_ground_truth = False
    calls_a_model = True

    def __init__(
        self,
        *,
        model: str,
        api_key: str,
        base_url: str | None = None,
        temperature: float = DEFAULT_TEMPERATURE,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        timeout: float = 60.0,
        max_attempts: int = 4,
        cache: ResponseCache | None = None,
        workers: int = 8,
    ):
        self.model = model
        self.base_url = base_url
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_attempts = max(1, max_attempts)
        self.cache = cache
        self.concurrency = max(1, workers)
        self.id = f"llm-{_slug(model)}"
        self._key = api_key
        if api_key != PLACEHOLDER:
            register_secret(api_key)  # a key handed in from Python is kept out of outputs like one from the env
        self._lock = threading.Lock()
        self.stats = {"requests": 0, "cache_hits": 0, "retries": 0, "malformed": 0}
        counter = RequestCounter(self.stats, where=f"judge endpoint {self.endpoint}", attempts=self.max_attempts)
        self._client = sync_client(api_key=api_key, base_url=base_url, timeout=timeout, counter=counter)

    @property
    def endpoint(self) -> str:
        return self.base_url or "https://api.openai.com/v1"

    @classmethod
    def from_settings(
        cls,
        *,
        model: str | None = None,
        base_url: str | None = None,
        temperature: float | None = None,
        cache_dir: str | Path | None = None,
        workers: int = 8,
        **options: Any,
    ) -> LLMJudge:
        """Build from flags with environment fallbacks: model `EVAL_MODEL` (StableToolBench's variable),
        base URL `TOOLBENCH_EVAL_JUDGE_BASE_URL` / `OPENAI_BASE_URL`, key `TOOLBENCH_EVAL_JUDGE_KEY` /
        `OPENAI_API_KEY`."""
        model = model or os.environ.get("EVAL_MODEL") or DEFAULT_MODEL
        base_url = (
            base_url or os.environ.get("TOOLBENCH_EVAL_JUDGE_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
        )
        key = endpoint_key(("TOOLBENCH_EVAL_JUDGE_KEY", "OPENAI_API_KEY"), base_url, who="the LLM judge",
                           url_option="--judge-base-url")
        return cls(
            model=model,
            api_key=key,
            base_url=base_url,
            temperature=DEFAULT_TEMPERATURE if temperature is None else temperature,
            cache=ResponseCache(cache_dir) if cache_dir else None,
            workers=workers,
            **options,
        )

    def use_cache_dir(self, directory: str | Path) -> None:
        """Cache replies under `directory` unless a cache was chosen explicitly."""
        if self.cache is None:
            self.cache = ResponseCache(directory)

    def describe(self) -> dict[str, Any]:
        return {
            "name": "llm",
            "model": self.model,
            "base_url": self.endpoint,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "prompts": PROMPT_VERSION,
            "functions": ["check_answer_status", "parse_answer_status", "select_better_answer"],
            "stats": dict(self.stats),
        }

    # -----------------------------------------------------------------------------------------
    # One forced function call, cached and asked again while malformed

    def _scrub(self, text: str) -> str:
        return scrub(text, self._key)

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.stats[name] += amount

    def _parse_reply(self, response: Any, name: str) -> dict[str, Any]:
        choices = getattr(response, "choices", None) or []
        if not choices:
            raise MalformedReply("reply has no choices")
        message = choices[0].message
        arguments = None
        for call in getattr(message, "tool_calls", None) or []:
            function = getattr(call, "function", None)
            if function is not None and getattr(function, "name", name) == name:
                arguments = function.arguments
                break
        if arguments is None and getattr(message, "function_call", None) is not None:
            arguments = message.function_call.arguments  # servers that still answer in the legacy style
        if arguments is None:
            raise MalformedReply(f"reply has no {name} function call")
        try:
            parsed = json.loads(arguments)
        except (TypeError, json.JSONDecodeError):
            raise MalformedReply(f"{name} arguments are not JSON: {str(arguments)[:200]!r}") from None
        if not isinstance(parsed, dict):
            raise MalformedReply(f"{name} arguments are not a JSON object")
        if name == "select_better_answer":
            try:
                index = float(parsed["index"])
            except (KeyError, TypeError, ValueError):
                raise MalformedReply(
                    f"select_better_answer gave no numeric index: {parsed!r}"[:300]
                ) from None
            if index not in (0.0, 1.0):
                raise MalformedReply(f"select_better_answer index {parsed['index']!r} is neither 0 nor 1")
            parsed["index"] = int(index)
        elif parsed.get("answer_status") not in STATUS_ENUM:
            raise MalformedReply(
                f"{name} answer_status {parsed.get('answer_status')!r} is not one of {STATUS_ENUM}"
            )
        return parsed

    def call(self, name: str, prompt: str, *, round: int = 0) -> tuple[dict[str, Any] | None, str]:
        """Ask for function `name`; returns (arguments, "") or (None, why it stayed malformed)."""
        schema = schema_with_reason(name)
        key = cache_key(
            {
                "model": self.model,
                "temperature": self.temperature,
                "max_tokens": self.max_tokens,
                "function": schema,
                "prompt": prompt,
                "round": round,
            }
        )
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self._count("cache_hits")
                return hit["arguments"], ""
        problem = ""
        for _ in range(self.max_attempts):
            try:
                response = self._client.chat.completions.create(
                    model=self.model,
                    messages=[{"role": "user", "content": prompt}],
                    tools=[{"type": "function", "function": schema}],
                    tool_choice={"type": "function", "function": {"name": name}},
                    temperature=self.temperature,
                    max_tokens=self.max_tokens,
                )
            except (openai.APIStatusError, openai.APIConnectionError) as error:
                raise self._unavailable(error) from None
            try:
                parsed = self._parse_reply(response, name)
            except MalformedReply as error:
                problem = self._scrub(str(error))
                continue
            if self.cache is not None:
                self.cache.put(key, {"function": name, "model": self.model, "arguments": parsed})
            return parsed, ""
        self._count("malformed")
        return None, problem

    def _unavailable(self, error: openai.APIStatusError | openai.APIConnectionError) -> JudgeUnavailable:
        failed = gave_up(error, self._scrub)
        if failed:
            return JudgeUnavailable(f"judge endpoint {self.endpoint} {failed}; finished judgements are cached, "
                                    "re-run the command to continue")
        return JudgeUnavailable(f"judge endpoint {self.endpoint} refused the request (HTTP {error.status_code}: "
                                f"{self._scrub(str(error))[:200]}); check --judge-model and the API key")

    # -----------------------------------------------------------------------------------------
    # The Judge protocol

    def judge(self, query: Query, answer: AnswerRecord, *, round: int = 0) -> Verdict:
        reason = short_circuit(answer)
        if reason is not None:
            return Verdict(AnswerStatus.Unsolved, reason)
        # The final answer first; when that leaves it Unsure, the whole answer record decides.
        for name, shown in (("check_answer_status", answer.final_answer_raw),
                            ("parse_answer_status", json.dumps(answer.converted(), ensure_ascii=False))):
            reply, problem = self.call(name, render(name, query=query.query or answer.query, answer=shown), round=round)
            if reply is None:
                return Verdict(AnswerStatus.Unsure, f"malformed judge reply: {problem}", malformed=True)
            status = AnswerStatus(reply["answer_status"])
            if status is not AnswerStatus.Unsure:
                break
        return Verdict(status, str(reply.get("reason", "")))

    @staticmethod
    def _for_preference(answer: AnswerRecord) -> dict[str, Any]:
        # Upstream's process_answer: final answer cut to 1,000 characters, method dropped.
        converted = answer.converted()
        converted.pop("method", None)
        converted["final_answer"] = converted["final_answer"][:1000]
        return converted

    def prefer(
        self, query: Query, answer_a: AnswerRecord, answer_b: AnswerRecord, *, round: int = 0
    ) -> Preference:
        if answer_a is None or answer_b is None:
            return "tie" if answer_a is answer_b else ("b" if answer_a is None else "a")
        a, b = self._for_preference(answer_a), self._for_preference(answer_b)
        if a == b:
            return "tie"
        prompt = render(
            "select_better_answer",
            query=query.query or answer_a.query,
            answer_0=json.dumps(a, ensure_ascii=False),
            answer_1=json.dumps(b, ensure_ascii=False),
        )
        reply, _ = self.call("select_better_answer", prompt, round=round)
        if reply is None:
            return "tie"
        return "a" if reply["index"] == 0 else "b"
