"""Native function calling (`--model-args tool_format=native`): the `openai` engine sends the functions as
`tools` and reads `tool_calls` back; ReAct and DFSDT build their trees from them, under either protocol, and
the answer files score with the rule judge. The server is a local OpenAI-compatible stand-in."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from test_runner_resume import GROUPS, write_setup

from toolbench_eval.cli import main

WORD_CALL = {"id": "call_word1", "type": "function",
             "function": {"name": "get_word_for_word_tool", "arguments": '{"is_id": 1}'}}
FINISH_CALL = {"id": "call_fin1", "type": "function",
               "function": {"name": "Finish",
                            "arguments": '{"return_type": "give_answer", "final_answer": "The word is apple."}'}}


class ToolCallingServer:
    """Calls the word API first (no content), then answers with Finish (with content); records requests."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(request)
                answered = any(m.get("role") == "tool" for m in request["messages"])
                first = request["tools"][0]["function"]["name"]
                call = WORD_CALL if first == WORD_CALL["function"]["name"] else {
                    "id": "call_any1", "type": "function", "function": {"name": first, "arguments": "{}"}}
                message = ({"role": "assistant", "content": "I know the word now.", "tool_calls": [FINISH_CALL]}
                           if answered else {"role": "assistant", "content": None, "tool_calls": [call]})
                body = json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": request["model"],
                                   "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
                                   "usage": {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()


@pytest.fixture
def server():
    serving = ToolCallingServer()
    yield serving
    serving.httpd.shutdown()
    serving.httpd.server_close()


def native_args(setup, out, server, *extra):
    out.parent.mkdir(parents=True, exist_ok=True)
    config = out.parent / "config.yaml"
    config.write_text(f"tool_backend: {{name: cache, cache_dir: {setup['cache']}}}\n")
    return ["run", "--config", str(config), "--benchmark", str(setup["bench"]), "--groups", ",".join(GROUPS),
            "--model", "openai", "--model-args", f"pretrained=gpt-test,base_url={server.base_url},tool_format=native",
            "--out", str(out), "--no-progress", "--limit", "2", "--concurrency", "1", *extra]


@pytest.mark.parametrize("method", ["react", "dfsdt"])
@pytest.mark.parametrize("protocol", ["stabletoolbench", "toolbench-eval"])
def test_native_runs_answer_and_score(tmp_path, server, method, protocol, capsys):
    setup = write_setup(tmp_path, queries_per_group=2)
    out = tmp_path / "runs" / f"{method}-{protocol}"
    assert main(native_args(setup, out, server, "--method", method, "--protocol", protocol)) == 0
    first = server.requests[0]
    assert [tool["function"]["name"] for tool in first["tools"]] == ["get_word_for_word_tool", "Finish"]
    assert first["messages"][0]["role"] == "system" and "Specifically, you have access" not in (
        first["messages"][0]["content"])  # functions go in `tools`, not in the prompt
    if protocol == "stabletoolbench":  # ChatGPTFunction's request: no temperature, zero penalties
        assert (first["max_tokens"], first["frequency_penalty"], first["presence_penalty"]) == (1024, 0, 0)
        assert "temperature" not in first
    else:
        assert first["temperature"] == 0.0 and "frequency_penalty" not in first
    second = server.requests[1]
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]
    assert second["messages"][3] == {"role": "tool", "name": "get_word_for_word_tool",
                                     "content": '{"error": "", "response": "apple"}', "tool_call_id": "call_word1"}
    assert "function_call" not in second["messages"][2]

    answers = sorted(out.glob("G*/*.json"))
    assert len(answers) == 4
    data = json.loads(answers[0].read_text())
    chain = data["trys"][0]["chain"] if method == "react" else _first_path(data["tree"]["tree"])
    # content null -> no Thought node; Action -> Action Input per call; then Thought (content) for Finish.
    assert [n["node_type"] for n in chain] == ["Action", "Action Input", "Thought", "Action", "Action Input"]
    assert chain[-1]["observation_code"] == 3 and data["answer_generation"]["valid_data"] is True
    assert data["answer_generation"]["total_tokens"] == 220  # usage, per call
    messages = data["answer_generation"]["train_messages"][-1]
    assert messages[2]["tool_calls"][0]["id"] == "call_word1"


@pytest.mark.parametrize("method", ["react", "dfsdt"])
def test_native_answer_files_score_with_the_rule_judge(tmp_path, server, method, capsys):
    out = tmp_path / "local"
    args = ["run", "--benchmark", "localtoolbench", "--groups", "G1_instruction", "--limit", "2", "--method", method,
            "--model", "openai", "--model-args", f"pretrained=gpt-test,base_url={server.base_url},tool_format=native",
            "--out", str(out), "--no-progress", "--concurrency", "1"]
    assert main(args) == 0
    assert main(["score", str(out), "--judge", "rule", "--evaluate-times", "1"]) == 0
    report = json.loads((out / "scores" / "pass_rate_rule.json").read_text())
    assert report["judge"]["name"] == "rule" and "G1_instruction" in report["groups"]
    assert json.loads((out / "manifest.json").read_text())["tool_format"] == "native"
    written = tmp_path / "board"
    assert main(["export", str(out), "--out", str(written), "--no-plots"]) == 0
    assert f"| {method} (native calls) |" in (written / "leaderboard.md").read_text()


def _first_path(node):
    path = []
    while node.get("children"):
        node = node["children"][0]
        path.append(node)
    return path


def test_native_needs_an_engine_that_can_call_tools(tmp_path, capsys):
    setup = write_setup(tmp_path, queries_per_group=1)
    out = tmp_path / "runs" / "scripted"
    args = ["run", "--benchmark", str(setup["bench"]), "--groups", "G1_instruction", "--model", "scripted",
            "--model-args", f"script={setup['script']},tool_format=native", "--out", str(out), "--no-progress"]
    assert main(args) == 2
    assert "tool_format=native" in capsys.readouterr().err
    bad = ["run", "--benchmark", str(setup["bench"]), "--model", "openai", "--model-args", "tool_format=psychic",
           "--out", str(out), "--no-progress"]
    assert main(bad) == 2


def test_chat_mode_with_our_chat_template_is_refused(tmp_path, server, capsys):
    setup = write_setup(tmp_path, queries_per_group=1)
    args = ["run", "--benchmark", str(setup["bench"]), "--groups", "G1_instruction", "--model", "openai",
            "--model-args", f"pretrained=gpt-test,base_url={server.base_url},mode=chat", "--prompt-style",
            "chat_template", "--out", str(tmp_path / "twice"), "--no-progress"]
    assert main(args) == 2
    assert "template the conversation twice" in capsys.readouterr().err
    assert server.requests == []
