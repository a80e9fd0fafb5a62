"""ReAct (CoT@1) on a scripted model and a fake tool environment."""

from __future__ import annotations

import asyncio
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reasoning_fakes import ScriptedModel

from reasoning import answer_json, solve_react
from reasoning.eval_protocol import resolve_protocol
from reasoning.prompts import build_system_message
from reasoning.protocols import ToolResult

FUNCTIONS = [
    {"name": "get_word_for_words", "description": "Get a word.",
     "parameters": {"type": "object", "properties": {"n": {"type": "integer", "description": ""}},
                    "required": [], "optional": ["n"]}},
    {"name": "Finish", "description": "Finish.", "parameters": {"type": "object", "properties": {}}},
]
DESCRIPTIONS = [("words", "Random words")]
REACT_DEFAULT = "Thought: again\nAction: get_word_for_words\nAction Input: {}"


class FakeEnv:
    def __init__(self, fail: bool = False):
        self.fail = fail
        self.calls: list[tuple[str, dict]] = []

    async def call(self, function_name, arguments):
        self.calls.append((function_name, arguments))
        if self.fail:
            raise RuntimeError("boom")
        return ToolResult(json.dumps({"error": "", "response": f"{function_name}:{json.dumps(arguments)}"}), 0)


def call(name="get_word_for_words", arguments='{"n": 3}', thought="I need a word."):
    return f"Thought: {thought}\nAction: {name}\nAction Input: {arguments}"


def answer(text="cat"):
    return call("Finish", json.dumps({"return_type": "give_answer", "final_answer": text}), "Done.")


def give_up():
    return call("Finish", '{"return_type": "give_up_and_restart"}', "I give up.")


def solve(outputs=(), env=None, **kwargs):
    model = ScriptedModel(outputs, kwargs.pop("default", REACT_DEFAULT), prompt_tokens=100, completion_tokens=10)
    env = env or FakeEnv()
    trajectory = asyncio.run(solve_react("Give me a word", FUNCTIONS, DESCRIPTIONS, model, env, **kwargs))
    return trajectory, model, env


def last_leaf(trajectory):
    return trajectory.tries[-1]


def test_one_call_then_answer():
    trajectory, model, env = solve([call() + "</s>", answer("cat")], query_id="7")
    assert trajectory.answered and trajectory.win and not trajectory.gave_up and trajectory.error is None
    assert trajectory.final_answer == '{"return_type": "give_answer", "final_answer": "cat"}'
    assert trajectory.answer_text == "cat"
    assert (trajectory.query_count, trajectory.total_tokens) == (2, 220)
    assert env.calls == [("get_word_for_words", {"n": 3})]
    assert [c.trajectory_id for c in model.calls] == ["7", "7"]  # trajectory_id defaults to the query id
    # ToolLLaMA sees the augmented system prompt; its second turn sees its own raw text and the observation.
    second = model.calls[1].messages
    assert "Specifically, you have access to the following APIs: [{'name': 'get_word_for_words'" in second[0]["content"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "function"]
    assert second[2]["content"] == call()  # EOS marker removed
    assert second[2]["function_call"] == {"name": "get_word_for_words", "arguments": '{"n": 3}'}
    assert second[3] == {"role": "function", "name": "get_word_for_words",
                         "content": '{"error": "", "response": "get_word_for_words:{\\"n\\": 3}"}'}


def test_answer_file_shape_and_train_messages():
    trajectory, _, _ = solve([call(), answer("cat")], trajectory_id="G1/7", query_id="7")
    data = answer_json(trajectory, "CoT@1")
    assert list(data) == ["win", "try_count", "trys", "compare_candidates", "forward_args", "answer_generation"]
    generation = data["answer_generation"]
    assert list(generation) == ["valid_data", "final_answer", "function", "query_count", "total_tokens",
                                "train_messages", "chain", "query"]
    assert data["forward_args"] == {"single_chain_max_step": 12, "pass_at": 1, "answer": 1}
    assert generation["valid_data"] and generation["query"] == "Give me a word" and generation["chain"] == []
    assert generation["function"] == FUNCTIONS
    chain = data["trys"][0]["chain"]
    assert [(n["depth"], n["node_type"]) for n in chain] == [
        (1, "Thought"), (2, "Action"), (3, "Action Input"), (4, "Thought"), (5, "Action"), (6, "Action Input")]
    assert chain[-1]["observation"] == '{"response":"successfully giving the final answer."}'
    assert chain[-1]["observation_code"] == 3 and chain[-1]["is_terminal"] is True
    assert data["compare_candidates"] == [chain] and data["trys"][0]["win"] is True
    messages = generation["train_messages"]
    assert [[m["role"] for m in lst] for lst in messages] == [
        ["system", "user", "assistant"], ["system", "user", "assistant", "function", "assistant"]]
    # train_messages carry the plain system prompt, as upstream's do.
    assert messages[-1][0]["content"] == build_system_message(DESCRIPTIONS)
    assert messages[-1][-1]["function_call"]["name"] == "Finish"


