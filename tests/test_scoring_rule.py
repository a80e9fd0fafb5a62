"""The rule judge, its normalisation, and reading raw / converted answers into records."""

from __future__ import annotations

import json

import pytest

from toolbench_eval.benchmark.model import GroundTruth, Query
from toolbench_eval.errors import UserError
from toolbench_eval.scoring.judges import RuleJudge
from toolbench_eval.scoring.labels import AnswerStatus, record_from_converted, record_from_raw, short_circuit
from toolbench_eval.scoring.normalize import canonical_number, normalize, states_fact, tokens


@pytest.mark.parametrize(
    ("answer", "fact"),
    [
        ("The value is 7.", "7"),
        ("The value is 7.0", "7"),
        ("the value is 7.00", "7"),
        ("Total: 1,234,567 people", "1234567"),
        ("Total: 1234567 people", "1,234,567"),
        ("It is  PARIS,\nFrance!", "paris france"),
        ("Rate: 45%", "45 percent"),
        ("priced at $3.50", "3.5"),
        ("distance 5km", "5 km"),
        ("temperature −4 °C", "-4"),
        ("STRASSE 12", "straße 12"),
    ],
)
def test_facts_found_after_normalisation(answer, fact):
    assert states_fact(answer, fact)


@pytest.mark.parametrize(
    ("answer", "fact"),
    [
        ("It costs 17 dollars", "7"),  # whole tokens only
        ("category: pets", "cat"),
        ("The value is 7.5", "7"),
        ("Paris", "paris france"),
        ("france paris", "paris france"),  # order matters
        ("2023-04-15", "-4"),  # a hyphen inside a date is not a minus sign
    ],
)
def test_facts_not_found(answer, fact):
    assert not states_fact(answer, fact)


def test_number_canonical_forms():
    assert [canonical_number(x) for x in ("7.50", "0.0", "-3.10", "1,000.0")] == ["7.5", "0", "-3.1", "1000"]
    assert normalize("A, b;  C") == "a b c"
    assert tokens("g1 v1.2") == ["g1", "v1", "2"]


# ---------------------------------------------------------------------------------------------
# Raw answer files


def raw_answer(
    final: dict | None, *, calls: int = 1, style: str = "function_call", query: str = "Q?"
) -> dict:
    """A raw StableToolBench answer file; `final=None` stops without a Finish call."""
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": query}]
    for i in range(calls):
        if style == "function_call":
            messages.append(
                {
                    "role": "assistant",
                    "content": "Thought",
                    "function_call": {"name": "look_for_t", "arguments": "{}"},
                }
            )
            messages.append(
                {"role": "function", "name": "look_for_t", "content": f'{{"error": "", "response": "r{i}"}}'}
            )
        else:
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": f"c{i}",
                            "type": "function",
                            "function": {"name": "look_for_t", "arguments": "{}"},
                        }
                    ],
                }
            )
            messages.append(
                {"role": "tool", "tool_call_id": f"c{i}", "content": f'{{"error": "", "response": "r{i}"}}'}
            )
    arguments = json.dumps(final) if final is not None else ""
    if final is not None:
        call = {"name": "Finish", "arguments": arguments}
        if style == "function_call":
            messages.append({"role": "assistant", "content": "done", "function_call": call})
        else:
            messages.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "f", "type": "function", "function": call}],
                }
            )
    return {
        "win": final is not None,
        "answer_generation": {
            "valid_data": final is not None and final.get("return_type") == "give_answer",
            "final_answer": arguments,
            "function": [{"name": "look_for_t"}, {"name": "Finish"}],
            "query_count": calls + 1,
            "total_tokens": 10,
            "train_messages": [messages[:3], messages],
            "chain": [],
            "query": query,
        },
    }


@pytest.mark.parametrize("style", ["function_call", "tool_calls"])
def test_raw_answer_becomes_a_record_like_the_upstream_converter(style):
    data = raw_answer({"return_type": "give_answer", "final_answer": "It is 42."}, calls=2, style=style)
    record = record_from_raw(data, query_id="5", method="CoT@1")
    assert record.final_answer == "It is 42." and record.finish_type == "give_answer"
    assert record.ends_with_finish and record.tool_calls == 3
    assert record.total_steps == 5  # blanked system + user, then three tool nodes (upstream's node_count)
    steps, final_step = record.steps()
    assert steps.startswith(
        "Step 1: {'name': 'look_for_t', 'arguments': '{}', "
        '\'response\': \'{"error": "", "response": "r0"}\'}'
    )
    assert "'name': 'Finish'" in final_step and short_circuit(record) is None


