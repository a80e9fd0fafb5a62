"""HTTP tool backends (stb, rapidapi, mirror) against scripted servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from toolbench_eval.benchmark.model import Api, Parameter, Tool
from toolbench_eval.errors import UserError
from toolbench_eval.tools.base import Status, ToolBackend, ToolCall, ToolServerUnavailable, render_observation
from toolbench_eval.tools.http import CircuitBreaker, status_for_error
from toolbench_eval.tools.mirror import SFT_SYSTEM, MirrorAPIBackend, extract_error_response
from toolbench_eval.tools.rapidapi import RapidAPIBackend
from toolbench_eval.tools.stb import STBServerBackend

KEY = "tb-SECRET-key-4242"
MIRROR_KEY = "mirror-SECRET-key-777"
FAST = {"backoff_s": 0.01, "max_backoff_s": 0.02, "trust_env": False}
OBSERVE = {**FAST, "on_unavailable": "observe"}  # a down server's error goes to the model, as upstream


class FakeServer:
    """A JSON server that answers from a script of `(status, body, delay_s)` and records requests.

    Bounded: once the script is used up it answers 418 (not retried), so a runaway client fails the test.
    """

    def __init__(self) -> None:
        self.replies: list[tuple[int, Any, float]] = []
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the name http.server dispatches to
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.requests.append(
                    {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                     "body": json.loads(raw or b"null")}
                )
                status, body, delay = server.replies.pop(0) if server.replies else (418, "script used up", 0)
                if delay:
                    server.release.wait(delay)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (timeout test)
                    pass

            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, *replies: tuple) -> None:
        self.replies.extend((r[0], r[1], r[2] if len(r) > 2 else 0.0) for r in replies)

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server():
    fake = FakeServer()
    yield fake
    fake.close()


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("TOOLBENCH_KEY", KEY)
    monkeypatch.setenv("MIRROR_API_KEY", MIRROR_KEY)
    monkeypatch.delenv("SERVICE_URL", raising=False)
    monkeypatch.delenv("MIRROR_API_BASE", raising=False)


def run_calls(backend, *calls: ToolCall):
    async def go():
        try:
            return [await backend.call(call) for call in calls]
        finally:
            await backend.close()

    return asyncio.run(go())


CALL = ToolCall(
    category_name="Artificial Intelligence/Machine Learning",
    tool_name="TTS Kraken",
    api_name="ID",
    arguments={"Text": "héllo 'world'", "limit": 3, "exact": True},
)


# ---- stb ------------------------------------------------------------------------------------------------
def test_stb_sends_upstream_request_and_reads_reply(server, keys):
    server.script((200, {"error": "", "response": {"languages": ["en", "fr"]}}))
    backend = STBServerBackend(url=server.url + "/virtual", **FAST)
    (obs,) = run_calls(backend, CALL)

    assert (obs.status, obs.error, obs.response) == (Status.OK, "", {"languages": ["en", "fr"]})
    (request,) = server.requests
    assert request["path"] == "/virtual"
    body = request["body"]
    assert list(body) == ["category", "tool_name", "api_name", "tool_input", "strip", "toolbench_key"]
    # category as written (the server standardizes it), tool and api names standardized as `_step` sends them
    assert body["category"] == "Artificial Intelligence/Machine Learning"
    assert body["tool_name"] == "tts_kraken"
    assert body["api_name"] == "is_id"
    assert isinstance(body["tool_input"], str)
    assert json.loads(body["tool_input"]) == {"text": "héllo 'world'", "limit": 3, "exact": True}
    assert body["strip"] == "truncate"
    assert request["headers"]["toolbench_key"] == KEY
    assert body["toolbench_key"] == KEY


def test_stb_url_from_service_url_env(server, keys, monkeypatch):
    monkeypatch.setenv("SERVICE_URL", server.url + "/virtual")
    server.script((200, {"error": "", "response": "ok"}))
    (obs,) = run_calls(STBServerBackend(**FAST), CALL)
    assert obs.response == "ok" and server.requests[0]["path"] == "/virtual"


@pytest.mark.parametrize(
    "error, status",
    [
        ("API not working error...", Status.NOT_WORKING),
        ("Unauthorized error...", Status.UNAUTHORIZED),
        ("Unsubscribed error...", Status.UNSUBSCRIBED),
        ("Too many requests error...", Status.TOO_MANY_REQUESTS),
        ("Rate limit per minute error...", Status.RATE_LIMIT),
        ("Rate limit error...", Status.RATE_LIMIT),  # upstream bug: server sends this, _step maps it to 0
        ("Message error...", Status.MESSAGE_ERROR),
        ("Tool input parse error...\n", Status.OK),
        ("something else", Status.OK),
    ],
)
def test_stb_error_strings_map_to_status(server, keys, error, status):
    server.script((200, {"error": error, "response": "x"}))
    (obs,) = run_calls(STBServerBackend(url=server.url, **FAST), CALL)
    assert obs.status == status and obs.error == error


def test_upstream_status_flag_keeps_upstream_rate_limit_bug(server, keys):
    server.script((200, {"error": "Rate limit error...", "response": ""}))
    (obs,) = run_calls(STBServerBackend(url=server.url, upstream_status=True, **FAST), CALL)
    assert obs.status == Status.OK
    assert status_for_error("Rate limit error...", upstream=True) == Status.OK


def test_retries_5xx_then_succeeds(server, keys):
    server.script((503, {"detail": "busy"}), (502, b"bad gateway"), (200, {"error": "", "response": "done"}))
    (obs,) = run_calls(STBServerBackend(url=server.url, max_retries=3, **FAST), CALL)
    assert obs.status == Status.OK and obs.response == "done"
    assert len(server.requests) == 3
    assert server.requests[0]["body"] == server.requests[2]["body"]


def test_5xx_after_retries_is_not_working(server, keys):
    server.script(*[(500, {"detail": "boom"})] * 3)
    (obs,) = run_calls(STBServerBackend(url=server.url, max_retries=2, **OBSERVE), CALL)
    assert obs.status == Status.NOT_WORKING
    assert obs.error == "request invalid, data error. status_code=500"
    assert len(server.requests) == 3  # first try + 2 retries


def test_429_maps_to_too_many_requests(server, keys):
    server.script((429, {"detail": "slow down"}), (429, {"detail": "slow down"}))
    (obs,) = run_calls(STBServerBackend(url=server.url, max_retries=1, **OBSERVE), CALL)
    assert obs.status == Status.TOO_MANY_REQUESTS
    assert "status_code=429" in obs.error
    assert len(server.requests) == 2


def test_4xx_is_request_error_without_retry(server, keys):
    server.script((422, {"detail": "missing field"}))
    (obs,) = run_calls(STBServerBackend(url=server.url, max_retries=3, **FAST), CALL)
    assert obs.status == Status.REQUEST_ERROR and obs.error.endswith("status_code=422")
    assert len(server.requests) == 1


def test_timeout_maps_to_timeout_status(server, keys):
    server.script((200, {"error": "", "response": "late"}, 10.0))
    (obs,) = run_calls(STBServerBackend(url=server.url, timeout_s=0.3, **OBSERVE), CALL)
    assert obs.status == Status.TIMEOUT
    assert obs.error == "Timeout error..."
    assert len(server.requests) == 1  # timeouts are not retried by default


def test_connection_refused_is_not_working():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    backend = STBServerBackend(url=f"http://127.0.0.1:{port}/virtual", max_retries=1, **OBSERVE)
    (obs,) = run_calls(backend, CALL)
    assert obs.status == Status.NOT_WORKING
    assert obs.error.startswith("API not working error...")


def dead_url() -> str:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/virtual"


@pytest.mark.parametrize("replies", [[(500, {"detail": "boom"})] * 2, [(429, {})] * 2, [(401, {"detail": "key"})],
                                     [(404, "no such route")]])
def test_server_failures_are_infrastructure_errors_by_default(server, keys, replies):
    server.script(*replies)
    with pytest.raises(ToolServerUnavailable, match="tool backend 'stb' is unavailable"):
        run_calls(STBServerBackend(url=server.url, max_retries=1, **FAST), CALL)


def test_request_errors_stay_observations_in_fail_mode(server, keys):
    server.script((422, {"detail": "missing field"}))
    (obs,) = run_calls(STBServerBackend(url=server.url, **FAST), CALL)  # a bad request is the model's own
    assert obs.status == Status.REQUEST_ERROR


@pytest.mark.parametrize("make", [
    lambda url: STBServerBackend(url=url, max_retries=0, **FAST),
    lambda url: RapidAPIBackend(url=url, max_retries=0, min_interval_s=0, **FAST),
])
def test_dead_server_raises_for_every_remote_backend(keys, make):
    with pytest.raises(ToolServerUnavailable, match="connection failed"):
        run_calls(make(dead_url()), CALL)


def test_circuit_breaker_stops_calling_a_dead_server(server, keys):
    server.script(*[(503, {})] * 10)
    backend = STBServerBackend(url=server.url, max_retries=0, breaker_threshold=2, breaker_cooldown_s=60, **OBSERVE)
    observations = run_calls(backend, CALL, CALL, CALL, CALL)
    assert len(server.requests) == 2  # the third and fourth calls never reach the server
    assert "circuit open" in observations[2].error and observations[2].status == Status.NOT_WORKING


def test_circuit_breaker_tries_again_after_the_cooldown():
    clock = [0.0]
    breaker = CircuitBreaker(threshold=1, cooldown_s=10, clock=lambda: clock[0])
    breaker.record(False)
    assert breaker.open_for() == 10
    clock[0] = 10.5
    assert breaker.open_for() == 0  # one call may go through
    breaker.record(True)
    assert breaker.failures_in_a_row == 0 and breaker.open_for() == 0


def test_on_unavailable_is_checked(keys):
    with pytest.raises(UserError, match="on_unavailable 'ignore' is not one of"):
        STBServerBackend(url="http://127.0.0.1:1", on_unavailable="ignore")


@pytest.mark.parametrize("body", [b"<html>oops</html>", [1, 2], {"unexpected": "shape"}])
def test_bad_reply_body_is_request_error(server, keys, body):
    server.script((200, body))
    (obs,) = run_calls(STBServerBackend(url=server.url, **FAST), CALL)
    assert obs.status == Status.REQUEST_ERROR and obs.error == "request invalid, data error"


def test_unserializable_arguments_are_bad_input_not_exception(server, keys):
    (obs,) = run_calls(STBServerBackend(url=server.url, **FAST), ToolCall("Data", "t", "a", {"x": object()}))
    assert obs.status == Status.BAD_INPUT and obs.error.startswith("Tool input parse error...")
    assert server.requests == []


def test_concurrent_calls_all_answered(server, keys):
    server.script(*[(200, {"error": "", "response": i}) for i in range(6)])
    backend = STBServerBackend(url=server.url, max_concurrency=2, **FAST)

    async def go():
        try:
            return await asyncio.gather(*(backend.call(CALL) for _ in range(6)))
        finally:
            await backend.close()

    observations = asyncio.run(go())
    assert sorted(o.response for o in observations) == list(range(6))
    assert len(server.requests) == 6


def test_key_never_logged_repr_or_observed(server, keys, caplog):
    caplog.set_level(logging.DEBUG)
    # the server echoes the key back in both fields, and fails once so the retry path logs too
    server.script((500, {"detail": "x"}), (200, {"error": f"bad key {KEY}", "response": {"echo": KEY}}))
    backend = STBServerBackend(url=server.url, max_retries=1, **FAST)
    text_repr = repr(backend)
    (obs,) = run_calls(backend, CALL)

    assert server.requests[0]["headers"]["toolbench_key"] == KEY  # it was sent ...
    assert KEY not in caplog.text  # ... but never logged
    assert "retrying" in caplog.text  # (the log did record the retry)
    assert KEY not in text_repr and "key=<set>" in text_repr
    assert KEY not in render_observation(obs) and "***" in render_observation(obs)


def test_backends_implement_protocol(keys):
    assert isinstance(STBServerBackend(url="http://127.0.0.1:1/virtual"), ToolBackend)
    assert isinstance(MirrorAPIBackend(base_url="http://127.0.0.1:1/v1"), ToolBackend)


# ---- rapidapi ---------------------------------------------------------------------------------------------
def test_rapidapi_requires_key_from_env(monkeypatch):
    monkeypatch.delenv("TOOLBENCH_KEY", raising=False)
    with pytest.raises(UserError, match="TOOLBENCH_KEY is not set"):
        RapidAPIBackend(url="http://127.0.0.1:1/rapidapi")


def test_rapidapi_requires_url(keys):
    with pytest.raises(UserError, match="SERVICE_URL") as info:
        RapidAPIBackend()
    assert KEY not in str(info.value)


def test_rapidapi_posts_proxy_format(server, keys):
    server.script((200, {"error": "Unsubscribed error...", "response": "You are not subscribed to this API."}))
    backend = RapidAPIBackend(url=server.url + "/rapidapi", min_interval_s=0, **FAST)
    assert backend._http.timeout_s == 15.0  # upstream's timeout for the real proxy
    assert KEY not in repr(backend)
    (obs,) = run_calls(backend, CALL)
    assert obs.status == Status.UNSUBSCRIBED
    request = server.requests[0]
    assert request["path"] == "/rapidapi"
    assert request["headers"]["toolbench_key"] == KEY
    assert set(request["body"]) == {"category", "tool_name", "api_name", "tool_input", "strip", "toolbench_key"}


# ---- mirror -----------------------------------------------------------------------------------------------
def test_sft_system_prompt_is_upstream_verbatim():
    # sha256 of StableToolBench server/system_prompts.py SFT_SYSTEM (2,888 characters).
    assert len(SFT_SYSTEM) == 2888
    digest = hashlib.sha256(SFT_SYSTEM.encode()).hexdigest()
    assert digest == "8cdc5f128160a2146e872e815cf15c81e73c05670ddd74fd649e28fcffef06ec"


@pytest.fixture
def tools_dir(tmp_path):
    folder = tmp_path / "tools" / "Artificial_Intelligence_Machine_Learning"
    folder.mkdir(parents=True)
    tool = {
        "tool_name": "TTS Kraken",
        "tool_description": "Text to speech.",
        "title": "TTS Kraken",
        "api_list": [
            {"name": "List Languages", "url": "", "description": "Supported languages.", "method": "GET",
             "required_parameters": [], "optional_parameters": []},
            {"name": "ID", "url": "", "description": "Voice by id.", "method": "GET",
             "required_parameters": [{"name": "Text", "type": "STRING", "description": "words", "default": ""}],
             "optional_parameters": [{"name": "limit", "type": "NUMBER", "description": "max", "default": 5}]},
        ],
    }
    (folder / "tts_kraken.json").write_text(json.dumps(tool))
    return tmp_path / "tools"


def chat_reply(content: str) -> dict[str, Any]:
    return {"id": "x", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}


def test_mirror_request_format_and_json_reply(server, keys, tools_dir):
    server.script((200, chat_reply(json.dumps({"error": "", "response": "{\"voice\": \"Anna\"}"}))))
    backend = MirrorAPIBackend(base_url=server.url + "/v1", model="mirror-7b", tools_dir=tools_dir, **FAST)
    (obs,) = run_calls(backend, CALL)

    assert (obs.status, obs.error, obs.response) == (Status.OK, "", "{\"voice\": \"Anna\"}")
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == f"Bearer {MIRROR_KEY}"
    body = request["body"]
    assert (body["model"], body["max_tokens"], body["seed"], body["temperature"]) == ("mirror-7b", 2048, 42, 0.1)
    system, user = body["messages"]
    assert system == {"role": "system", "content": SFT_SYSTEM}
    expected_doc = (
        "{'api_name': 'ID', 'api_description': 'Voice by id.', "
        "'required_parameters': [{'name': 'Text', 'type': 'STRING', 'description': 'words', 'default': ''}], "
        "'optional_parameters': [{'name': 'limit', 'type': 'NUMBER', 'description': 'max', 'default': 5}], "
        "'tool_description': 'Text to speech.', 'tool_name': 'tts_kraken', "
        "'tool_category': 'Artificial_Intelligence_Machine_Learning'}"
    )
    expected_request = "{'text': \"héllo 'world'\", 'limit': 3, 'exact': True}"
    assert user == {"role": "user", "content": f"API doc:\n{expected_doc}\n\nRequest:\n{expected_request}"}


def test_mirror_cache_variant_uses_standardized_api_name(server, keys, tools_dir):
    server.script((200, chat_reply('{"error": "", "response": "ok"}')))
    backend = MirrorAPIBackend(base_url=server.url + "/v1", tools_dir=tools_dir, variant="mirrorapi_cache", **FAST)
    run_calls(backend, CALL)
    assert server.requests[0]["body"]["messages"][1]["content"].startswith("API doc:\n{'api_name': 'is_id',")


def test_mirror_docs_from_loader_tools(server, keys):
    tool = Tool(
        category_name="Artificial Intelligence/Machine Learning", tool_name="TTS Kraken",
        standardized_name="tts_kraken", tool_description="Text to speech.",
        apis=(Api("Artificial Intelligence/Machine Learning", "TTS Kraken", "ID", "Voice by id.",
                  required_parameters=(Parameter("Text", "STRING", "words", ""),)),),
    )
    server.script((200, chat_reply('{"error": "", "response": "ok"}')))
    backend = MirrorAPIBackend(base_url=server.url + "/v1", tools={(tool.category_name, "tts_kraken"): tool}, **FAST)
    (obs,) = run_calls(backend, CALL)
    assert obs.response == "ok"
    content = server.requests[0]["body"]["messages"][1]["content"]
    assert "'required_parameters': [{'name': 'Text', 'type': 'STRING', 'description': 'words', 'default': ''}]" in content


def test_mirror_non_json_reply_is_regex_extracted(server, keys, tools_dir):
    # MirrorAPI often writes an inner JSON without escaping its quotes: not valid JSON as a whole.
    content = '{\n  "error": "",\n  "response": "{"status": 0, "languages": ["en"]}"\n}'
    server.script((200, chat_reply(content)), (200, chat_reply(content)))
    backend = MirrorAPIBackend(base_url=server.url + "/v1", tools_dir=tools_dir, **FAST)
    (obs,) = run_calls(backend, CALL)
    assert obs.status == Status.OK and obs.response == '{"status": 0, "languages": ["en"]}'
    upstream = MirrorAPIBackend(base_url=server.url + "/v1", tools_dir=tools_dir, upstream_extraction=True, **FAST)
    (raw,) = run_calls(upstream, CALL)
    assert raw.response == '{"status": 0, "languages": ["en"]}"\n}'  # upstream keeps the closing quote and brace


def test_mirror_unparseable_reply_is_failed_fake_response(server, keys, tools_dir):
    server.script((200, chat_reply("I cannot answer that.")))
    (obs,) = run_calls(MirrorAPIBackend(base_url=server.url + "/v1", tools_dir=tools_dir, **FAST), CALL)
    assert obs.error == "Failed to generate fake response" and obs.response == ""


def test_mirror_bad_completion_shape_is_request_error(server, keys, tools_dir):
    server.script((200, {"choices": []}))
    (obs,) = run_calls(MirrorAPIBackend(base_url=server.url + "/v1", tools_dir=tools_dir, **FAST), CALL)
    assert obs.status == Status.REQUEST_ERROR


def test_mirror_missing_doc_is_an_observation(server, keys, tools_dir):
    call = ToolCall("Artificial Intelligence/Machine Learning", "TTS Kraken", "No Such API", {})
    (obs,) = run_calls(MirrorAPIBackend(base_url=server.url + "/v1", tools_dir=tools_dir, **FAST), call)
    assert obs.status == Status.REQUEST_ERROR and "no documentation for API 'No Such API'" in obs.error
    assert server.requests == []


def test_mirror_key_not_logged_or_echoed(server, keys, tools_dir, caplog):
    caplog.set_level(logging.DEBUG)
    server.script((503, {}), (200, chat_reply(json.dumps({"error": "", "response": f"your key is {MIRROR_KEY}"}))))
    backend = MirrorAPIBackend(base_url=server.url + "/v1", tools_dir=tools_dir, max_retries=1, **FAST)
    (obs,) = run_calls(backend, CALL)
    assert server.requests[0]["headers"]["authorization"].endswith(MIRROR_KEY)
    assert MIRROR_KEY not in caplog.text and MIRROR_KEY not in repr(backend)
    assert MIRROR_KEY not in render_observation(obs)


def test_dead_mirror_server_raises(keys, tools_dir):
    backend = MirrorAPIBackend(base_url=dead_url(), tools_dir=tools_dir, max_retries=0, **FAST)
    with pytest.raises(ToolServerUnavailable, match="tool backend 'mirror' is unavailable"):
        run_calls(backend, CALL)


def test_mirror_empty_key_sends_vllm_placeholder(server, monkeypatch, tools_dir):
    monkeypatch.delenv("MIRROR_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server.script((200, chat_reply('{"error": "", "response": "ok"}')))
    run_calls(MirrorAPIBackend(base_url=server.url + "/v1", tools_dir=tools_dir, **FAST), CALL)
    assert server.requests[0]["headers"]["authorization"] == "Bearer EMPTY"


@pytest.mark.parametrize(
    "text, expected",
    [
        ('```json\n{"error": "", "response": "ok"}\n```', ("", "ok")),
        ('{"error": "", "response": {"a": 1}}', ("", {"a": 1})),
        ('{"mechanism_of_the_api": "looks up", "error": "", "response": "{"a": "b"}"}', ("", '{"a": "b"}')),
        ('{"error": "Invalid id", "response": ""}', ("Invalid id", "")),
        ("[1, 2]", None),
    ],
)
def test_extract_error_response(text, expected):
    assert extract_error_response(text) == expected
