"""Write parser_cases.json and observations.json by calling upstream's ToolLLaMA parse and rapidapi `step`.

    python probe_env.py --stb-src DIR --server-url http://127.0.0.1:PORT --out FIXTURE_DIR

Parser cases: each raw output goes through upstream's ToolLLaMA.parse (HF class on the scripted model, and
ToolLLaMA_vllm on the scripted completion), then the resulting tool call goes through upstream's
`rapidapi_wrapper.step` (= `_step` + the 1,024-character cut) for query 588's function list, against
upstream's server (behind a recording proxy). Observations: upstream's `step` for one fixed call while the
service answers each canned reply. `time` inside rapidapi_multithread is replaced by a shim whose sleep() only
records the seconds (upstream sleeps 2 s per API call and 10 s on a rate-limit error); nothing else is changed.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import socket
import sys
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fake_llm
import inputs
import probe_cases
import services
from upstream_runner import stub_unused_modules

SLEEPS: list[float] = []


def setup(stb_src: Path):
    os.chdir(stb_src)
    sys.path[:0] = [str(stb_src / "toolbench" / "inference"), str(stb_src)]
    stub_unused_modules()
    import toolbench.inference.Downstream_tasks.rapidapi_multithread as rapidapi
    rapidapi.time = types.SimpleNamespace(sleep=SLEEPS.append)
    return rapidapi


def make_env(rapidapi, group: str, query_id: int, tools_dir: Path, service_url: str):
    from toolbench.utils import standardize
    os.environ["SERVICE_URL"] = service_url
    args = types.SimpleNamespace(tool_root_dir=str(tools_dir), toolbench_key="", rapidapi_key="",
                                 use_rapidapi_key=False, api_customization=False, max_observation_length=1024,
                                 observ_compress_method="truncate")
    query = inputs.query_by_id(group, query_id)
    white_list = rapidapi.get_white_list(str(tools_dir))
    tool_des = rapidapi.contain([standardize(c["tool_name"]) for c in query["api_list"]], white_list)
    tool_des = [[c["standard_tool_name"], c["description"]] for c in tool_des]
    return rapidapi.rapidapi_wrapper(query, tool_des, None, args), query


def run_step(env, action_name: str, action_input: str, proxy=None) -> dict:
    """Upstream's env.step on a copy of env; records _step's own return, step's, sleeps and server traffic."""
    env = copy.deepcopy(env)
    raw = {}
    real = env._step

    def spy(**kw):
        obs, code = real(**kw)
        raw["observation"], raw["code"] = obs, code
        return obs, code

    env._step = spy
    SLEEPS.clear()
    if proxy is not None:
        proxy.take()
    out: dict = {"action_name": action_name, "action_input": action_input}
    try:
        obs, code = env.step(action_name=action_name, action_input=action_input)
        out["_step"] = {"observation": raw["observation"], "code": raw["code"]}
        out["step"] = {"observation": obs, "code": code, "truncated": obs != raw["observation"]}
        out["success_flag_after"] = env.success
    except Exception as exc:  # noqa: BLE001 - what upstream raises is the fixture
        out["raises"] = f"{type(exc).__name__}: {exc}"
    out["sleeps"] = list(SLEEPS)
    if proxy is not None:
        out["server_requests"] = [{"payload": r["payload"], "body": r["body"], "server_status": r["server_status"],
                                   "server_reply": r["server_reply"]} for r in proxy.take()]
    return out


