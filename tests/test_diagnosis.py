"""`diagnose`: each unsolved answer of a scored run falls into the stage where it was lost."""

from __future__ import annotations

import json
from pathlib import Path

from toolbench_eval.cli import main
from toolbench_eval.scoring.diagnosis import rejected
from toolbench_eval.scoring.judges import RuleJudge
from toolbench_eval.scoring.passrate import score_run

APIS = [{"category_name": "Data", "tool_name": "Shop", "api_name": "find"},
        {"category_name": "Data", "tool_name": "Shop", "api_name": "price"},
        {"category_name": "Data", "tool_name": "Shop", "api_name": "stock"}]
LISTED = ["find_for_shop", "price_for_shop", "stock_for_shop", "Finish"]
PLAN = [{"tool_name": "Shop", "api_name": "find", "arguments": {"q": "lamp"}},
        {"tool_name": "Shop", "api_name": "price", "arguments": {"item_id": 7}}]
OK_FIND = {"error": "", "response": {"results": [{"item_id": 7, "name": "Lamp"}]}}
OK_PRICE = {"error": "", "response": {"item_id": 7, "price": 19.5}}
REFUSED = {"error": "", "response": {"message": "Missing required parameter: q"}}


def answer(calls: list[tuple[str, dict]], final: str | None) -> dict:
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "q"}]
    for name, observation in calls:
        messages += [{"role": "assistant", "content": "Thought", "function_call": {"name": name, "arguments": "{}"}},
                     {"role": "function", "name": name, "content": json.dumps(observation)}]
    arguments = json.dumps({"return_type": "give_answer", "final_answer": final}) if final is not None else ""
    if arguments:
        messages.append({"role": "assistant", "content": "", "function_call": {"name": "Finish", "arguments": arguments}})
    return {"answer_generation": {"valid_data": final is not None, "final_answer": arguments,
                                  "function": [{"name": name} for name in LISTED], "query_count": len(calls) + 1,
                                  "total_tokens": 10, "train_messages": [messages], "chain": [], "query": "q"},
            "win": False, "try_count": 1, "trys": []}


CASES = {  # query id -> (answer, expected stage or status)
    "1": (answer([("find_for_shop", OK_FIND), ("price_for_shop", OK_PRICE)], "Lamp costs 19.5"), "solved"),
    "2": (answer([("find_for_shop", OK_FIND), ("price_for_shop", OK_PRICE)], "Lamp costs 21"), "answer_misses_facts"),
    "3": (answer([], "I do not know"), "no_call"),
    "4": (answer([("lamp_prices_for_shop", {"error": "No such function name", "response": ""})], "?"),
          "unknown_function_first"),
    "5": (answer([("stock_for_shop", {"error": "", "response": {"in_stock": 3}})], "3 in stock"), "wrong_api_first"),
    "6": (answer([("find_for_shop", REFUSED)], None), "planned_api_first"),
    "7": (answer([("find_for_shop", OK_FIND)], "Lamp, id 7"), "planned_api_first"),
    "8": (None, "no_answer"),  # no answer file written
}


def build_run(tmp_path: Path) -> Path:
    bench = tmp_path / "bench" / "test_instruction"
    bench.mkdir(parents=True)
    entries = [{"query": f"How much is the lamp ({qid})?", "query_id": int(qid), "api_list": APIS,
                "ground_truth": {"facts": ["19.5"], "call_plan": PLAN}} for qid in CASES]
    (bench / "G1_tool.json").write_text(json.dumps(entries))
    run = tmp_path / "run"
    (run / "G1_tool").mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({
        "run_id": "r", "method": "CoT@1", "method_label": "react", "model_name": "tiny", "groups": ["G1_tool"],
        "benchmark": {"name": "test", "root": str(tmp_path / "bench")}, "config": {}}))
    for qid, (data, _) in CASES.items():
        if data is not None:
            (run / "G1_tool" / f"{qid}_CoT@1.json").write_text(json.dumps(data))
    return run


def test_every_unsolved_answer_gets_the_stage_where_it_was_lost(tmp_path, capsys):
    run = build_run(tmp_path)
    assert main(["diagnose", str(run)]) != 0
    assert "score the run first" in capsys.readouterr().err
    score_run(run, RuleJudge(), evaluate_times=1)
    assert main(["diagnose", str(run)]) == 0
    result = json.loads((run / "scores" / "diagnosis_rule.json").read_text())["groups"]["G1_tool"]
    stages = {qid: found["stage"] for qid, found in result["queries"].items()}
    assert stages == {qid: expected for qid, (_, expected) in CASES.items() if expected != "solved"}
    assert result["queries"]["6"]["first_call_rejected"] is True
    assert result["queries"]["7"]["first_call_rejected"] is False
    assert result["counts"] == {"solved": 1, "unsure": 0, "no_answer": 1, "answer_misses_facts": 1, "no_call": 1,
                                "unknown_function_first": 1, "wrong_api_first": 1, "planned_api_first": 2,
                                "first_call_rejected": 1}
    table = capsys.readouterr().out
    assert "| I1-Tool | 8 | 1 | 0 | 1 | 1 | 1 | 1 | 1 | 2 | 1 |" in table


def test_a_refusal_is_an_error_or_a_bare_message():
    assert rejected(json.dumps(REFUSED)) and rejected(json.dumps({"error": "Timeout error", "response": ""}))
    assert not rejected(json.dumps(OK_FIND)) and not rejected("not json")
    assert not rejected(json.dumps({"error": "", "response": {"message": "ok", "results": []}}))
