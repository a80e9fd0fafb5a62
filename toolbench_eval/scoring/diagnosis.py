"""Where unsolved queries are lost: the first failure of each one, read against LocalToolBench's ground truth.

A pass rate says how many queries were lost, not where. With a ground truth call plan and facts
(LocalToolBench), each unsolved answer of a scored run falls into exactly one stage, checked in this order
on the trajectory of its final decision (`AnswerRecord.answer_details`, what the judge read):

- `no_answer`: the run wrote no answer file for it (it counts as Unsolved);
- `answer_misses_facts`: every required fact appeared in the observations, but the final answer does
  not state them all (a copying slip, a premature or missing Finish);
- `no_call`: no call to any function (only malformed steps, or an immediate Finish);
- `unknown_function_first`: the first call names a function the prompt does not list;
- `wrong_api_first`: the first call is a listed function that is not in the call plan (a sibling API);
- `planned_api_first`: the first call is in the plan, yet the facts were never all observed (wrong
  arguments, a missing second step, a give-up). `first_call_rejected` counts those whose first call the
  API rejected (a 400-style message).

Solved and Unsure answers are counted, not diagnosed. The stage is a fact about the trajectory, not a
judgement: it needs no model and gives the same table every time.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from toolbench_eval.benchmark.model import Query
from toolbench_eval.benchmark.naming import function_name, standardize
from toolbench_eval.scoring.labels import AnswerRecord
from toolbench_eval.scoring.normalize import states_fact

STAGES = ("no_answer", "answer_misses_facts", "no_call", "unknown_function_first", "wrong_api_first", "planned_api_first")
FINISH = "Finish"


def _calls(answer: AnswerRecord | None) -> list[dict[str, str]]:
    """The tool calls of the final decision, Finish and malformed steps (no function name) left out."""
    if answer is None:
        return []
    calls = []
    for message in answer.tool_messages():
        if isinstance(message, dict) and message.get("name") and message["name"] != FINISH:
            calls.append({key: str(message.get(key, "")) for key in ("name", "arguments", "response")})
    return calls


def rejected(response: str) -> bool:
    """Whether an observation is a refusal: a gateway error, or a response that is only a `message`."""
    try:
        parsed = json.loads(response)
    except json.JSONDecodeError:
        return False
    if not isinstance(parsed, dict):
        return False
    body = parsed.get("response")
    return bool(parsed.get("error")) or (isinstance(body, dict) and set(body) == {"message"})


def diagnose_answer(query: Query, answer: AnswerRecord | None) -> dict[str, Any]:
    """The stage where one unsolved answer was lost, with what decided it."""
    if query.ground_truth is None:
        raise ValueError(f"query {query.query_id} has no ground truth (LocalToolBench queries have one)")
    calls = _calls(answer)
    observed = "\n".join(call["response"] for call in calls)
    facts = query.ground_truth.facts
    planned = {function_name(step["api_name"], standardize(step["tool_name"])) for step in query.ground_truth.call_plan}
    listed = {str(tool.get("name")) for tool in (answer.available_tools if answer else [])}
    first = calls[0] if calls else None
    diagnosis: dict[str, Any] = {"first_call": first["name"] if first else None, "calls": len(calls)}
    if answer is None:
        stage = "no_answer"
    elif facts and all(states_fact(observed, fact) for fact in facts):
        stage = "answer_misses_facts"
    elif first is None:
        stage = "no_call"
    elif listed and first["name"] not in listed:
        stage = "unknown_function_first"
    elif first["name"] not in planned:
        stage = "wrong_api_first"
    else:
        stage = "planned_api_first"
        diagnosis["first_call_rejected"] = rejected(first["response"])
    diagnosis["stage"] = stage
    return diagnosis


def diagnose_group(queries: dict[str, Query], answers: dict[str, AnswerRecord],
                   statuses: dict[str, str]) -> dict[str, Any]:
    """Counts by stage for one group, and the stage of each unsolved query.

    `statuses` maps each query id of the group to the judge's label ("Solved", "Unsolved", "Unsure"); a query
    the judge did not label is left out.
    """
    counts: Counter[str] = Counter()
    per_query: dict[str, dict[str, Any]] = {}
    for qid, status in statuses.items():
        if status != "Unsolved":
            counts[status.lower()] += 1
            continue
        found = diagnose_answer(queries[qid], answers.get(qid))
        per_query[qid] = found
        counts[found["stage"]] += 1
        counts["first_call_rejected"] += bool(found.get("first_call_rejected"))
    return {"n": len(statuses), "counts": {key: counts.get(key, 0) for key in
                                           ("solved", "unsure", *STAGES, "first_call_rejected")},
            "queries": per_query}


def format_diagnosis(run_id: str, groups: dict[str, dict[str, Any]], labels: dict[str, str]) -> str:
    """A Markdown table: one row per group, one column per stage."""
    header = ["group", "N", "solved", "unsure", *STAGES, "of which first call rejected"]
    lines = [f"Where the unsolved queries of {run_id} were lost (first failure; see `toolbench_eval/scoring/diagnosis.py`)",
             "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for group, result in groups.items():
        counts = result["counts"]
        row = [labels.get(group, group), str(result["n"]), str(counts["solved"]), str(counts["unsure"]),
               *(str(counts[stage]) for stage in STAGES), str(counts["first_call_rejected"])]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
