"""Shared pieces of the StableToolBench golden tests: the fixtures, a server that replays what upstream's
server answered, and an engine that replays the scripted model replies while recording every prompt."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

from toolbench_eval.engines.base import Completion

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "stabletoolbench_protocol"
SAMPLE_QUERIES = REPO / "data" / "stabletoolbench_sample" / "solvable_queries" / "test_instruction"
ALL_SCENARIOS = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))["scenarios"]


def load_scenario(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "scenarios" / f"{name}.json").read_text(encoding="utf-8"))


# ToolLLaMA text style (`toolllama`, `toolllama_vllm`) and native function calling (`chatgpt_function`).
SCENARIOS = [name for name in ALL_SCENARIOS if load_scenario(name)["backbone_model"].startswith("toolllama")]
FC_SCENARIOS = [name for name in ALL_SCENARIOS if load_scenario(name)["backbone_model"] == "chatgpt_function"]


def upstream_limits(scenario: dict[str, Any]) -> tuple[int, int]:
    """(single_chain_max_step, max_query_count) as upstream ran the scenario: `qa_pipeline.py` hard-codes
    12 and 200; the multithread pipeline takes flags, default 50 and 200."""
    if scenario["entry_point"].endswith("qa_pipeline.py"):
        return 12, 200
    args = scenario["args"]

    def flag(name: str, default: int) -> int:
        return int(args[args.index(name) + 1]) if name in args else default

    return flag("--single_chain_max_step", 50), flag("--max_query_count", 200)


class _RecordedReplies:
    """A local HTTP server (127.0.0.1) that answers the n-th POST with the n-th `(status, body bytes, delay s)`
    and keeps the JSON requests it was sent; 599 once the replies run out."""

    path = "/"

    def __init__(self, replies: list[tuple[int, bytes, float]]) -> None:
        self.replies = replies
        self.requests: list[Any] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                server.requests.append(json.loads(self.rfile.read(length)))
                index = len(server.requests) - 1
                status, body, delay = server.replies[index] if index < len(server.replies) else (599, b"{}", 0)
                if delay:
                    time.sleep(delay)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}{self.path}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class ReplayServer(_RecordedReplies):
    """Upstream's tool server, replayed: each POST gets the next recorded reply (a `server_requests` entry, or
    `(status, body bytes, delay seconds)`); `payloads` are the requests it was sent."""

    path = "/virtual"

    def __init__(self, requests: list[Any]) -> None:
        super().__init__([r if isinstance(r, tuple) else (r["server_status"], json.dumps(r["server_reply"]).encode(), 0)
                          for r in requests])

    @property
    def payloads(self) -> list[Any]:
        return self.requests


class ReplayEngine:
    """An `Engine` that answers the i-th prompt with upstream's i-th scripted reply and records prompts and
    sampling parameters. `usage` gives each call's token count (upstream's vLLM client adds `total_tokens`)."""

    name = "replay"
    bucket_spec = None

    def __init__(self, replies: list[str], usage: list[int] | None = None) -> None:
        self.replies = replies
        self.usage = usage or [0] * len(replies)
        self.prompts: list[str] = []
        self.params: list[Any] = []

    async def generate(self, prompts, params, *, cache_keys=None) -> list[Completion]:
        [prompt] = prompts
        index = len(self.prompts)
        self.prompts.append(prompt)
        self.params.append(params)
        text = self.replies[index] if index < len(self.replies) else ""
        tokens = self.usage[index] if index < len(self.usage) else 0
        return [Completion(text=text, prompt_tokens=tokens, completion_tokens=0, finish_reason="stop")]

    async def close(self) -> None:
        pass


def normalize_call_ids(value: Any) -> Any:
    """The answer with tool-call ids replaced by their order of first appearance (upstream draws them from
    the process-global `random`; the ids themselves are not part of the protocol)."""
    seen: dict[str, str] = {}

    def walk(item: Any) -> Any:
        if isinstance(item, dict):
            out = {}
            for key, inner in item.items():
                if key in ("id", "tool_call_id") and isinstance(inner, str):
                    out[key] = seen.setdefault(inner, f"ID{len(seen)}")
                else:
                    out[key] = walk(inner)
            return out
        if isinstance(item, list):
            return [walk(inner) for inner in item]
        return item

    return walk(value)


class ReplayChat(_RecordedReplies):
    """An OpenAI-compatible `/v1/chat/completions` answering with recorded completions in order; `requests` are
    the requests it was sent (parsed JSON), `base_url` the client's base URL."""

    path = "/v1"

    def __init__(self, completions: list[dict[str, Any]]) -> None:
        super().__init__([(200, json.dumps(completion).encode(), 0) for completion in completions])
        self.base_url = self.url
