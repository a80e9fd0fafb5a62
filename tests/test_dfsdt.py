"""DFSDT (DFS_woFilter_w2) on a scripted model: backtracking, diversity prompt, limits, seeded choices."""

from __future__ import annotations

import asyncio
import json
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reasoning_fakes import ScriptedModel

from reasoning import answer_json, solve_dfsdt, write_answer_file
from reasoning.prompts import DIVERSITY_PROMPT
from reasoning.protocols import ToolResult

FUNCTIONS = [
    {"name": "get_word_for_words", "description": "Get a word.",
     "parameters": {"type": "object", "properties": {"n": {"type": "integer", "description": ""}},
                    "required": [], "optional": ["n"]}},
    {"name": "Finish", "description": "Finish.", "parameters": {"type": "object", "properties": {}}},
]
DESCRIPTIONS = [("words", "Random words")]
NEVER_DONE = "Thought: more\nAction: get_word_for_words\nAction Input: {}"


class FakeEnv:
    async def call(self, function_name, arguments):
        return ToolResult(json.dumps({"error": "", "response": f"n={arguments.get('n')}"}), 0)


def call(n, thought="t"):
    return f'Thought: {thought}\nAction: get_word_for_words\nAction Input: {{"n": {n}}}'


def answer(text="cat"):
    return 'Thought: done\nAction: Finish\nAction Input: ' + json.dumps(
        {"return_type": "give_answer", "final_answer": text})


GIVE_UP = 'Thought: no\nAction: Finish\nAction Input: {"return_type": "give_up_and_restart"}'


def solve(outputs=(), *, default=NEVER_DONE, **kwargs):
    model = ScriptedModel(outputs, default)
    trajectory = asyncio.run(solve_dfsdt("Give me a word", FUNCTIONS, DESCRIPTIONS, model, FakeEnv(), **kwargs))
    return trajectory, model


def observation(n):
    return json.dumps({"error": "", "response": f"n={n}"})


# Scenario used below (depth limit 6 = two decisions per path, width 2):
#   call 1 (root)          -> A: n=1
#   call 2 (under A)       -> give up            => A stops expanding (2 -> 1), root tries a sibling
#   call 3 (root, diverse) -> B: n=2
#   call 4 (under B)       -> C: n=3 at depth 6  => depth-limit prune (1): B tries a sibling
#   call 5 (B, diverse)    -> answer             => stop at the first answer
BACKTRACK_SCRIPT = [call(1), GIVE_UP, call(2), call(3), answer("dog")]


def test_backtracking_order_and_first_answer_stop():
    trajectory, model = solve(BACKTRACK_SCRIPT, single_chain_max_step=6)
    assert len(model.calls) == 5 and trajectory.query_count == 5
    assert trajectory.answered and trajectory.answer_text == "dog" and trajectory.finish_type == "give_answer"
    root = trajectory.roots[0]
    a_leaf = root.children[0].children[0].children[0]
    b_leaf = root.children[1].children[0].children[0]
    assert (a_leaf.description, b_leaf.description) == ('{"n": 1}', '{"n": 2}')
    give_up_leaf = a_leaf.children[0].children[0].children[0]
    assert give_up_leaf.pruned and give_up_leaf.observation_code == 4 and len(a_leaf.children) == 1
    assert trajectory.give_up_nodes == [give_up_leaf]
    depth_leaf, answer_leaf = (b.children[0].children[0] for b in b_leaf.children)
    assert depth_leaf.depth == 6 and depth_leaf.pruned and depth_leaf.observation_code == 0
    assert answer_leaf.is_terminal and not answer_leaf.pruned and trajectory.terminal_nodes == [answer_leaf]
    # pre-order visit numbers: root, A, give-up, B, C, answer
    assert [n.expand_num for n in (root, a_leaf, give_up_leaf, b_leaf, depth_leaf, answer_leaf)] == [0, 1, 2, 3, 4, 5]
    # make_finish(2) marks the answer and its ancestors up to two Action Input levels above
    assert answer_leaf.finished and b_leaf.finished and root.finished and not a_leaf.finished


