"""Hostile inputs against a checkout of toolbench-eval: what each one does (exit code, message, what it left).

    python scripts/hostile_checks.py                      # this checkout
    python scripts/hostile_checks.py --code /tmp/before   # another checkout (e.g. `git worktree add`)

Each check runs `python -m toolbench_eval ...` in a child process with `PYTHONPATH=<code>`, fake keys in the
environment, a scripted model and servers on 127.0.0.1 only (an echo server that quotes the key it was sent,
and a port nobody listens on). Prints one Markdown row per check. The `hf` checks load the default model.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FAKE_KEY = "sk-FAKEjudgeKEY0123456789"
CALL = 'Thought: look it up.\nAction: get_word_for_word_tool\nAction Input: {"is_id": 1}'
ANSWER = ('Thought: done.\nAction: Finish\nAction Input: {"return_type": "give_answer", '
          '"final_answer": "The word is apple."}')


def echo_server() -> str:
    """A server that answers 401 and quotes the Authorization header it got, as OpenAI's API does."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # the name http.server dispatches to
            self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
            body = json.dumps({"error": {"message": "Incorrect API key provided: "
                                                    + str(self.headers.get("Authorization"))}}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_address[1]}/v1"


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/virtual"


def benchmark(root: Path, queries: int = 2) -> Path:
    api = {"category_name": "Data", "tool_name": "Word Tool", "api_name": "Get Word", "api_description": "A word.",
           "method": "GET", "required_parameters": [{"name": "id", "type": "NUMBER", "description": "id",
                                                      "default": 1}], "optional_parameters": []}
    folder = root / "bench" / "test_instruction"
    folder.mkdir(parents=True)
    rows = [{"query": f"Which word has id 1? ({i})", "query_id": 100 + i, "api_list": [api]} for i in range(queries)]
    (folder / "G1_instruction.json").write_text(json.dumps(rows))
    (root / "script.json").write_text(json.dumps({"rules": [{"contains": ["Function:"], "reply": ANSWER}],
                                                  "default": CALL}))
    return root / "bench"


class Checker:
    def __init__(self, code: Path, work: Path) -> None:
        self.code, self.work = code, work
        self.env = {**os.environ, "PYTHONPATH": str(code), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
                    "TOOLBENCH_EVAL_JUDGE_KEY": FAKE_KEY, "TOOLBENCH_KEY": "tb-FAKE-key-24680"}
        self.env.pop("SERVICE_URL", None)
        self.bench = benchmark(work)

    def cli(self, *args: str, env: dict | None = None, timeout: float = 600) -> tuple[int, str, str, float]:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "toolbench_eval", *args], capture_output=True, text=True,
                              env={**self.env, **(env or {})}, cwd=self.work, timeout=timeout, check=False)
        return done.returncode, done.stdout, done.stderr, time.perf_counter() - started

    def scripted(self, out: str, *extra: str, backend: str = "{name: local}", limit: str = "2") -> list[str]:
        config = self.work / f"{out}.yaml"
        config.write_text(f"tool_backend: {backend}\n")
        return ["run", "--config", str(config), "--benchmark", str(self.bench), "--groups", "G1_instruction",
                "--limit", limit, "--model", "scripted", "--model-args", f"script={self.work / 'script.json'}",
                "--out", str(self.work / out), "--no-progress", *extra]

    def hf(self, out: str, *extra: str) -> list[str]:
        return ["run", "--groups", "G1_instruction", "--limit", "1", "--model", "hf", "--model-args",
                "pretrained=default,device=cpu,dtype=float32", "--max-new-tokens", "16", "--out",
                str(self.work / out), "--no-progress", *extra]


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else ""
    line = line[line.find("toolbench-eval:"):] if "toolbench-eval:" in line else line  # after a progress bar
    return line[:150].replace("|", "/")


def verdict(code: int, err: str, seconds: float, **facts) -> str:
    traceback = "traceback" if "Traceback (most recent call last)" in err else "no traceback"
    extra = "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in facts.items())
    return f"exit {code}, {seconds:.1f} s, {traceback}; {extra}"


