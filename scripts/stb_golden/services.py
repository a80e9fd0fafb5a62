"""Local HTTP services for the golden runs, all on 127.0.0.1 (stdlib only).

- RecordingProxy: sits between upstream's client (`SERVICE_URL=http://127.0.0.1:<p>/virtual`) and upstream's
  server; forwards the request bytes unchanged and records request and reply.
- Standins: what upstream's server reaches on a cache miss: `POST /rapidapi` stands for the real ToolBench
  server (`toolbench_url`; answers 503, so the server goes on to GPT simulation) and
  `POST /v1/chat/completions` stands for OpenAI with no working key (answers 401 invalid_api_key, as OpenAI
  does). Both record what upstream's server sent.
- CannedReplies: `POST /canned/<case>/...` answers with the status, body and delay registered for <case>
  (the server replies that observations.json feeds to upstream's `_step`).
- ScriptedChat: `POST /v1/chat/completions` for upstream's ChatGPTFunction (the real openai SDK, `--base_url`):
  answers each request with the next scripted assistant message as a chat.completion, records the request.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OPENAI_401 = {
    "error": {
        "message": "Incorrect API key provided: sk-offli*************. You can find your API key at "
                   "https://platform.openai.com/account/api-keys.",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}


def _decode(body: bytes):
    text = body.decode("utf-8", errors="replace")
    try:
        return text, json.loads(text)
    except ValueError:
        return text, None


class _Server:
    def __init__(self, handler_cls):
        self.records: list[dict] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(handler_cls):
            server_state = outer

            def log_message(self, *args):  # quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def take(self) -> list[dict]:
        with self.lock:
            out, self.records = self.records, []
        return out

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Base(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout case)
            pass

    def _record(self, entry: dict) -> None:
        with self.server_state.lock:
            self.server_state.records.append(entry)


class RecordingProxy(_Server):
    def __init__(self, target_base: str):
        self.target_base = target_base

        class Handler(_Base):
            def do_POST(self):
                body = self._body()
                text, parsed = _decode(body)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}  # Host has the port
                forward = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
                req = urllib.request.Request(target_base + self.path, data=body, headers=forward, method="POST")
                try:
                    with urllib.request.urlopen(req) as resp:
                        status, reply, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
                except urllib.error.HTTPError as err:
                    status, reply, ctype = err.code, err.read(), err.headers.get("Content-Type", "")
                reply_text, reply_json = _decode(reply)
                self._record({
                    "url": f"http://127.0.0.1:{self.server.server_address[1]}{self.path}",
                    "method": "POST",
                    "headers": headers,
                    "body": text,
                    "payload": parsed,
                    "server_status": status,
                    "server_reply": reply_json if reply_json is not None else reply_text,
                })
                self._send(status, reply, ctype or "application/json")

        super().__init__(Handler)


class Standins(_Server):
    def __init__(self):
        class Handler(_Base):
            def do_POST(self):
                body = self._body()
                text, parsed = _decode(body)
                if self.path.rstrip("/").endswith("/rapidapi"):
                    status, reply = 503, b'{"detail": "real ToolBench service unavailable (offline stand-in)"}'
                    role = "toolbench_url (real API)"
                elif self.path.endswith("/chat/completions"):
                    status, reply = 401, json.dumps(OPENAI_401).encode()
                    role = "OpenAI chat.completions (simulation)"
                else:
                    status, reply, role = 404, b'{"detail": "Not Found"}', "unknown"
                self._record({"role": role, "path": self.path,
                              "headers": {k: v for k, v in self.headers.items()
                                          if k.lower() in ("content-type", "toolbench_key", "authorization")},
                              "body": parsed if parsed is not None else text,
                              "reply_status": status, "reply": json.loads(reply)})
                self._send(status, reply)

        super().__init__(Handler)


class CannedReplies(_Server):
    """cases[name] = {"status": int, "body": bytes, "delay": seconds, "content_type": str}"""

    def __init__(self):
        self.cases: dict[str, dict] = {}
        cases = self.cases

        class Handler(_Base):
            def do_POST(self):
                body = self._body()
                _, parsed = _decode(body)
                name = self.path.split("/")[2]
                case = cases[name]
                self._record({"case": name, "payload": parsed})
                if case.get("delay"):
                    time.sleep(case["delay"])
                self._send(case["status"], case["body"], case.get("content_type", "application/json"))

        super().__init__(Handler)


FC_FALLBACK_CONTENT = "I have no more scripted replies, so I give up."


def fc_fallback_message(k: int) -> dict:
    """The k-th (1-based) reply once the script has run out: a Finish give_up_and_restart."""
    return {"role": "assistant", "content": FC_FALLBACK_CONTENT,
            "tool_calls": [{"id": f"call_fallback{k}", "type": "function",
                            "function": {"name": "Finish", "arguments": '{"return_type": "give_up_and_restart"}'}}]}


def chat_completion(n: int, model, messages, message: dict) -> dict:
    """The chat.completion JSON for the n-th (1-based) reply; usage is a deterministic stand-in
    (prompt: len(json.dumps(request messages)) // 4, completion: len(json.dumps(message)) // 4)."""
    prompt_tokens = len(json.dumps(messages)) // 4
    completion_tokens = len(json.dumps(message)) // 4
    return {
        "id": f"chatcmpl-golden-{n}",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
        "system_fingerprint": None,
    }


class ScriptedChat(_Server):
    """OpenAI chat.completions stand-in on scripted assistant messages, consumed in order (then the fallback).

    Never answers with an error (upstream's chat_completion_request drops into pdb on any exception): a body
    that is not JSON still gets the next reply. `records` = {headers (Authorization redacted), body (text as
    sent), request (parsed)}; `replies` = the chat.completion JSONs sent, in order.
    """

    def __init__(self, messages: list[dict]):
        self.script = [dict(m) for m in messages]
        self.used = 0
        self.fallbacks = 0
        self.replies: list[dict] = []
        self.other_paths: list[str] = []  # anything but /v1/chat/completions (answered too; make_fixtures fails)
        state = self

        class Handler(_Base):
            def do_POST(self):
                body = self._body()
                text, parsed = _decode(body)
                headers = {k: ("<redacted>" if k.lower() == "authorization" else v) for k, v in self.headers.items()}
                request = parsed if isinstance(parsed, dict) else {}
                with state.lock:
                    if self.path != "/v1/chat/completions":
                        state.other_paths.append(self.path)
                    if state.used < len(state.script):
                        message = state.script[state.used]
                        state.used += 1
                    else:
                        state.fallbacks += 1
                        message = fc_fallback_message(state.fallbacks)
                    reply = chat_completion(len(state.replies) + 1, request.get("model"),
                                            request.get("messages"), message)
                    state.records.append({"headers": headers, "body": text, "request": parsed})
                    state.replies.append(reply)
                self._send(200, json.dumps(reply).encode())

        super().__init__(Handler)