def initial_messages(env):
    from Prompts.ReAct_prompts import FORMAT_INSTRUCTIONS_SYSTEM_FUNCTION, FORMAT_INSTRUCTIONS_USER_FUNCTION
    system = FORMAT_INSTRUCTIONS_SYSTEM_FUNCTION.replace("{task_description}", env.task_description)
    user = FORMAT_INSTRUCTIONS_USER_FUNCTION.replace("{input_description}", env.input_description)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def parser_cases(rapidapi, out: Path, proxy) -> dict:
    import toolbench.inference.LLM.tool_llama_model as tlm
    import toolbench.inference.LLM.tool_llama_vllm_model as tvm
    from utils import react_parser  # toolbench/inference/utils.py, as upstream's Algorithms import it

    env, query = make_env(rapidapi, probe_cases.PARSER_QUERY["group"], probe_cases.PARSER_QUERY["query_id"],
                          out / "toolenv" / "tools", proxy.url("/virtual"))
    raws = [case["raw"] for case in probe_cases.PARSER_CASES]
    hf_script, vllm_script = fake_llm.Script(raws), fake_llm.Script(raws)
    fake_llm.install_hf(hf_script)
    fake_llm.install_vllm(vllm_script)
    hf = tlm.ToolLLaMA("ToolBench/ToolLLaMA-2-7b-v2")
    vllm = tvm.ToolLLaMA_vllm(model="ToolBench/ToolLLaMA-2-7b-v2", openai_key="EMPTY",
                              base_url="http://127.0.0.1:12345/v1")
    messages = initial_messages(env)
    cases = []
    for case in probe_cases.PARSER_CASES:
        record = {"name": case["name"], "note": case["note"], "raw": case["raw"]}
        for label, llm in (("hf", hf), ("vllm", vllm)):
            llm.change_messages(copy.deepcopy(messages))
            message, error_code, tokens = llm.parse(tools=env.functions, process_id=1)
            content = message["content"]
            thought, action, action_input = react_parser(content)
            call = message["tool_calls"][0]["function"]
            entry = {"content": content, "react_parser": {"thought": thought, "action": action,
                                                           "action_input": action_input},
                     "tool_call": {"name": call["name"], "arguments": call["arguments"]},
                     "parse_error_code": error_code, "parse_total_tokens": tokens}
            if label == "vllm" and content == record["hf"]["content"]:
                record["vllm"] = {"same_as_hf": True, "parse_total_tokens": tokens}
                continue
            entry["step"] = run_step(env, call["name"], call["arguments"], proxy)
            record[label] = entry
        cases.append(record)
    names = [f["function"]["name"] for f in env.functions]
    return {
        "about": "Raw ToolLLaMA outputs through upstream's parse (HF ToolLLaMA: generate_stream's rfind('</s>') cut "
                 "and .strip(); ToolLLaMA_vllm: the completion text as is), react_parser, and rapidapi "
                 "step/_step on the resulting tool call. 'raises' = upstream raised that exception.",
        "query": {"group": probe_cases.PARSER_QUERY["group"], "query_id": query["query_id"]},
        "function_names": names,
        "service": "upstream server/main.py behind a recording proxy, cache = <fixture>/tool_response_cache",
        "cases": cases,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def observations(rapidapi, out: Path, proxy) -> dict:
    canned = services.CannedReplies()
    tools = out / "toolenv" / "tools"
    q = probe_cases.OBSERVATION_QUERY
    action, action_input = "popularsitesforquery_for_keyword_analysis", '{"q": "birthday party ideas"}'
    results = []

    def run(name, note, service_url, reply=None, action_input=action_input):
        env, _ = make_env(rapidapi, q["group"], q["query_id"], tools, service_url)
        record = {"name": name, "note": note, "service_url": service_url}
        if reply is not None:
            record["server_reply"] = reply
        record.update(run_step(env, action, action_input))
        canned.take()
        results.append(record)

    for name, note, status, body in probe_cases.OBSERVATION_CASES:
        canned.cases[name] = {"status": status, "body": body.encode("utf-8")}
        run(name, note, canned.url(f"/canned/{name}/virtual"), {"status": status, "body": body})
    dead = free_port()
    run("connection_refused", "nothing listens: requests raises ConnectionError, which _step does not catch",
        f"http://127.0.0.1:{dead}/virtual")
    canned.cases["slow_non_virtual"] = {"status": 200, "body": b'{"error": "", "response": "late"}', "delay": 16}
    run("timeout_non_virtual_url", "SERVICE_URL not ending in 'virtual' gets timeout=15: a 16 s reply is code 5",
        canned.url("/canned/slow_non_virtual/rapidapi"), {"status": 200, "body": '{"error": "", "response": "late"}',
                                                           "delay_s": 16})
    canned.cases["fast_non_virtual"] = {"status": 200, "body": b'{"error": "", "response": "quick"}'}
    run("fast_non_virtual_url", "same reply shape through a non-virtual URL",
        canned.url("/canned/fast_non_virtual/rapidapi"), {"status": 200, "body": '{"error": "", "response": "quick"}'})
    canned.close()
    # the real upstream server (behind the proxy): hit, parse error, empty input, miss
    for name, note, args in (
        ("upstream_server_cache_hit", "cached arguments", action_input),
        ("upstream_server_parse_error", "arguments that are not JSON", "{q: birthday party ideas}"),
        ("upstream_server_empty_input", "empty arguments become {}", ""),
        ("upstream_server_cache_miss", "not cached: real API stand-in 503, OpenAI stand-in 401, server 500",
         '{"q": "graduation party"}'),
    ):
        env, _ = make_env(rapidapi, q["group"], q["query_id"], tools, proxy.url("/virtual"))
        record = {"name": name, "note": note, "service_url": "upstream server/main.py (via recording proxy)"}
        record.update(run_step(env, action, args, proxy))
        results.append(record)
    return {
        "about": "What upstream's rapidapi_wrapper.step/_step returns (observation, status code) for one call to "
                 f"{action} with {action_input}, while the service answers with each reply. '_step' is before the "
                 "1,024-character cut, 'step' after it; 'raises' = upstream raised; 'sleeps' = the seconds upstream "
                 "slept (2 per API call, 10 more on the rate-limit error).",
        "query": q,
        "cases": results,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stb-src", required=True, type=Path)
    ap.add_argument("--server-url", required=True)
    ap.add_argument("--out", required=True, type=Path)
    opts = ap.parse_args()
    out = opts.out.resolve()
    rapidapi = setup(opts.stb_src.resolve())
    proxy = services.RecordingProxy(opts.server_url)
    try:
        parser = parser_cases(rapidapi, out, proxy)
        obs = observations(rapidapi, out, proxy)
    finally:
        proxy.close()
    for name, data in (("parser_cases.json", parser), ("observations.json", obs)):
        text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
        text = scrub_ports(text)
        (out / name).write_text(text, encoding="utf-8")
        print(f"[stb_golden] wrote {out / name}")
    return 0


def scrub_ports(text: str) -> str:
    import re
    text = re.sub(r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:<port>", text)
    text = re.sub(r"port=\d+", "port=<port>", text)
    return re.sub(r" at 0x[0-9a-f]+", " at 0x<address>", text)


if __name__ == "__main__":
    sys.exit(main())
