"""Goal-first thoughts: the expert trajectories' call-first thoughts rewritten at training time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolbench_eval.errors import UserError
from toolbench_eval.localtoolbench.thoughts import call_thought, lookup_thought, restyle_goal_first
from toolbench_eval.training.data import Conversation, conversation_from_messages
from toolbench_eval.training.sft import Recipe, augment

TRAJECTORIES = Path(__file__).resolve().parents[1] / "data" / "localtoolbench" / "train" / "trajectories.jsonl"


def _assistant(thought: str, name: str, arguments: str = "{}") -> tuple[str, str]:
    return "assistant", f"Thought: {thought}\nAction: {name}\nAction Input: {arguments}"


def test_a_lookup_names_the_goal_and_the_call_it_feeds():
    lookup = lookup_thought("", "employer_lookup_for_careerscope", "employer=Norvex Airways")
    jobs = call_thought("The search returned company_id 7. ", "employer_jobs_for_careerscope",
                        "company_id=7, limit=2", "open positions at a company, newest first")
    conversation = Conversation("q", (
        ("system", "S"), ("user", "Q"),
        _assistant(lookup, "employer_lookup_for_careerscope", '{"employer": "Norvex Airways"}'),
        ("function", '{"results": [{"company_id": 7}]}'),
        _assistant(jobs, "employer_jobs_for_careerscope", '{"company_id": 7, "limit": 2}'),
        ("function", "{}"),
        _assistant("I have all the information the user asked for, so I'll give the final answer.", "Finish"),
    ), frozenset({4}))
    restyled, changed = restyle_goal_first(conversation.turns)
    assert changed == 2
    assert restyled[2] == _assistant(
        "To get the open positions at a company, newest first, employer_jobs_for_careerscope needs the company_id "
        "first, so I'll search with employer_lookup_for_careerscope for employer=Norvex Airways.",
        "employer_lookup_for_careerscope", '{"employer": "Norvex Airways"}')
    assert restyled[4] == _assistant(
        "The search returned company_id 7. To get the open positions at a company, newest first, I'll call "
        "employer_jobs_for_careerscope with company_id=7, limit=2.",
        "employer_jobs_for_careerscope", '{"company_id": 7, "limit": 2}')
    assert restyled[6] == conversation.turns[6]


def test_thoughts_not_in_the_exact_template_are_left_alone():
    turns = (("system", "S"), ("user", "Q"),
             _assistant("I'll call f_for_t with a=1 to get the b. Then more.", "f_for_t"),  # extra sentence
             _assistant("First I need the id, so I'll search with f_for_t for a=1.", "f_for_t"),  # no consumer
             ("assistant", "I'll call f_for_t with a=1 to get the b."))  # no "Thought: "
    assert restyle_goal_first(turns) == (turns, 0)


@pytest.mark.skipif(not TRAJECTORIES.exists(), reason="data/localtoolbench not generated")
def test_every_planned_call_in_the_committed_trajectories_is_restyled_and_nothing_else_changes():
    rewritten = planned = 0
    with TRAJECTORIES.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            original = conversation_from_messages(record["query_id"], record["messages"])
            restyled, changed = restyle_goal_first(original.turns)
            rewritten += changed
            for (role, before), (_, after) in zip(original.turns, restyled, strict=True):
                if role != "assistant":
                    assert after == before
                    continue
                thought_before, _, action_before = before.partition("\nAction: ")
                thought_after, _, action_after = after.partition("\nAction: ")
                assert action_after == action_before  # the call itself is never touched
                planned += " to get the " in thought_before or "First I need the id" in thought_before
                if thought_after != thought_before:
                    assert thought_after.startswith("Thought: ") and "To get the " in thought_after
                    assert " to get the " not in thought_after and "First I need the id" not in thought_after
    # every planned call is rewritten, except a lookup whose consumer did not say which id it took
    assert planned - 10 <= rewritten <= planned and rewritten > 4000


def test_augment_applies_the_style_and_rejects_unknown_ones():
    conversation = Conversation("q", (("system", "S"), ("user", "Q"),
                                      _assistant(call_thought("", "f_for_t", "a=1", "b"), "f_for_t")),
                                frozenset({2}))
    recipe = Recipe(data="unused", out="unused", thought_style="goal-first")
    (restyled,), counts = augment([conversation], recipe)
    assert restyled.turns[2][1].startswith("Thought: To get the b, I'll call f_for_t with a=1.\nAction: f_for_t")
    assert restyled.untrained == frozenset({2})  # the weights stay with their turns
    assert counts == {"tools_renamed": 0, "thoughts_restyled": 1}
    assert augment([conversation], Recipe(data="unused", out="unused")) == ([conversation], {"tools_renamed": 0})
    with pytest.raises(UserError, match="unknown thought style"):
        augment([conversation], Recipe(data="unused", out="unused", thought_style="sideways"))