def expected_diversity(candidates, former_observation=""):
    previous = json.dumps(candidates, indent=2) + "\n"
    if former_observation:
        previous += f"again, your former observation: {former_observation}\n"
    return DIVERSITY_PROMPT.replace("{previous_candidate}", previous)


def test_diversity_prompt_text_and_what_each_client_sees():
    _, model = solve(BACKTRACK_SCRIPT, single_chain_max_step=6)
    third = model.calls[2].messages  # root, second expansion
    assert third[-1] == {"role": "user", "content": expected_diversity(
        [{"name": "get_word_for_words", "arguments": '{"n": 1}', "function_output": observation(1),
          "mento-carlo-action-value": 0.0}])}
    assert "valid" not in third[-1]  # the flag is bookkeeping, never shown to a model
    fifth = model.calls[4].messages  # B, second expansion: its own observation is repeated
    assert fifth[-1]["content"] == expected_diversity(
        [{"name": "get_word_for_words", "arguments": '{"n": 3}', "function_output": observation(3),
          "mento-carlo-action-value": 0.0}], observation(2))
    # ToolLLaMA keeps the root's old (now invalid) diversity message in context, as upstream does.
    assert [m["role"] for m in fifth] == ["system", "user", "user", "assistant", "function", "user"]
    _, chat_model = solve(BACKTRACK_SCRIPT, single_chain_max_step=6, toolllama=False)
    assert [m["role"] for m in chat_model.calls[4].messages] == ["system", "user", "assistant", "function", "user"]


def test_answer_json_train_messages_keep_only_the_latest_invalid_message():
    trajectory, _ = solve(BACKTRACK_SCRIPT, single_chain_max_step=6)
    data = answer_json(trajectory, "DFS_woFilter_w2")
    assert list(data) == ["win", "tree", "forward_args", "compare_candidates", "answer_generation"]
    generation = data["answer_generation"]
    assert list(generation) == ["valid_data", "query_count", "total_tokens", "final_answer", "finish_type",
                                "function", "chain", "train_messages", "query"]
    assert data["forward_args"] == {"single_chain_max_step": 6, "tree_beam_size": 2, "max_query_count": 200,
                                    "answer": 1, "with_filter": False}
    last = generation["train_messages"][-1]
    assert [m["role"] for m in last] == ["system", "user", "assistant", "function", "user", "assistant"]
    assert last[4]["valid"] is False and last[4]["content"].startswith("This is not the first time")
    assert last[-1]["function_call"]["name"] == "Finish" and len(generation["train_messages"]) == 2
    assert data["tree"]["size"] == 1 + 5 * 3 and data["tree"]["max_length"] == 7
    assert data["win"] and len(data["compare_candidates"]) == 1 and len(data["compare_candidates"][0]) == 6


def test_width_two_full_tree_when_nothing_ever_finishes():
    trajectory, model = solve(single_chain_max_step=12)
    assert len(model.calls) == 2 + 4 + 8 + 16  # a full binary tree of four decisions
    assert not trajectory.valid_data and not trajectory.gave_up
    generation = answer_json(trajectory)["answer_generation"]
    assert generation["valid_data"] is False and "train_messages" not in generation  # as upstream
    assert generation["finish_type"] == "give_answer" and generation["final_answer"] == ""


def test_query_cap_stops_at_exactly_max_query_count_calls():
    trajectory, model = solve(width=4)  # 4 + 16 + 64 + 256 calls would be needed
    assert len(model.calls) == 200 and trajectory.query_count == 200
    trajectory, model = solve(width=4, max_query_count=7, default=answer("late"))
    assert len(model.calls) == 1 and trajectory.answered  # an answer stops the search first
    trajectory, model = solve([call(1)] * 6, width=4, max_query_count=7, default=answer("late"))
    assert len(model.calls) == 7 and not trajectory.answered  # the 7th output is never used


