"""The LLM judge against a scripted OpenAI-compatible server on 127.0.0.1 (stdlib http.server)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest

from toolbench_eval.benchmark.model import Query
from toolbench_eval.scoring.judge_cache import ResponseCache
from toolbench_eval.scoring.labels import AnswerStatus, record_from_converted
from toolbench_eval.scoring.llm_judge import JudgeUnavailable, LLMJudge
from toolbench_eval.scoring.passrate import score_converted


class ScriptedServer:
    """Answers /v1/chat/completions with a tool call chosen from markers in the prompt:
    GOOD -> Solved, BAD -> Unsolved, MAYBE -> Unsure (then parse_answer_status: Solved),
    MALFORMED -> a reply without a function call, FLAKY -> HTTP 500 on the first try,
    DENIED -> HTTP 401; select_better_answer picks the answer that says BEST."""

    def __init__(self):
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.flaky_failed = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                server.headers.append({"Authorization": self.headers.get("Authorization")})
                status, payload = server.reply(body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Retry-After", "0.001")  # honoured by the SDK's retries: no real backoff
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def reply(self, body: dict) -> tuple[int, dict]:
        prompt = body["messages"][0]["content"]
        name = body["tool_choice"]["function"]["name"]
        if "DENIED" in prompt:
            return 401, {"error": {"message": "bad key", "type": "invalid_request_error"}}
        if "FLAKY" in prompt and not self.flaky_failed:
            self.flaky_failed = True
            return 500, {"error": {"message": "boom", "type": "server_error"}}
        if "MALFORMED" in prompt:
            return 200, completion(message={"role": "assistant", "content": "I think it is solved."})
        if name == "select_better_answer":
            first = prompt.index("Answer_0:")
            second = prompt.index("Answer_1:")
            index = 0 if "BEST" in prompt[first:second] else 1
            return 200, completion(tool_call(name, {"index": index, "reason": "more complete"}))
        if name == "parse_answer_status":
            return 200, completion(tool_call(name, {"answer_status": "Solved", "reason": "tools confirm it"}))
        answer = prompt[prompt.index("Final reply:") :]
        status = (
            "Solved"
            if "GOOD" in answer or "FLAKY" in answer
            else "Unsure"
            if "MAYBE" in answer
            else "Unsolved"
        )
        return 200, completion(tool_call(name, {"answer_status": status, "reason": "scripted"}))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def tool_call(name: str, arguments: dict) -> dict:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(arguments)},
            }
        ],
    }


def completion(message: dict | None = None, *, message_only: dict | None = None) -> dict:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "judge-test",
        "choices": [{"index": 0, "finish_reason": "stop", "message": message or message_only}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def converted_entry(final_text: str | None, *, query: str = "What is the answer?") -> dict:
    """A ToolEval converted entry; `final_text=None` gives an answer whose last step is not Finish."""
    steps = [
        {"role": "tool", "message": {"name": "get_answer_for_oracle", "arguments": "{}", "response": "42"}}
    ]
    final = ""
    if final_text is not None:
        final = json.dumps({"return_type": "give_answer", "final_answer": final_text})
        steps.append({"role": "tool", "message": {"name": "Finish", "arguments": final, "response": ""}})
    nested: list = []
    for step in reversed(steps):
        nested = [{**step, "next": nested}]
    details = [{"role": "system", "message": "", "next": [{"role": "user", "message": "", "next": nested}]}]
    return {
        "query": query,
        "available_tools": [{"name": "get_answer_for_oracle"}, {"name": "Finish"}],
        "answer": {
            "method": "CoT@1",
            "total_steps": 2 + len(steps),
            "final_answer": final,
            "answer_details": details,
        },
    }


@pytest.fixture
def server():
    with ScriptedServer() as scripted:
        yield scripted


@pytest.fixture
def make_judge(server, tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLBENCH_EVAL_JUDGE_KEY", "sk-test-secret-123")

    def build(**options):
        options.setdefault("cache_dir", tmp_path / "cache")
        return LLMJudge.from_settings(
            model="judge-test",
            base_url=server.base_url,
            workers=2,
            max_attempts=3,
            **options,
        )

    return build


def record(final_text, qid="1"):
    return record_from_converted(converted_entry(final_text), query_id=qid)


QUERY = Query(query_id="1", query="What is the answer?", group="G1_instruction", api_list=())


def test_verdicts_follow_the_scripted_calls_and_short_circuits_skip_the_server(server, make_judge):
    judge = make_judge()
    assert judge.judge(QUERY, record("GOOD: 42")).status is AnswerStatus.Solved
    assert judge.judge(QUERY, record("BAD: no idea")).status is AnswerStatus.Unsolved
    before = len(server.requests)
    unsure = judge.judge(QUERY, record("MAYBE 42"))
    # Unsure on the final answer asks parse_answer_status, which decides.
    assert unsure.status is AnswerStatus.Solved
    assert [r["tool_choice"]["function"]["name"] for r in server.requests[before:]] == [
        "check_answer_status",
        "parse_answer_status",
    ]
    before = len(server.requests)
    verdict = judge.judge(QUERY, record(None))
    assert verdict.status is AnswerStatus.Unsolved and "not Finish" in verdict.reason
    assert len(server.requests) == before


def test_requests_force_the_upstream_function_schema_and_send_the_env_key(server, make_judge):
    judge = make_judge()
    judge.judge(QUERY, record("GOOD"))
    body = server.requests[-1]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "check_answer_status"}}
    schema = body["tools"][0]["function"]
    assert schema["parameters"]["properties"]["answer_status"]["enum"] == ["Unsure", "Unsolved", "Solved"]
    assert schema["parameters"]["required"] == ["answer_status", "reason"]
    assert body["temperature"] == 0.2 and body["model"] == "judge-test"
    assert server.headers[-1]["Authorization"] == "Bearer sk-test-secret-123"
    assert "sk-test-secret" not in json.dumps(judge.describe())


def test_server_error_is_retried(server, make_judge):
    judge = make_judge()
    verdict = judge.judge(QUERY, record("FLAKY 42"))
    assert verdict.status is AnswerStatus.Solved
    assert judge.stats["requests"] == 2 and judge.stats["retries"] == 1


def test_malformed_reply_counts_as_unsure_and_is_reported(server, make_judge, tmp_path):
    judge = make_judge()
    verdict = judge.judge(QUERY, record("MALFORMED 42"))
    assert verdict.status is AnswerStatus.Unsure and verdict.malformed
    assert "no check_answer_status function call" in verdict.reason
    assert judge.stats["malformed"] == 1 and judge.stats["requests"] == 3  # max_attempts
    assert judge.stats["retries"] == 0  # asking again is not a transport retry

    converted = tmp_path / "G1_instruction.json"
    converted.write_text(json.dumps({"1": converted_entry("GOOD 42"), "2": converted_entry("MALFORMED 7")}))
    report = score_converted(converted, "G1_instruction", make_judge(), evaluate_times=1)
    group = report.to_json()["groups"]["G1_instruction"]
    assert group["malformed_judgements"] == 1
    assert group["labels"]["2"]["statuses"] == ["Unsure"] and group["labels"]["2"]["malformed"] == 1
    assert group["sopr"] == pytest.approx(75.0)  # (1 + 0.5) / 2


def test_second_scoring_is_served_from_the_cache(server, make_judge, tmp_path):
    converted = tmp_path / "G1_instruction.json"
    entries = {"1": converted_entry("GOOD"), "2": converted_entry("BAD"), "3": converted_entry("MAYBE")}
    converted.write_text(json.dumps(entries))
    first = score_converted(converted, "G1_instruction", make_judge(), evaluate_times=3)
    made = len(server.requests)
    assert made == 3 * 3 + 3  # three rounds each, plus parse_answer_status for the Unsure one
    second_judge = make_judge()
    second = score_converted(converted, "G1_instruction", second_judge, evaluate_times=3)
    assert len(server.requests) == made
    assert second_judge.stats["requests"] == 0 and second_judge.stats["cache_hits"] == made
    assert second.groups["G1_instruction"].labels == first.groups["G1_instruction"].labels
    # Rounds are separate cache entries: the same prompt in round 0 and 1 are two files.
    assert sum(1 for _ in ResponseCache(tmp_path / "cache").directory.rglob("*.json")) == made


def test_prefer_maps_the_index_back_to_the_answers(server, make_judge):
    judge = make_judge()
    best, other = record("BEST answer 42", "1"), record("some answer", "1")
    assert judge.prefer(QUERY, best, other) == "a"
    assert judge.prefer(QUERY, other, best) == "b"
    assert judge.prefer(QUERY, best, best) == "tie"  # identical answers: no request needed
    assert sum(r["tool_choice"]["function"]["name"] == "select_better_answer" for r in server.requests) == 2


def test_refused_or_unreachable_endpoint_raises_a_clear_error(server, make_judge, monkeypatch):
    judge = make_judge()
    with pytest.raises(JudgeUnavailable, match="HTTP 401"):
        judge.judge(QUERY, record("DENIED"))
    assert judge.stats["requests"] == 1  # a refused key is not retried

    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    dead_url = f"http://127.0.0.1:{closed.server_address[1]}/v1"
    closed.server_close()
    # A connection error carries no Retry-After: skip the SDK's real backoff.
    monkeypatch.setattr(openai.OpenAI, "_calculate_retry_timeout", lambda *args: 0.0)
    dead = LLMJudge.from_settings(model="m", base_url=dead_url, max_attempts=2)
    with pytest.raises(JudgeUnavailable, match="failed 2 times .*APIConnectionError.*re-run the command"):
        dead.judge(QUERY, record("GOOD"))
    assert dead.stats == {"requests": 2, "cache_hits": 0, "retries": 1, "malformed": 0}


def test_a_remote_endpoint_without_a_key_is_refused(monkeypatch):
    monkeypatch.delenv("TOOLBENCH_EVAL_JUDGE_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    from toolbench_eval.errors import UserError

    with pytest.raises(UserError, match="OPENAI_API_KEY"):
        LLMJudge.from_settings(model="m", base_url="https://judge.example.com/v1")