def checks(c: Checker) -> list[tuple[str, str]]:
    rows = []
    # 1. The LLM judge against a server that quotes the rejected key.
    code, out, err, _ = c.cli(*c.scripted("judged"))
    code, out, err, s = c.cli("score", str(c.work / "judged"), "--judge", "llm", "--judge-base-url", echo_server(),
                              "--evaluate-times", "1")
    rows.append(("LLM judge, server answers 401 quoting the key",
                 verdict(code, err, s, key_in_output=FAKE_KEY in out + err, says=last_line(err))))
    # 2. A dead StableToolBench server.
    code, out, err, s = c.cli(*c.scripted("dead", backend=f"{{name: stb, url: '{dead_url()}'}}"))
    answers = len(list((c.work / "dead").glob("G*/*.json")))
    rows.append(("tool server unreachable (stb, connection refused)",
                 verdict(code, err, s, answer_files=answers, says=last_line(out.split("run directory")[0]))))
    # 3./4. An unknown fusion rule, with and without buckets; then the corrected command in the same folder.
    code, out, err, s = c.cli(*c.hf("fusion", "--fusion", "bogus", "--buckets", "auto:2"))
    left = (c.work / "fusion" / "manifest.json").exists()
    fixed = c.cli(*c.hf("fusion", "--buckets", "auto:2", "--limit", "0"))
    rows.append(("`--fusion bogus --buckets auto:2` (hf), then the corrected command",
                 verdict(code, err, s, manifest_left=left, corrected_command_exit=fixed[0], says=last_line(err))))
    code, out, err, s = c.cli(*c.scripted("fusion2", "--fusion", "bogus"))
    recorded = (c.work / "fusion2" / "manifest.json").exists()
    rows.append(("`--fusion bogus` without buckets", verdict(code, err, s, run_recorded=recorded,
                                                               says=last_line(err) or "(nothing)")))
    # 5. rapidapi without a URL, then the corrected command.
    code, out, err, s = c.cli(*c.scripted("rapid", backend="{name: rapidapi}"))
    left = (c.work / "rapid").exists()
    fixed = c.cli(*c.scripted("rapid"))
    rows.append(("rapidapi backend without a URL, then the corrected command",
                 verdict(code, err, s, folder_left=left, corrected_command_exit=fixed[0], says=last_line(err))))
    # 6./7. Unwritable run and cache folders (a file where a folder should be: root ignores permission bits).
    blocker = c.work / "a-file"
    blocker.write_text("x")
    code, out, err, s = c.cli(*c.scripted("x", "--out", str(blocker / "run")))
    rows.append(("run folder cannot be created", verdict(code, err, s, says=last_line(err))))
    code, out, err, s = c.cli(*c.scripted("cache-run"), env={"TOOLBENCH_EVAL_CACHE": str(blocker / "cache")})
    rows.append(("cache folder cannot be created", verdict(code, err, s, says=last_line(err))))
    # 8. An empty query file.
    empty = c.work / "empty" / "test_instruction"
    empty.mkdir(parents=True)
    (empty / "G1_instruction.json").write_text("[]")
    args = c.scripted("empty-run")
    args[args.index("--benchmark") + 1] = str(empty.parent)
    code, out, err, s = c.cli(*args)
    rows.append(("empty query file", verdict(code, err, s, says=last_line(err + out))))
    # 9. `inspect` on a 50 MB query string.
    huge = c.work / "huge" / "test_instruction"
    huge.mkdir(parents=True)
    (huge / "G1_instruction.json").write_text(json.dumps([{"query": "word " * 10_000_000, "query_id": 1,
                                                           "api_list": []}]))
    code, out, err, s = c.cli("inspect", str(huge.parent), timeout=900)
    rows.append(("`inspect` of a 50 MB query", verdict(code, err, s, says=last_line(err or out))))
    # 10./11./12. One query per group in a leaderboard, published rows of another benchmark, file modes.
    export = c.work / "board"
    args = c.scripted("local", limit="2")
    args[args.index("--benchmark") + 1] = "localtoolbench"
    c.cli(*args)
    c.cli("export", str(c.work / "local"), "--out", str(export), "--reference-rows", "stabletoolbench",
          "--no-plots")
    board = (export / "leaderboard.md").read_text() if (export / "leaderboard.md").exists() else ""
    rows.append(("leaderboard of a 2-query run beside published STB rows",
                 (f"N shown: {'(n=2)' in board}; published rows in their own table: "
                 f"{'Published StableToolBench figures' in board}")))
    answer = next((c.work / "judged").glob("G*/*.json"))
    rows.append(("mode of an answer file and a manifest", (f"{oct(answer.stat().st_mode & 0o777)} / "
                 f"{oct((c.work / 'judged' / 'manifest.json').stat().st_mode & 0o777)}")))
    # 13. Progress of a slow query.
    args = [a for a in c.scripted("slow", limit="1") if a != "--no-progress"]
    args[args.index("--model-args") + 1] += ",delay_s=3"
    code, out, err, s = c.cli(*args)
    rows.append(("progress while one query takes 6 s", f"shows calls and tok/s: {'calls=' in err and 'tok/s' in err}"))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="checkout to test (default: this one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hostile-") as work:
        rows = checks(Checker(args.code.resolve(), Path(work)))
    print("| input | result |\n|---|---|")
    for name, result in rows:
        print(f"| {name} | {result} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
