"""Prompt texts and renderings against StableToolBench's exact strings."""

from __future__ import annotations

import json

import pytest

from reasoning.prompts import (
    DIVERSITY_PROMPT,
    FORMAT_INSTRUCTIONS_SYSTEM_FUNCTION,
    bare_functions,
    build_system_message,
    build_task_description,
    build_user_message,
    initial_messages,
    process_system_message,
    render_chat_template,
    render_toolllama_prompt,
)

# The system message of StableToolBench's published answer file
# data_example/answer/virtual_chatgpt_cot/G1_instruction/1073_CoT@1.json (train_messages[0][0].content).
UPSTREAM_SYSTEM_1073 = json.loads(
    '"You are AutoGPT, you can use many tools(functions) to do the following task.\\nFirst I will give you the task '
    'description, and your task start.\\nAt each step, you need to give your thought to analyze the status now and '
    'what to do next, with a function call to actually excute your step.\\nAfter the call, you will get the call '
    'result, and you are now in a new state.\\nThen you will analyze your status now, then decide what to do next...'
    '\\nAfter many (Thought-call) pairs, you finally perform the task, then you can give your finial answer.\\n'
    'Remember: \\n1.the state change is irreversible, you can\'t go back to one of the former state, if you want to '
    'restart the task, say \\"I give up and restart\\".\\n2.All the thought is short, at most in 5 sentence.\\n'
    '3.You can do more then one trys, so if your plan is to continusly try some conditions, you can do one of the '
    'conditions per try.\\nLet\'s Begin!\\nTask description: You should use functions to help handle the real time '
    'user querys. Remember:\\n1.ALWAYS call \\"Finish\\" function at the end of the task. And the final answer '
    'should contain enough information to show to the user,If you can\'t handle the task, or you find that function '
    'calls always fail(the function is not valid now), use function Finish->give_up_and_restart.\\n2.Do not use '
    'origin tool names, use only subfunctions\' names.\\nYou have access of the following tools:\\n'
    '1.keyword_analysis: Get main keywords for query, similar queries and related domains for query.\\n"')
UPSTREAM_USER_1073 = ("\nI want to plan a surprise birthday party for my friend. Can you suggest popular sites and main "
                      "keywords for the search query 'birthday party ideas'? I want to gather inspiration and plan a "
                      "memorable event.\nBegin!\n")

FUNCTIONS = [
    {"name": "get_word_for_words", "description": "This is the subfunction for tool \"words\".",
     "parameters": {"type": "object", "properties": {"n": {"type": "integer", "description": "length"}},
                    "required": ["n"], "optional": []}},
    {"name": "Finish", "description": "Finish it.", "parameters": {"type": "object", "properties": {}}},
]


def test_system_message_matches_the_published_answer_file_byte_for_byte():
    system = build_system_message(
        [("keyword_analysis", "Get main keywords for query, similar queries and related domains for query.")])
    assert system == UPSTREAM_SYSTEM_1073


def test_system_prompt_keeps_upstream_typos_and_trailing_space():
    for fragment in ("actually excute your step.", "your finial answer.", "Remember: \n1.the state change",
                     "more then one trys", "Task description: {task_description}"):
        assert fragment in FORMAT_INSTRUCTIONS_SYSTEM_FUNCTION
    assert "4. Provide one, single Thought" not in FORMAT_INSTRUCTIONS_SYSTEM_FUNCTION  # a fork's edit, not upstream


def test_user_message_matches_upstream():
    query = ("I want to plan a surprise birthday party for my friend. Can you suggest popular sites and main keywords "
             "for the search query 'birthday party ideas'? I want to gather inspiration and plan a memorable event.")
    assert build_user_message(query) == UPSTREAM_USER_1073
    assert build_user_message("q") == "\nq\nBegin!\n"


def test_task_description_cuts_at_512_then_removes_newlines_and_dedupes_tools():
    long = "a\n" * 300  # 600 characters: the cut keeps 512 characters (256 "a"), then newlines go
    text = build_task_description([("t1", long), ("t2", ""), ("t1", "second value"), ("t3", None)])
    lines = text.splitlines()
    assert lines[-3:] == ["1.t1: second value", "2.t2: None", "3.t3: None"]  # first position, last value
    text = build_task_description([("t1", long)])
    assert text.splitlines()[-1] == "1.t1: " + "a" * 256
    assert text.endswith("\n")
    assert build_task_description([("t", "  padded  ")]).endswith("1.t: padded\n")


def test_process_system_message_inserts_the_format_hint_and_the_python_repr_of_functions():
    system = build_system_message([("words", "Words")])
    augmented = process_system_message(system, FUNCTIONS)
    assert ("with a function call to actually excute your step. Your output should follow this format:\n"
            "Thought:\nAction\nAction Input:\n\nAfter the call") in augmented
    assert augmented.endswith("\nSpecifically, you have access to the following APIs: " + str(FUNCTIONS))
    assert "[{'name': 'get_word_for_words', 'description': 'This is the subfunction for tool \"words\".'" in augmented
    wrapped = [{"type": "function", "function": f} for f in FUNCTIONS]
    assert process_system_message(system, wrapped) == augmented  # STB passes [tool['function'] for tool in tools]


def test_process_system_message_rejects_a_foreign_system_prompt():
    with pytest.raises(ValueError, match="excute your step"):
        process_system_message("You are a helpful assistant.", FUNCTIONS)


