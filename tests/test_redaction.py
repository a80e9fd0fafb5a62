"""No credential reaches stdout, stderr, a log line or any written file, whatever fails.

Fake keys are set in the environment (and one under a variable name of the user's choice); a server on
127.0.0.1 echoes every header it receives (so every key we send) in its error text and in its replies, the
way real APIs quote a rejected key. Each failure path is driven through the CLI: the `openai` engine
(401 and 500), each remote tool backend (401, 503, a dead port, and a 200 that echoes the key into an
observation), the LLM judge (401 and 500), plus the driver's recording of a failed trajectory (what a Ray
worker's error goes through) and our loggers.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_runner_resume import write_setup

from toolbench_eval.cli import main
from toolbench_eval.redaction import redact, redact_value, register_secret

KEYS = {
    "OPENAI_API_KEY": "sk-FAKEopenaiKEY0123456789",
    "TOOLBENCH_EVAL_JUDGE_KEY": "judge-FAKE-key-13579",
    "TOOLBENCH_KEY": "tbkey-FAKE-24680-xyz",
    "MIRROR_API_KEY": "mirror-FAKE-11223-abc",
    "MY_LLM_CRED": "custom-FAKE-cred-99887",  # not a credential-shaped name: registered by the engine
}


class EchoServer:
    """Answers every request with `status` and a body quoting all request headers and the request body."""

    def __init__(self) -> None:
        self.status = 401
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                echo = f"headers={dict(self.headers.items())} body={raw.decode(errors='replace')}"
                if server.status == 200:
                    if self.path.endswith("/chat/completions"):  # mirror: an API reply in the content
                        body = {"choices": [{"message": {"content": json.dumps({"error": "", "response": echo})},
                                             "finish_reason": "stop"}]}
                    else:
                        body = {"error": "", "response": echo}
                else:
                    body = {"error": {"message": f"Incorrect API key provided: {echo}", "type": "invalid"}}
                data = json.dumps(body).encode()
                self.send_response(server.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Retry-After", "0.001")  # the OpenAI SDK retries 5xx: no real backoff
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _reply  # the names http.server dispatches to

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    echo = EchoServer()
    yield echo
    echo.close()


@pytest.fixture
def fake_keys(monkeypatch):
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    for name in ("SERVICE_URL", "MIRROR_API_BASE", "OPENAI_BASE_URL", "TOOLBENCH_EVAL_JUDGE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return KEYS


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def assert_no_key(root: Path, *texts: str) -> int:
    """No fake key in `texts` nor in any file under `root`; returns how many files were read."""
    for text in texts:
        for name, value in KEYS.items():
            assert value not in text, f"{name} leaked into output"
    count = 0
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            count += 1
            for name, value in KEYS.items():
                assert value.encode() not in data, f"{name} leaked into {path}"
    return count


def scripted_run(setup: dict[str, Path], out: Path, backend: str, *extra: str) -> list[str]:
    config = out.parent / f"{out.name}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(backend + "\n")
    return ["-v", "run", "--config", str(config), "--benchmark", str(setup["bench"]), "--groups", "G1_instruction",
            "--limit", "2", "--model", "scripted", "--model-args", f"script={setup['script']}", "--out", str(out),
            "--no-progress", *extra]


def test_the_rule_masks_env_credentials_registered_values_and_shapes(monkeypatch):
    monkeypatch.setenv("SOME_SERVICE_TOKEN", "tok-0123456789")
    monkeypatch.setenv("SSH_KEY_PATH", "/home/user/.ssh/id_ed25519")  # a path, not a key
    monkeypatch.setenv("SHORT_KEY", "abc")  # too short to be told from ordinary text
    register_secret("registered-secret-value")
    text = ("tok-0123456789 registered-secret-value /home/user/.ssh/id_ed25519 abc "
            "Authorization: Bearer eyJhbGciOi.x sk-proj-ABCDEFGHIJKLMNOP")
    assert redact(text) == "*** *** /home/user/.ssh/id_ed25519 abc Authorization: Bearer *** sk-***"
    assert redact_value({"k": ["tok-0123456789", 3], "tok-0123456789": None}) == {"k": ["***", 3], "***": None}


@pytest.mark.parametrize(("status", "seen"), [(401, "Incorrect API key provided"), (500, "HTTP 500")])
def test_openai_engine_failures(tmp_path, server, fake_keys, capsys, status, seen):
    server.status = status
    setup = write_setup(tmp_path, queries_per_group=2)
    out = tmp_path / "runs" / "openai"
    code = main(["-v", "run", "--benchmark", str(setup["bench"]), "--groups", "G1_instruction", "--model", "openai",
                 "--model-args", f"pretrained=m,base_url={server.url}/v1,api_key_env=MY_LLM_CRED,max_attempts=1",
                 "--out", str(out), "--no-progress", "--tool-backend", "local"])
    captured = capsys.readouterr()
    assert code in (1, 2, 3)
    assert seen in captured.out + captured.err + _events(out)  # the failure did arrive
    assert assert_no_key(tmp_path, captured.out, captured.err) >= 1


@pytest.mark.parametrize("backend", ["stb", "rapidapi", "mirror"])
@pytest.mark.parametrize("status", [401, 503, 200, "dead"])
def test_tool_backend_failures(tmp_path, server, fake_keys, capsys, backend, status):
    url = dead_url() if status == "dead" else server.url
    server.status = 200 if status == "dead" else status
    setup = write_setup(tmp_path, queries_per_group=2)
    option = "base_url" if backend == "mirror" else "url"
    extra = f", tools_dir: {setup['bench']}" if backend == "mirror" else ""
    # `observe` hands failures to the model, so their texts land in answer files too.
    mode = "observe" if status == 200 or status == 503 else "fail"
    config = (f"tool_backend: {{name: {backend}, {option}: '{url}', max_retries: 0, on_unavailable: {mode}"
              f"{', min_interval_s: 0' if backend == 'rapidapi' else ''}{extra}}}")
    out = tmp_path / "runs" / backend
    code = main(scripted_run(setup, out, config))
    captured = capsys.readouterr()
    assert code in (0, 1, 3), captured.err
    answers = list(out.glob("G*/*.json"))
    if status == 200 and backend != "mirror":  # the echo reached an observation, masked
        assert answers and "***" in answers[0].read_text()
    assert assert_no_key(tmp_path, captured.out, captured.err) >= 1


@pytest.mark.parametrize("status", [401, 500])
def test_llm_judge_failures(tmp_path, server, fake_keys, capsys, status):
    server.status = status
    setup = write_setup(tmp_path, queries_per_group=2)
    out = tmp_path / "runs" / "scored"
    config = f"tool_backend: {{name: cache, cache_dir: {setup['cache']}}}"
    assert main(scripted_run(setup, out, config)) == 0
    capsys.readouterr()
    code = main(["-v", "score", str(out), "--judge", "llm", "--judge-base-url", f"{server.url}/v1",
                 "--evaluate-times", "1"])
    captured = capsys.readouterr()
    assert code == 2
    assert "judge endpoint" in captured.err
    assert assert_no_key(tmp_path, captured.out, captured.err) >= 1


def test_a_failed_trajectory_record_and_our_logs_are_masked(tmp_path, fake_keys, capsys):
    """Ray worker errors reach the run folder through `Recorder.failed`, with their traceback text."""
    from toolbench_eval.benchmark.model import Query
    from toolbench_eval.cli import configure_logging
    from toolbench_eval.runner.driver import Recorder, WorkItem, WorkPlan
    from toolbench_eval.runner.rundir import RunDir

    item = WorkItem("G1_instruction", Query(query_id="1", query="q", group="G1_instruction", api_list=()))
    recorder = Recorder(RunDir(tmp_path / "run"), "CoT@1", WorkPlan([item], {"G1_instruction": 1},
                                                                    {"G1_instruction": 0}), progress=False)
    recorder.started(item)
    error = RuntimeError(f"worker died: Authorization: Bearer {KEYS['OPENAI_API_KEY']} key={KEYS['TOOLBENCH_KEY']}")
    recorder.failed(item, error, trace=f"Traceback ... {KEYS['TOOLBENCH_KEY']}")
    recorder.close()
    configure_logging(verbose=True)
    with __import__("toolbench_eval.redaction", fromlist=["redacting_streams"]).redacting_streams():
        logging.getLogger("toolbench_eval.test").warning("sent %s", KEYS["MIRROR_API_KEY"])
    captured = capsys.readouterr()
    assert "sent ***" in captured.err
    assert "worker died" in _events(tmp_path / "run")
    assert assert_no_key(tmp_path, captured.out, captured.err) == 1


def _events(run: Path) -> str:
    path = run / "events.jsonl"
    return path.read_text() if path.is_file() else ""