def test_short_circuits_match_upstream():
    give_up = record_from_raw(
        raw_answer({"return_type": "give_up_and_restart"}), query_id="1", method="CoT@1"
    )
    assert short_circuit(give_up) == "gave up (give_up_and_restart)" and give_up.finish_type == "give_up"
    no_finish = record_from_raw(raw_answer(None), query_id="1", method="CoT@1")
    assert short_circuit(no_finish) == "last step is not Finish"
    assert short_circuit(None) == "no answer file"


def test_invalid_cot_answer_without_train_messages_reads_the_last_try():
    data = {
        "trys": [
            {
                "chain": [
                    {"node_type": "Thought", "description": "thinking"},
                    {"node_type": "Action", "description": "look_for_t"},
                    {"node_type": "Action Input", "description": "{}", "observation": "oops"},
                ],
                "win": False,
            }
        ],
        "answer_generation": {
            "valid_data": False,
            "final_answer": "",
            "function": [],
            "train_messages": [],
            "chain": [],
            "query": "Q?",
        },
    }
    record = record_from_raw(data, query_id="3", method="CoT@1")
    assert record.tool_calls == 1 and not record.ends_with_finish and record.final_answer_raw == ""


def test_converted_entry_uses_upstreams_final_step_test():
    final = json.dumps({"return_type": "give_answer", "final_answer": "x"})
    entry = {
        "query": "Q",
        "available_tools": [],
        "answer": {
            "method": "CoT@1",
            "total_steps": 3,
            "final_answer": final,
            "answer_details": [
                {
                    "role": "system",
                    "message": "",
                    "next": [
                        {
                            "role": "user",
                            "message": "",
                            "next": [
                                {
                                    "role": "tool",
                                    "message": {"name": "Finish", "arguments": final, "response": ""},
                                    "next": [],
                                }
                            ],
                        }
                    ],
                }
            ],
        },
    }
    record = record_from_converted(entry, query_id="9")
    assert record.ends_with_finish and record.finish_type == "give_answer" and record.final_answer == "x"


# ---------------------------------------------------------------------------------------------
# Rule judge


def query_with(facts):
    return Query(
        query_id="1",
        query="Q?",
        group="G1_instruction",
        api_list=(),
        ground_truth=GroundTruth(facts=tuple(facts)),
    )


def answer(text, calls=1, return_type="give_answer"):
    return record_from_raw(
        raw_answer({"return_type": return_type, "final_answer": text}, calls=calls),
        query_id="1",
        method="CoT@1",
    )


def test_rule_judge_needs_every_fact():
    judge = RuleJudge()
    query = query_with(["Paris", "21.5"])
    assert judge.judge(query, answer("Paris: 21.50 degrees")).status is AnswerStatus.Solved
    partial = judge.judge(query, answer("It is Paris."))
    assert partial.status is AnswerStatus.Unsolved and partial.reason == "missing facts: 21.5"
    assert judge.judge(query, answer("", return_type="give_answer")).status is AnswerStatus.Unsolved


def test_rule_judge_never_says_unsure_and_needs_ground_truth():
    judge = RuleJudge()
    statuses = {judge.judge(query_with(["7"]), answer(text)).status for text in ("7", "8", "maybe 7?", "")}
    assert statuses == {AnswerStatus.Solved, AnswerStatus.Unsolved}
    with pytest.raises(UserError, match="--judge llm"):
        judge.judge(Query(query_id="1", query="Q", group="G1_tool", api_list=()), answer("7"))


def test_rule_preference_by_facts_then_fewer_calls_then_tie():
    judge = RuleJudge()
    query = query_with(["Paris", "21.5"])
    assert judge.prefer(query, answer("Paris 21.5", calls=5), answer("Paris", calls=1)) == "a"
    assert judge.prefer(query, answer("Paris", calls=3), answer("Paris", calls=1)) == "b"
    assert judge.prefer(query, answer("Paris", calls=2), answer("Paris!", calls=2)) == "tie"
    gave_up = answer("Paris 21.5", return_type="give_up_and_restart")
    assert judge.prefer(query, gave_up, answer("Paris")) == "b"
