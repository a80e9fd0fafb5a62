"""Regenerate tests/fixtures/stabletoolbench_protocol by running StableToolBench's own code offline.

    /work/stb-venv/bin/python scripts/stb_golden/make_fixtures.py --stb-src /work/stb-src [--only NAME ...]

Must run in a venv where upstream imports (see README.md). Starts, all on 127.0.0.1: the stand-ins for the
real ToolBench API and OpenAI (services.Standins), upstream's server (`uvicorn main:app` from
<stb-src>/server, with a config.yml written here), and a recording proxy in front of it. Then each scenario runs
upstream's entry point in a child process (upstream_runner.py), and probe_env.py writes parser_cases.json and
observations.json. A function-calling scenario (backbone chatgpt_function) also gets its own services.ScriptedChat
as upstream's `--base_url`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_OUT = REPO / "tests" / "fixtures" / "stabletoolbench_protocol"
sys.path.insert(0, str(HERE))

import fake_llm
import inputs
import probe_cases
import scenarios
import services

MODEL_NAME = "ToolBench/ToolLLaMA-2-7b-v2"
OFFLINE_KEY = "sk-offline-no-key"
CHATGPT_MODEL = "gpt-4-turbo-2024-04-09"
FC_BACKBONE = "chatgpt_function"


def upstream_helpers(stb_src: Path):
    sys.path[:0] = [str(stb_src)]
    from toolbench.utils import change_name, standardize, standardize_category
    return standardize, change_name, standardize_category


def tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_upstream_server(stb_src: Path, work: Path, out: Path, standins: services.Standins):
    port = free_port()
    server_dir = work / "server"
    server_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "api_key": OFFLINE_KEY,
        "api_base": standins.url("/v1"),
        "model": "gpt-4-turbo",
        "temperature": 0,
        "toolbench_url": standins.url("/rapidapi"),
        "tools_folder": str(out / "toolenv" / "tools"),
        "cache_folder": str(out / "tool_response_cache"),
        "is_save": True,
        "port": port,
        "log_file": str(server_dir / "server.log"),
    }
    import yaml
    (server_dir / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["OPENAI_API_KEY"] = OFFLINE_KEY
    # upstream's __main__ runs uvicorn on 0.0.0.0; the same app is served here on 127.0.0.1 only
    cmd = [sys.executable, "-m", "uvicorn", "main:app", "--app-dir", str(stb_src / "server"),
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    log = open(server_dir / "uvicorn.out", "w")  # noqa: SIM115 - open for the server's lifetime
    proc = subprocess.Popen(cmd, cwd=server_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"upstream server exited: see {server_dir / 'uvicorn.out'}")
            time.sleep(0.3)
    else:
        proc.terminate()
        raise SystemExit("upstream server did not start within 60 s")
    config_public = dict(config)
    config_public["port"] = "<free port>"
    config_public["api_base"] = "http://127.0.0.1:<standins>/v1"
    config_public["toolbench_url"] = "http://127.0.0.1:<standins>/rapidapi"
    config_public["tools_folder"] = "<fixture>/toolenv/tools"
    config_public["cache_folder"] = "<fixture>/tool_response_cache"
    config_public["log_file"] = "<work>/server/server.log"
    return proc, f"http://127.0.0.1:{port}", cmd, config_public


def upstream_args(s: dict, query_file: Path, answer_dir: Path, tools_dir: Path, chat_url: str | None = None
                  ) -> list[str]:
    model = ["--chatgpt_model", CHATGPT_MODEL] if s["backbone"] == FC_BACKBONE else ["--model_path", MODEL_NAME]
    args = ["--tool_root_dir", str(tools_dir), "--backbone_model", s["backbone"], *model,
            "--max_observation_length", "1024", "--method", s["method"], "--input_query_file", str(query_file),
            "--output_answer_file", str(answer_dir), "--toolbench_key", ""]
    if s["backbone"] == FC_BACKBONE:
        args += ["--openai_key", OFFLINE_KEY, "--base_url", chat_url + "/v1"]
    if s["backbone"] == "toolllama_vllm":
        args += ["--openai_key", "EMPTY", "--base_url", "http://127.0.0.1:12345/v1"]
    if s["entry"] == scenarios.MULTI:
        args += ["--num_thread", "1"]
    return args + s.get("extra_args", [])


def public(text, mapping: dict[str, str]):
    """Replace machine paths and ports in recorded data with stable placeholders."""
    if isinstance(text, str):
        for a, b in mapping.items():
            text = text.replace(a, b)
        return text
    if isinstance(text, list):
        return [public(x, mapping) for x in text]
    if isinstance(text, dict):
        return {public(k, mapping): public(v, mapping) for k, v in text.items()}
    return text


def run_scenario(s: dict, stb_src: Path, work: Path, out: Path, proxy, standins, mapping) -> dict:
    sdir = work / s["name"]
    shutil.rmtree(sdir, ignore_errors=True)
    sdir.mkdir(parents=True)
    query = inputs.query_by_id(s["group"], s["query_id"])
    query_file = sdir / f"{s['group']}.json"
    query_file.write_text(json.dumps([query], indent=4), encoding="utf-8")
    replies_file = sdir / "replies.json"
    replies_file.write_text(json.dumps(s["replies"], ensure_ascii=False, indent=1), encoding="utf-8")
    answer_dir = sdir / "answer" / s["group"]
    answer_dir.parent.mkdir(parents=True)
    record_file = sdir / "record.json"
    fc = s["backbone"] == FC_BACKBONE
    chat = services.ScriptedChat(s["replies"]) if fc else None  # upstream's --base_url, one per scenario
    args = upstream_args(s, query_file, answer_dir, out / "toolenv" / "tools", chat.url("") if fc else None)
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["SERVICE_URL"] = proxy.url("/virtual")
    env["PYTHONPATH"] = str(stb_src)
    cmd = [sys.executable, str(HERE / "upstream_runner.py"), "--stb-src", str(stb_src), "--entry", s["entry"],
           "--replies", str(replies_file), "--record", str(record_file), "--"] + args
    proxy.take(), standins.take()
    # stdin closed: were upstream ever to reach its `pdb.set_trace()` (chat request errors), pdb reads EOF and quits
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False,
                              stdin=subprocess.DEVNULL)
    finally:
        if chat is not None:
            chat.close()
    if chat is not None and chat.other_paths:
        raise SystemExit(f"{s['name']}: upstream posted to {chat.other_paths}, not /v1/chat/completions")
    (sdir / "stdout.txt").write_text(proc.stdout + "\n--- stderr ---\n" + proc.stderr, encoding="utf-8")
    record = json.loads(record_file.read_text(encoding="utf-8"))
    answer_name = f"{s['query_id']}_{s['method']}.json"
    answer_path = answer_dir / answer_name
    answer_text = answer_path.read_text(encoding="utf-8") if answer_path.exists() else None
    answer = json.loads(answer_text) if answer_text is not None else None
    # upstream writes json.dump(data, writer, indent=2); the fixture keeps the parsed object, so check that
    # json.dumps(answer, indent=2) gives the file back byte for byte
    if answer is not None and json.dumps(answer, indent=2) != answer_text:
        raise SystemExit(f"{answer_path}: json.dumps(indent=2) does not reproduce upstream's bytes")
    mapping = dict(mapping)
    mapping[str(sdir)] = "<work>"
    mapping[proxy.url("")] = "http://127.0.0.1:<proxy>"
    if fc:  # base_url in argv and the Host header
        mapping[f"127.0.0.1:{chat.port}"] = "127.0.0.1:<chat>"
        result = fc_result(s, args, chat, record, proxy, standins, answer_name, answer, answer_text, proc)
        return public(result, mapping)
    result = {
        "scenario": s["name"],
        "description": s["description"],
        "query_id": s["query_id"],
        "group": s["group"],
        "method": s["method"],
        "backbone_model": s["backbone"],
        "entry_point": s["entry"],
        "command": "PYTHONPATH=<stb-src> SERVICE_URL=http://127.0.0.1:<proxy>/virtual python " + s["entry"]
                   + " " + " ".join(json.dumps(a) if (a == "" or " " in a) else a for a in args),
        "args": args,
        "scripted_replies": s["replies"],
        "fallback_reply": fake_llm.FALLBACK_REPLY,
        "replies_used": record["replies_used"],
        "fallback_replies_used": record["fallback_replies"],
        "model_load_calls": record.get("load_calls", []),
        "model_calls": record["calls"],
        "server_requests": proxy.take(),
        "server_upstream_requests": standins.take(),
        "answer_file": f"<output_answer_file>/{answer_name}" if answer is not None else None,
        "answer_file_bytes": "json.dumps(answer, indent=2) (checked when generated)",
        "answer_file_sha256": hashlib.sha256(answer_text.encode("utf-8")).hexdigest() if answer_text else None,
        "answer": answer,
        "exit_code": proc.returncode,
        "exception": record.get("exception"),
    }
    return public(result, mapping)


def fc_result(s, args, chat, record, proxy, standins, answer_name, answer, answer_text, proc) -> dict:
    """The scenario JSON of a function-calling run: the chat requests and replies take model_calls' place."""
    return {
        "scenario": s["name"],
        "description": s["description"],
        "query_id": s["query_id"],
        "group": s["group"],
        "method": s["method"],
        "backbone_model": s["backbone"],
        "chatgpt_model": CHATGPT_MODEL,
        "entry_point": s["entry"],
        "command": "PYTHONPATH=<stb-src> SERVICE_URL=http://127.0.0.1:<proxy>/virtual python " + s["entry"]
                   + " " + " ".join(json.dumps(a) if (a == "" or " " in a) else a for a in args),
        "args": args,
        "scripted_replies": s["replies"],
        "fallback_reply": services.fc_fallback_message("<k>"),
        "replies_used": chat.used,
        "fallback_replies_used": chat.fallbacks,
        "model_calls": chat.take(),
        "chat_replies": chat.replies,
        "server_requests": proxy.take(),
        "server_upstream_requests": standins.take(),
        "answer_file": f"<output_answer_file>/{answer_name}" if answer is not None else None,
        "answer_file_bytes": "json.dumps(answer, indent=2) (checked when generated)",
        "answer_file_sha256": hashlib.sha256(answer_text.encode("utf-8")).hexdigest() if answer_text else None,
        "answer": answer,
        "exit_code": proc.returncode,
        "exception": record.get("exception"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stb-src", default="/work/stb-src", type=Path)
    ap.add_argument("--out", default=DEFAULT_OUT, type=Path)
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a new temp folder)")
    ap.add_argument("--only", nargs="*", default=None, help="scenario names (and/or 'probes')")
    opts = ap.parse_args()
    stb_src, out = opts.stb_src.resolve(), opts.out.resolve()
    work = (opts.work or Path(tempfile.mkdtemp(prefix="stb_golden_"))).resolve()
    standardize, change_name, standardize_category = upstream_helpers(stb_src)

    all_scenarios = scenarios.resolved()
    chosen = [s for s in all_scenarios if opts.only is None or s["name"] in opts.only]
    run_probes = opts.only is None or "probes" in opts.only

    # inputs: tool files for every scenario/probe query, one cache for everything
    queries, seen = [], set()
    for s in all_scenarios + probe_cases.PROBE_QUERIES:
        key = (s["group"], s["query_id"])
        if key not in seen:
            seen.add(key)
            queries.append(inputs.query_by_id(*key))
    for sub in ("toolenv", "tool_response_cache", "answers"):
        shutil.rmtree(out / sub, ignore_errors=True)
    tool_files = inputs.build_tool_files(queries, out / "toolenv" / "tools", standardize)
    cache_entries = [e for s in all_scenarios for e in s["cache"]] + probe_cases.CACHE
    cache_files = inputs.build_cache(cache_entries, out / "tool_response_cache", standardize, change_name,
                                     standardize_category)
    digest = tree_digest(out / "tool_response_cache")

    standins = services.Standins()
    server, server_url, server_cmd, config_public = start_upstream_server(stb_src, work, out, standins)
    proxy = services.RecordingProxy(server_url)
    mapping = {str(out): "<fixture>", str(stb_src): "<stb-src>", str(work): "<work>",
               standins.url(""): "http://127.0.0.1:<standins>", server_url: "http://127.0.0.1:<server>"}
    try:
        (out / "scenarios").mkdir(parents=True, exist_ok=True)
        for s in chosen:
            print(f"[stb_golden] {s['name']} ...", flush=True)
            result = run_scenario(s, stb_src, work, out, proxy, standins, mapping)
            (out / "scenarios" / f"{s['name']}.json").write_text(
                json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
            print(f"[stb_golden] {s['name']}: exit {result['exit_code']}, {len(result['model_calls'])} model calls, "
                  f"{len(result['server_requests'])} server requests", flush=True)
        if run_probes:
            print("[stb_golden] probes ...", flush=True)
            env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy")}
            with open(work / "probes.out", "w") as log:  # upstream prints a line per call
                subprocess.run([sys.executable, str(HERE / "probe_env.py"), "--stb-src", str(stb_src),
                                "--server-url", server_url, "--out", str(out)], env=env, check=True, timeout=900,
                               stdout=log, stderr=subprocess.STDOUT)
    finally:
        server.terminate()
        server.wait(timeout=30)
        proxy.close()
        standins.close()
    if tree_digest(out / "tool_response_cache") != digest:
        raise SystemExit("upstream's server wrote into the fixture cache (is_save); inspect and regenerate")
    manifest = {
        "upstream": {"repo": "THUNLP-MT/StableToolBench", "commit": upstream_commit(stb_src)},
        "server_command": public(" ".join(server_cmd), mapping).replace(server_url.rsplit(":", 1)[1], "<port>"),
        "server_config": config_public,
        "tool_files": tool_files,
        "cache_files": cache_files,
        "scenarios": [s["name"] for s in all_scenarios],
        "venv": venv_packages(),
        "python": sys.version.split()[0],
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(f"[stb_golden] wrote {out} (work folder {work})")
    return 0


def upstream_commit(stb_src: Path) -> str:
    marker = stb_src / "UPSTREAM_COMMIT"
    return marker.read_text().strip() if marker.exists() else "unknown (write it to <stb-src>/UPSTREAM_COMMIT)"


def venv_packages() -> list[str]:
    res = subprocess.run([sys.executable, "-m", "pip", "freeze", "--disable-pip-version-check"],
                         capture_output=True, text=True, check=False)
    return [line for line in res.stdout.splitlines() if line and not line.startswith("-")]


if __name__ == "__main__":
    sys.exit(main())
