"""The `openai` engine against a local OpenAI-compatible test server (stdlib http.server on 127.0.0.1).

The server mimics the parts of the API the engine uses (``/v1/models``, ``/v1/completions``,
``/v1/chat/completions``): it honours the stop strings it is sent, reports usage, and can be told
(through the prompt text) to fail with a given status a given number of times, with a `Retry-After`
of a millisecond, which the SDK's retries honour (so no test waits out a real backoff).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from buckets.sampling import row_seed
from toolbench_eval.engines.base import Completion, Engine, SamplingParams
from toolbench_eval.engines.openai import EngineRequestError, EngineUnavailable, OpenAIEngine, cut_at_stop
from toolbench_eval.errors import UserError
from toolbench_eval.registry import construct

SECRET = "sk-test-DO-NOT-LEAK-1234567890"
REPLY = "Thought: call it\nAction: get_weather\nUser: this must be cut"


class _State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[dict] = []
        self.failures: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.delay_s = 0.0

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.failures.clear()
            self.in_flight = self.max_in_flight = 0
            self.delay_s = 0.0


def _make_handler(state: _State):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": "served-model", "object": "model",
                                                             "created": 0, "owned_by": "test"}]})
            else:
                self._send(404, {"error": {"message": "no such path"}})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with state.lock:
                state.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
            try:
                if state.delay_s:
                    time.sleep(state.delay_s)
                self._answer(body)
            finally:
                with state.lock:
                    state.in_flight -= 1

        def _answer(self, body: dict) -> None:
            prompt = body.get("prompt") or body["messages"][-1]["content"]
            match = re.search(r"FAIL(\d{3})x(\d+)", prompt)
            if match:
                status, times = int(match.group(1)), int(match.group(2))
                with state.lock:
                    seen = state.failures.get(prompt, 0)
                    state.failures[prompt] = seen + 1
                if seen < times:
                    message = "bad key " + (self.headers.get("Authorization") or "")  # some servers echo it
                    self._send(status, {"error": {"message": message, "type": "test"}}, {"Retry-After": "0.001"})
                    return
            text, finish = REPLY, "length"
            for stop in body.get("stop") or []:
                if stop in text:
                    text, finish = text[: text.index(stop)], "stop"
            usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split()),
                     "total_tokens": len(prompt.split()) + len(text.split())}
            if self.path.endswith("/chat/completions"):
                choice = {"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": text}}
                payload = {"id": "c1", "object": "chat.completion", "created": 0, "model": body["model"],
                           "choices": [choice], "usage": usage}
            else:
                choice = {"index": 0, "finish_reason": finish, "text": text, "logprobs": None}
                payload = {"id": "c1", "object": "text_completion", "created": 0, "model": body["model"],
                           "choices": [choice], "usage": usage}
            self._send(200, payload)

    return Handler


@pytest.fixture(scope="module")
def server():
    state = _State()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", state
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def api(server, monkeypatch):
    url, state = server
    state.reset()
    monkeypatch.setenv("TEST_OPENAI_KEY", SECRET)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return url, state


def _engine(url: str, model: str = "default", **kwargs) -> OpenAIEngine:
    options = {"api_key_env": "TEST_OPENAI_KEY", **kwargs}
    return OpenAIEngine(model, base_url=url, **options)


def _run(engine: OpenAIEngine, prompts, params: SamplingParams) -> list[Completion]:
    async def go():
        try:
            return await engine.generate(prompts, params)
        finally:
            await engine.close()

    return asyncio.run(go())


def test_completions_mode_sends_raw_prompts_with_key_seed_and_stops(api):
    url, state = api
    engine = _engine(url)
    assert isinstance(engine, Engine) and engine.mode == "completions"
    params = SamplingParams(max_new_tokens=32, temperature=0.7, stop=("\nUser:",), seed=11)
    first, second = _run(engine, ["System: a\nUser: q1\nAssistant: ", "User: q2 two words"], params)

    assert first.text == "Thought: call it\nAction: get_weather"
    assert first.finish_reason == "stop"
    assert first.completion_tokens == 5  # the server's usage figure (the local estimate would say 9)
    assert second.prompt_tokens == 4
    posts = [r for r in state.requests if r["path"].endswith("/completions")]
    assert {r["body"]["prompt"] for r in posts} == {"System: a\nUser: q1\nAssistant: ", "User: q2 two words"}
    assert all(r["auth"] == f"Bearer {SECRET}" for r in posts)
    assert all(r["body"]["model"] == "served-model" for r in posts)  # resolved from /v1/models
    seeds = sorted(r["body"]["seed"] for r in posts)
    assert seeds == sorted([row_seed(11, 0), row_seed(11, 1)])
    assert all(r["body"]["stop"] == ["\nUser:"] and r["body"]["max_tokens"] == 32 for r in posts)


def test_chat_mode_wraps_prompt_in_messages(api):
    url, state = api
    engine = _engine(url, model="gpt-x", mode="chat", system_prompt="be brief")
    [completion] = _run(engine, ["What is the weather?"], SamplingParams(max_new_tokens=8))
    assert completion.text == REPLY and completion.finish_reason == "length"
    [request] = state.requests
    assert request["path"].endswith("/chat/completions")
    assert request["body"]["messages"] == [{"role": "system", "content": "be brief"},
                                           {"role": "user", "content": "What is the weather?"}]
    assert request["body"]["model"] == "gpt-x" and request["body"]["temperature"] == 0.0


def test_stops_beyond_the_api_limit_are_applied_to_the_text(api):
    url, state = api
    engine = _engine(url, max_api_stops=1)
    [completion] = _run(engine, ["p"], SamplingParams(stop=("</s>", "\nAction:")))
    assert state.requests[0]["body"]["stop"] == ["</s>"]  # only the first went to the server
    assert completion.text == "Thought: call it" and completion.finish_reason == "stop"


def test_rate_limits_and_server_errors_are_retried(api):
    url, state = api
    engine = _engine(url)
    first, second = _run(engine, ["FAIL429x2 a", "FAIL503x1 b"], SamplingParams(stop=("\nUser:",)))
    assert first.text == second.text == "Thought: call it\nAction: get_weather"
    assert len(state.requests) == 3 + 2
    assert engine.stats == {"requests": 1 + 3 + 2, "retries": 3}  # counted on the wire, GET /models included


def test_gives_up_after_max_attempts(api):
    url, state = api
    engine = _engine(url, max_attempts=3)
    with pytest.raises(EngineUnavailable, match=r"failed 3 times \(last: HTTP 500\).*raise max_attempts"):
        _run(engine, ["FAIL500x99"], SamplingParams())
    assert len(state.requests) == 3
    assert engine.stats["retries"] == 2


def test_bad_request_is_not_retried(api):
    url, state = api
    engine = _engine(url)
    with pytest.raises(EngineRequestError, match="HTTP 400"):
        _run(engine, ["FAIL400x1"], SamplingParams())
    assert len(state.requests) == 1


def test_concurrency_limit_holds(api):
    url, state = api
    state.delay_s = 0.05
    engine = _engine(url, max_concurrency=2)
    completions = _run(engine, [f"prompt {i}" for i in range(8)], SamplingParams())
    assert len(completions) == 8
    assert state.max_in_flight == 2  # never more than the limit, and the limit was used


def test_key_never_leaks_into_errors_logs_or_repr(api, caplog):
    url, state = api
    caplog.set_level(logging.DEBUG)
    engine = _engine(url)
    with pytest.raises(UserError) as raised:
        _run(engine, ["FAIL401x1"], SamplingParams())
    assert "TEST_OPENAI_KEY" in str(raised.value)  # says where the key comes from
    assert SECRET not in str(raised.value)
    assert len(state.requests) == 1  # a refused key is not retried
    assert SECRET not in caplog.text
    assert SECRET not in repr(engine)
    # Retries log a warning; it must not carry the key either.
    engine = _engine(url)
    _run(engine, ["FAIL429x1"], SamplingParams())
    assert "retry 1/" in caplog.text and SECRET not in caplog.text


def test_keys_are_refused_as_arguments_and_required_for_hosted_apis(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(UserError, match="environment only"):
        construct(OpenAIEngine, "--model openai", "gpt-x", base_url="http://127.0.0.1:1/v1", api_key="sk-123")
    with pytest.raises(UserError, match=r"unknown argument\(s\) \['backoff_initial'\]"):  # the SDK's backoff applies
        construct(OpenAIEngine, "--model openai", "gpt-x", base_url="http://127.0.0.1:1/v1", backoff_initial=1.0)
    with pytest.raises(UserError, match="export OPENAI_API_KEY"):
        OpenAIEngine("gpt-x")  # hosted API, no key in the environment
    local = OpenAIEngine("m", base_url="http://localhost:8000/v1")  # loopback servers need none
    assert local.mode == "completions" and local.max_api_stops is None
    hosted = OpenAIEngine("gpt-x", base_url="https://api.openai.com/v1", api_key_env="PATH")
    assert hosted.max_api_stops == 4


def test_cut_at_stop_takes_the_earliest():
    assert cut_at_stop("a B c A d", ["A", "B"]) == ("a ", True)
    assert cut_at_stop("abc", []) == ("abc", False)