def test_node_json_quirks_switch_reproduces_is_terminal_and_try_win_bugs():
    trajectory, _, _ = solve([answer()])
    data = answer_json(trajectory, "CoT@1", protocol=resolve_protocol("toolbench-eval", {"node_json_quirks": True}))
    assert data["win"] is True and data["trys"][0]["win"] is False
    assert all(node["is_terminal"] is False for node in data["trys"][0]["chain"])


def test_depth_limit_counts_nodes_three_per_decision():
    trajectory, model, _ = solve()  # the model never finishes
    assert len(model.calls) == 4  # depths 3, 6, 9, 12
    leaf = last_leaf(trajectory)
    assert leaf.depth == 12 and leaf.pruned and not trajectory.valid_data
    trajectory, model, _ = solve(single_chain_max_step=50)
    assert len(model.calls) == 17 and last_leaf(trajectory).depth == 51
    data = answer_json(trajectory)
    assert data["answer_generation"]["train_messages"] == [] and data["answer_generation"]["final_answer"] == ""


def test_answer_at_the_depth_limit_counts():
    trajectory, model, _ = solve([call(), call(), call(), answer()])
    assert len(model.calls) == 4 and trajectory.answered and last_leaf(trajectory).depth == 12


def test_hallucinated_name_gets_upstream_observation_and_is_renamed_in_messages():
    trajectory, model, env = solve([call("word_for_words"), answer()])
    assert env.calls == []
    leaf = trajectory.roots[0].children[0].children[0].children[0]
    assert leaf.observation == '{"error": "No such function name: word_for_words", "response": ""}'
    assert leaf.observation_code == 1
    assert leaf.father.description == "word_for_words"  # the Action node keeps what the model wrote
    seen = model.calls[1].messages
    assert seen[2]["function_call"]["name"] == "invalid_hallucination_function_name"
    assert seen[3]["name"] == "invalid_hallucination_function_name"


def test_suffix_matching_is_opt_in():
    _, _, env = solve([call("word_for_words"), answer()],
                      protocol=resolve_protocol("toolbench-eval", {"name_matching": "suffix"}))
    assert env.calls == [("get_word_for_words", {"n": 3})]


def test_unparseable_arguments_get_the_servers_parse_error_and_empty_means_empty_object():
    trajectory, _, env = solve([call(arguments="n=3"), call(arguments=""), answer()])
    first = trajectory.roots[0].children[0].children[0].children[0]
    assert first.observation == json.dumps({"error": "Tool input parse error...\n", "response": ""})
    assert first.observation_code == 2
    assert env.calls == [("get_word_for_words", {})]


def test_finish_with_bad_arguments_continues_the_chain():
    trajectory, model, _ = solve([
        call("Finish", '{"return_type": "give_answer"}'),
        call("Finish", '{"return_type": "maybe"}'),
        call("Finish", '{"final_answer": "x"}'),
        call("Finish", '{"return_type": "give_answer", "final_answer": "unterminated'),
    ])
    root = trajectory.roots[0]
    leaves = []
    node = root
    while node.children:
        node = node.children[0]
        if node.node_type == "Action Input":
            leaves.append((node.observation, node.observation_code))
    assert leaves == [
        ('{error:"must have "final_answer""}', 2),
        ('{error:""return_type" is not a valid choice"}', 2),
        ('{error:"must have "return_type""}', 2),
        ('{"response":"successfully giving the final answer."}', 3),  # upstream's string-search fallback
    ]
    assert trajectory.answered and len(model.calls) == 4