def test_initial_messages_for_toolllama_and_for_chat_models():
    toolllama = initial_messages("q", [("words", "Words")], FUNCTIONS, toolllama=True)
    plain = initial_messages("q", [("words", "Words")], FUNCTIONS, toolllama=False)
    assert [m["role"] for m in toolllama] == ["system", "user"]
    assert plain[0]["content"] == build_system_message([("words", "Words")])
    assert toolllama[0]["content"] == process_system_message(plain[0]["content"], FUNCTIONS)
    assert toolllama[1] == plain[1] == {"role": "user", "content": "\nq\nBegin!\n"}


def test_toolllama_rendering_roles_and_generation_cue():
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "\nQ\nBegin!\n"},
        {"role": "assistant", "content": "Thought: t\nAction: f\nAction Input: {}", "function_call": {"name": "f"}},
        {"role": "function", "name": "f", "content": '{"error": ""}'},
        {"role": "user", "content": "diverse", "valid": False},
        {"role": "tool", "name": "g", "content": "obs", "tool_call_id": "x"},
    ]
    prompt = render_toolllama_prompt(messages)
    assert prompt == ("System: S\nUser: \nQ\nBegin!\n\nAssistant:\nThought: t\nAction: f\nAction Input: {}\n"
                      'Function: {"error": ""}\nUser: diverse\nFunction: obs\nAssistant:\n')
    upstream = render_toolllama_prompt(messages, assistant_layout="space")
    assert "\nAssistant: Thought: t\nAction: f" in upstream and upstream.endswith("Function: obs\nAssistant:\n")
    assert render_toolllama_prompt([]) == "Assistant:\n"
    assert render_toolllama_prompt([{"role": "assistant", "content": None}]) == "Assistant:\n\nAssistant:\n"


def test_toolllama_prompt_is_prefix_stable_across_turns():
    history = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    prompt = render_toolllama_prompt(history)
    model_text = "Thought: t\nAction: f\nAction Input: {}"
    history += [{"role": "assistant", "content": model_text}, {"role": "function", "content": "obs"}]
    assert render_toolllama_prompt(history).startswith(prompt + model_text)


def test_bare_functions_unwraps_openai_tools_only():
    assert bare_functions([{"type": "function", "function": {"name": "a"}}, {"name": "b", "type": "x"}]) == [
        {"name": "a"}, {"name": "b", "type": "x"}]


def test_diversity_prompt_text():
    assert DIVERSITY_PROMPT.startswith("This is not the first time you try this task, all previous trails failed.\n")
    assert "Here are some previous actions candidates:\n{previous_candidate}\nRemember you are now" in DIVERSITY_PROMPT


# --- chat templates --------------------------------------------------------------------------------------------

TOOLS_TEMPLATE = (
    "{% if tools %}<tools>{{ tools | tojson }}</tools>\n{% endif %}"
    "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}")
NO_TOOLS_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}")
STRICT_TEMPLATE = (  # only user/assistant, alternating, as Llama-2-style templates demand
    "{% for m in messages %}"
    "{% if m['role'] not in ['user', 'assistant'] %}{{ raise_exception('bad role') }}{% endif %}"
    "{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('must alternate') }}{% endif %}"
    "[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}[assistant] {% endif %}")


def make_tokenizer(template: str):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]")))
    tokenizer.chat_template = template
    return tokenizer


CHAT = [
    {"role": "system", "content": "SYS"},
    {"role": "user", "content": "Q"},
    {"role": "assistant", "content": "Thought: t\nAction: get_word_for_words\nAction Input: {}",
     "function_call": {"name": "get_word_for_words", "arguments": "{}"}},
    {"role": "function", "name": "get_word_for_words", "content": "OBS"},
]


def test_chat_template_passes_tools_when_the_template_uses_them():
    prompt = render_chat_template(make_tokenizer(TOOLS_TEMPLATE), CHAT, FUNCTIONS)
    assert prompt.startswith("<tools>") and '"name": "get_word_for_words"' in prompt
    assert "<tool>OBS</tool>" in prompt and prompt.endswith("<assistant>")
    assert prompt.count("get_word_for_words") >= 2


def test_chat_template_that_ignores_tools_gets_the_functions_in_the_system_message():
    prompt = render_chat_template(make_tokenizer(NO_TOOLS_TEMPLATE), CHAT, FUNCTIONS)
    system = prompt.split("</system>")[0]
    assert system.startswith("<system>SYS\nYour output should follow this format:\nThought:\nAction\nAction Input:\n")
    assert system.endswith("Specifically, you have access to the following APIs: " + str(FUNCTIONS))
    assert prompt.endswith("<assistant>")
    # With our own system prompt, the model gets exactly ToolLLaMA's augmentation.
    ours = initial_messages("q", [("words", "Words")], FUNCTIONS, toolllama=False)
    prompt = render_chat_template(make_tokenizer(NO_TOOLS_TEMPLATE), ours, FUNCTIONS)
    assert prompt.startswith("<system>" + process_system_message(ours[0]["content"], FUNCTIONS) + "</system>")


def test_chat_template_with_strict_roles_folds_system_and_function_turns_into_user_turns():
    prompt = render_chat_template(make_tokenizer(STRICT_TEMPLATE), CHAT, FUNCTIONS)
    assert prompt.startswith("[user] SYS")
    assert "[user] Function: OBS" in prompt and prompt.endswith("[assistant] ")
    assert "'name': 'get_word_for_words'" in prompt.split("[assistant]")[0]  # tools ignored: first turn lists them
