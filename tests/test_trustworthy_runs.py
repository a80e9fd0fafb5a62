"""Runs that fail for reasons outside the model say so, keep nothing a corrected command would trip over,
and show their progress.

- A tool server that is down is an infrastructure failure: no answer file, its own count and event, a
  non-zero exit (3 past `--max-infra-failures`), a retry on the next run, and its own column in scores.
- Bad options, backends and folders are refused before a model loads, with exit 2 and no run folder left.
- The progress line shows trajectories in flight, model calls and tokens/s, and `-q` silences it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_runner_resume import GROUPS, answer_bytes, run_args, write_setup

from toolbench_eval.cli import main
from toolbench_eval.scoring.passrate import infrastructure_failures


class SwitchableServer:
    """A StableToolBench-style tool server that is either down (HTTP 503) or answers `apple`."""

    def __init__(self) -> None:
        self.up = False
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the name http.server dispatches to
                self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
                server.requests += 1
                status, body = (200, {"error": "", "response": "apple"}) if server.up else (503, {"detail": "down"})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/virtual"


@pytest.fixture
def tool_server():
    server = SwitchableServer()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def stb_args(setup: dict[str, Path], out: Path, url: str, *extra: str) -> list[str]:
    args = run_args(setup, out, *extra)
    (out.parent / "config.yaml").write_text(
        f"tool_backend: {{name: stb, url: '{url}', max_retries: 0, breaker_cooldown_s: 0}}\n")
    return args


def events(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]


def test_a_dead_tool_server_is_an_infrastructure_failure_retried_on_resume(tmp_path, tool_server, capsys):
    setup = write_setup(tmp_path, queries_per_group=3)
    out = tmp_path / "runs" / "stb"
    code = main(stb_args(setup, out, tool_server.url, "--concurrency", "1", "--max-infra-failures", "2"))
    captured = capsys.readouterr()
    assert code == 3, captured.err
    assert answer_bytes(out) == {}  # an outage is nobody's answer
    failed = [e for e in events(out) if e["event"] == "query_failed"]
    assert len(failed) == 3 and {e["kind"] for e in failed} == {"infrastructure_error"}
    assert "tool backend 'stb' is unavailable" in failed[0]["error"]
    assert any(e["event"] == "run_aborted" for e in events(out))
    assert "3 infrastructure failures" in captured.out and "stopped starting queries" in captured.out
    assert "more than --max-infra-failures 2" in captured.out

    # Scores say why those queries have no answer.
    assert main(["score", str(out)]) == 0
    report = json.loads((out / "scores" / "pass_rate_rule.json").read_text())
    assert report["groups"]["G1_instruction"]["n_infrastructure_error"] == 3
    assert "no answer because a tool server" in capsys.readouterr().out

    tool_server.up = True  # the server is back: the same command answers everything, nothing twice
    assert main(stb_args(setup, out, tool_server.url)) == 0
    assert len(answer_bytes(out)) == 2 * 3
    assert infrastructure_failures(out).get("G1_instruction", {}) == {}  # answered since: no longer marked


def test_below_the_threshold_the_run_finishes_and_exits_1(tmp_path, tool_server, capsys):
    setup = write_setup(tmp_path, queries_per_group=2)
    out = tmp_path / "runs" / "stb"
    assert main(stb_args(setup, out, tool_server.url, "--max-infra-failures", "10")) == 1
    captured = capsys.readouterr().out
    assert "4 infrastructure failures" in captured and "a re-run retries them" in captured
    assert not any(e["event"] == "run_aborted" for e in events(out))


def test_the_circuit_breaker_spares_a_dead_server(tmp_path, tool_server):
    setup = write_setup(tmp_path, queries_per_group=6)
    out = tmp_path / "runs" / "stb"
    (tmp_path / "runs").mkdir()
    args = run_args(setup, out, "--concurrency", "1", "--max-infra-failures", "100")
    (out.parent / "config.yaml").write_text(
        f"tool_backend: {{name: stb, url: '{tool_server.url}', max_retries: 0, breaker_threshold: 2, "
        "breaker_cooldown_s: 600}\n")
    assert main(args) == 1
    assert tool_server.requests == 2  # 12 queries failed, only the first two reached the server
    assert len([e for e in events(out) if e["event"] == "query_failed"]) == 12


# ---- refused before anything heavy ----------------------------------------------------------------
@pytest.mark.parametrize(("extra", "config", "message"), [
    (["--fusion", "bogus"], "", "'bogus' is not a fusion rule"),
    (["--fusion", "bogus", "--buckets", "auto:2"], "", "'bogus' is not a fusion rule"),
    ([], "tool_backend: {name: rapidapi}", "TOOLBENCH_KEY is not set"),
    ([], "tool_backend: {name: stb}", "no server URL"),
    ([], "tool_backend: {name: stb, url: 'http://127.0.0.1:1', on_unavailable: shrug}", "on_unavailable"),
    (["--model", "hf", "--model-args", "pretrained=default,bogus_arg=1"], "", "unknown argument(s) ['bogus_arg']"),
])
def test_bad_options_fail_before_the_model_and_leave_no_folder(tmp_path, capsys, monkeypatch, extra, config,
                                                               message):
    monkeypatch.delenv("TOOLBENCH_KEY", raising=False)
    monkeypatch.delenv("SERVICE_URL", raising=False)
    setup = write_setup(tmp_path, queries_per_group=1)
    out = tmp_path / "runs" / "bad"
    args = run_args(setup, out)
    if config:
        (out.parent / "config.yaml").write_text(config + "\n")
    if "--model" in extra:  # replace the scripted engine
        index = args.index("--model")
        del args[index:index + 4]
    assert main([*args, *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_failure_after_the_manifest_leaves_no_folder_and_the_fix_runs(tmp_path, capsys):
    setup = write_setup(tmp_path, queries_per_group=1)
    out = tmp_path / "runs" / "one"
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    args = run_args(setup, out)
    args[args.index("--model-args") + 1] = f"script={broken}"
    assert main(args) == 2  # the rule file is read when the engine is built, after the manifest
    assert "not a scripted-engine rule file" in capsys.readouterr().err
    assert not out.exists()
    assert main(run_args(setup, out)) == 0  # the corrected command is not refused


def test_a_folder_with_answers_is_kept_when_a_later_run_fails(tmp_path, capsys):
    setup = write_setup(tmp_path, queries_per_group=1)
    out = tmp_path / "runs" / "one"
    assert main(run_args(setup, out, "--limit", "1")) == 0
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    args = run_args(setup, out, "--limit", "2")
    args[args.index("--model-args") + 1] = f"script={broken}"  # model_args is part of the config: force it
    assert main([*args, "--force-config"]) == 2
    assert len(answer_bytes(out)) == len(GROUPS)


@pytest.mark.parametrize("where", ["out", "cache"])
def test_unwritable_folders_are_a_clear_error(tmp_path, capsys, monkeypatch, where):
    setup = write_setup(tmp_path, queries_per_group=1)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    args = run_args(setup, tmp_path / "runs" / "one")
    if where == "out":
        args = _with_out(args, blocker / "run")
    else:
        monkeypatch.setenv("TOOLBENCH_EVAL_CACHE", str(blocker / "cache"))
        (tmp_path / "runs" / "config.yaml").write_text("tool_backend: {name: local}\n")  # its database is cached
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "toolbench-eval: error:" in err and "Traceback" not in err
    assert ("run folder" if where == "out" else "cache folder") in err
    assert not (tmp_path / "runs" / "one").exists()


def _with_out(args: list[str], out: Path) -> list[str]:
    args[args.index("--out") + 1] = str(out)
    return args


# ---- progress -------------------------------------------------------------------------------------
def test_progress_shows_flight_calls_and_rate_and_quiet_hides_it(tmp_path, capsys, monkeypatch):
    from toolbench_eval.runner import driver

    monkeypatch.setattr(driver, "PROGRESS_REFRESH_S", 0.05)
    setup = write_setup(tmp_path, queries_per_group=2)
    args = [a for a in run_args(setup, tmp_path / "runs" / "shown", delay=0.1) if a != "--no-progress"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "run: " in err and "in_flight=" in err and "calls=" in err and "tok/s=" in err
    assert "calls=8" in err  # two model calls per query, counted as they happen
    quiet = [a for a in run_args(setup, tmp_path / "runs" / "quiet") if a != "--no-progress"]
    assert main(["-q", *quiet]) == 0
    assert "calls=" not in capsys.readouterr().err