def test_give_up_node_choice_is_seeded():
    # Two give-up nodes: under A, then A's sibling gives up at the root.
    script = [call(1), GIVE_UP, GIVE_UP]
    chosen = {}
    for seed in range(12):
        trajectory, model = solve(script, seed=seed)
        assert len(model.calls) == 3 and len(trajectory.give_up_nodes) == 2
        assert trajectory.gave_up and not trajectory.answered and trajectory.valid_data
        assert trajectory.finish_type == "give_up"
        index = trajectory.give_up_nodes.index(trajectory.answer_node)
        assert index == random.Random(seed).randint(0, 1)
        chosen[seed] = index
    assert set(chosen.values()) == {0, 1}
    data = answer_json(solve(script, seed=3)[0])
    assert data["answer_generation"]["finish_type"] == "give_up" and data["win"] is False
    assert data["answer_generation"]["final_answer"] == '{"return_type": "give_up_and_restart"}'


def test_concurrent_trajectories_are_deterministic_and_files_byte_stable(tmp_path):
    script = [call(1), GIVE_UP, GIVE_UP]

    async def many(seeds):
        models = [ScriptedModel(script, NEVER_DONE) for _ in seeds]
        return await asyncio.gather(*(solve_dfsdt("q", FUNCTIONS, DESCRIPTIONS, m, FakeEnv(), seed=s, query_id=str(s))
                                      for m, s in zip(models, seeds)))

    seeds = list(range(8))
    together = asyncio.run(many(seeds))
    for seed, trajectory in zip(seeds, together):
        alone = asyncio.run(many([seed]))[0]
        first = write_answer_file(tmp_path / "a" / f"{seed}.json", answer_json(trajectory))
        second = write_answer_file(tmp_path / "b" / f"{seed}.json", answer_json(alone))
        assert first.read_bytes() == second.read_bytes()
    trajectory, _ = solve(BACKTRACK_SCRIPT, single_chain_max_step=6, seed=5)
    again, _ = solve(BACKTRACK_SCRIPT, single_chain_max_step=6, seed=5)
    one = write_answer_file(tmp_path / "x.json", answer_json(trajectory)).read_bytes()
    assert one == write_answer_file(tmp_path / "y.json", answer_json(again)).read_bytes()


def test_give_up_at_the_root_child_ends_the_search():
    trajectory, model = solve([GIVE_UP])
    assert len(model.calls) == 1 and trajectory.gave_up and trajectory.finish_type == "give_up"


OUTPUT_PIECES = st.sampled_from(["Thought: ", "Action: ", "Action Input: ", "\n", "{", "}", '"', "Finish",
                                 "get_word_for_words", '"return_type": "give_up_and_restart"',
                                 '"return_type": "give_answer"', '"final_answer": "x"'])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.text(max_size=80), st.lists(OUTPUT_PIECES, max_size=20).map("".join)), max_size=12),
       st.integers(0, 2**31))
def test_fuzz_any_model_output_gives_a_writable_answer(outputs, seed):
    trajectory, model = solve(outputs, default="nonsense", max_query_count=12, seed=seed)
    assert trajectory.error is None and trajectory.query_count == len(model.calls) <= 12
    generation = json.loads(json.dumps(answer_json(trajectory)))["answer_generation"]
    assert generation["valid_data"] == (trajectory.answered or trajectory.gave_up)


def test_model_failure_ends_the_search_with_the_error_recorded():
    class Failing(ScriptedModel):
        async def generate(self, messages, functions, *, trajectory_id):
            if len(self.calls) == 2:
                raise TimeoutError("engine timed out")
            return await super().generate(messages, functions, trajectory_id=trajectory_id)

    model = Failing([call(1), call(2)])
    trajectory = asyncio.run(solve_dfsdt("q", FUNCTIONS, DESCRIPTIONS, model, FakeEnv()))
    assert trajectory.error == "model call failed: TimeoutError: engine timed out"
    assert trajectory.query_count == 3 and not trajectory.valid_data
    assert answer_json(trajectory)["tree"]["size"] == 7