def test_give_up_ends_the_chain_without_an_answer():
    trajectory, model, _ = solve([give_up()])
    assert len(model.calls) == 1 and trajectory.gave_up and not trajectory.answered
    assert not trajectory.valid_data and trajectory.final_answer == "" and last_leaf(trajectory).pruned
    assert last_leaf(trajectory).observation == '{"response":"chose to give up and restart"}'


def test_output_without_a_call_becomes_a_format_error_observation():
    trajectory, model, env = solve(["I think the answer is 42.", answer()])
    leaf = trajectory.roots[0].children[0].children[0].children[0]
    assert leaf.observation_code == 1 and env.calls == []
    assert "No function call found (no 'Action:' line)" in json.loads(leaf.observation)["error"]
    assert trajectory.roots[0].children[0].description == "I think the answer is 42."
    assert model.calls[1].messages[-1]["role"] == "function" and trajectory.answered


def test_nothing_a_model_writes_crashes_a_trajectory():
    garbage = ["", "\x00\ufffd" * 50_000, "Action: Finish\nAction Input: [1, 2]", '{"name": 5}',
               "Action: Finish\nAction Input: " + "{" * 5000, "Action: get_word_for_words\nAction Input: null"]
    trajectory, model, _ = solve(garbage, single_chain_max_step=60)
    assert len(model.calls) > len(garbage) and not trajectory.answered
    json.dumps(answer_json(trajectory))  # the answer file is still writable


def test_model_failure_is_recorded_not_raised():
    trajectory, model, _ = solve([call(), RuntimeError("CUDA out of memory")])
    assert trajectory.error == "model call failed: RuntimeError: CUDA out of memory"
    assert len(model.calls) == 2 and not trajectory.valid_data and trajectory.query_count == 2


def test_tool_environment_failure_becomes_an_observation():
    trajectory, _, _ = solve([call(), answer()], env=FakeEnv(fail=True))
    leaf = trajectory.roots[0].children[0].children[0].children[0]
    assert leaf.observation_code == 12 and "Request error: RuntimeError: boom" in leaf.observation
    assert trajectory.answered


def test_chat_models_see_the_plain_system_prompt():
    _, model, _ = solve([answer()], toolllama=False)
    assert model.calls[0].messages[0]["content"] == build_system_message(DESCRIPTIONS)
    assert model.calls[0].functions == FUNCTIONS


def test_wrapped_functions_are_accepted_and_written_bare():
    wrapped = [{"type": "function", "function": f} for f in FUNCTIONS]
    model = ScriptedModel([call(), answer()], REACT_DEFAULT, prompt_tokens=100, completion_tokens=10)
    trajectory = asyncio.run(solve_react("q", wrapped, DESCRIPTIONS, model, FakeEnv()))
    assert trajectory.answered and answer_json(trajectory)["answer_generation"]["function"] == FUNCTIONS


def test_pass_at_two_runs_a_second_try_after_a_failure():
    trajectory, model, _ = solve([give_up(), answer()], pass_at=2)
    data = answer_json(trajectory)
    assert trajectory.method == "CoT@2" and data["try_count"] == 2 and len(model.calls) == 2
    assert [t["win"] for t in data["trys"]] == [False, True] and data["answer_generation"]["valid_data"]


OUTPUT_PIECES = st.sampled_from(["Thought: ", "Action: ", "Action Input: ", "\n", "{", "}", '"', "Finish",
                                 "get_word_for_words", '"return_type": "give_answer"', '"final_answer": "x"', "</s>"])
MODEL_TEXT = st.one_of(st.text(max_size=120), st.lists(OUTPUT_PIECES, max_size=25).map("".join))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MODEL_TEXT, min_size=1, max_size=5))
def test_fuzz_any_model_output_gives_a_writable_answer(outputs):
    trajectory, model, _ = solve(outputs, default="")
    assert trajectory.error is None and trajectory.query_count == len(model.calls) <= 4
    data = json.loads(json.dumps(answer_json(trajectory)))
    assert data["answer_generation"]["valid_data"] == trajectory.answered
