"""The ReAct output parser: what small models write, and fuzzing (it must never raise)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from reasoning.parser import (
    ParsedStep,
    ParseFailure,
    clean_model_text,
    first_json_object,
    match_function_name,
    parse_react_output,
)


def test_canonical_toolllama_output():
    step = parse_react_output('Thought: I need a word.\nAction: get_word_for_words\nAction Input: {"length": 5}')
    assert step == ParsedStep("I need a word.", "get_word_for_words", '{"length": 5}')


def test_leading_newline_and_thought_without_space():
    step = parse_react_output('\nThought:short\nAction: f\nAction Input: {}')
    assert step == ParsedStep("short", "f", "{}")


def test_eos_markers_and_text_after_them_are_dropped():
    for eos in ("</s>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>"):
        step = parse_react_output(f'Thought: t\nAction: f\nAction Input: {{"a": 1}}{eos}\nUser: more')
        assert step == ParsedStep("t", "f", '{"a": 1}'), eos


def test_first_balanced_json_object_is_taken_after_action_input():
    text = ('Thought: t\nAction: f\nAction Input: {"q": "a } brace", "nested": {"x": [1, 2]}}\n'
            'Observation: {"made": "up"}\nThought: more')
    assert parse_react_output(text).action_input == '{"q": "a } brace", "nested": {"x": [1, 2]}}'


def test_unclosed_or_non_json_arguments_are_kept_raw_for_the_step_to_report():
    assert parse_react_output('Action: f\nAction Input: {"q": "never closed').action_input == '{"q": "never closed'
    assert parse_react_output("Action: f\nAction Input: q=cats").action_input == "q=cats"


def test_action_name_is_cleaned_of_quotes_backticks_and_trailing_words():
    assert parse_react_output("Thought: t\nAction: `get_x_for_y`.\nAction Input: {}").action == "get_x_for_y"
    assert parse_react_output('Action: "Finish" now\nAction Input: {}').action == "Finish"


def test_missing_action_input_marker_uses_a_following_json_object():
    step = parse_react_output('Thought: t\nAction: f\n{"a": 2}')
    assert step == ParsedStep("t", "f", '{"a": 2}')
    assert parse_react_output("Thought: t\nAction: f").action_input == ""


def test_text_without_thought_marker_keeps_the_preamble_as_thought():
    step = parse_react_output("I will search.\nAction: f\nAction Input: {}")
    assert step == ParsedStep("I will search.", "f", "{}")


def test_openai_style_call_json_is_accepted_without_action_line():
    step = parse_react_output('<tool_call>\n{"name": "f", "arguments": {"q": "x"}}\n</tool_call>')
    assert step == ParsedStep("", "f", '{"q": "x"}')
    step = parse_react_output('Let me look. {"name": "f", "arguments": "{\\"q\\": 1}"}')
    assert step == ParsedStep("Let me look.", "f", '{"q": 1}')


def test_failures_are_structured():
    assert parse_react_output("") == ParseFailure("empty output", "")
    assert parse_react_output("</s>") == ParseFailure("empty output", "")
    failure = parse_react_output("The answer is 42.")
    assert isinstance(failure, ParseFailure) and failure.reason == "no 'Action:' line"
    failure = parse_react_output("Thought: t\nAction: \nAction Input: {}")
    assert isinstance(failure, ParseFailure) and "empty action name" in failure.reason


def test_non_string_input_does_not_raise():
    assert isinstance(parse_react_output(None), ParseFailure)  # type: ignore[arg-type]
    assert isinstance(parse_react_output(12345), ParseFailure)  # type: ignore[arg-type]


def test_huge_output_is_parsed():
    text = "Thought: " + "x" * 200_000 + '\nAction: f\nAction Input: {"a": "' + "y" * 200_000 + '"}'
    step = parse_react_output(text)
    assert isinstance(step, ParsedStep) and step.action == "f" and len(step.action_input) == 200_009


def test_clean_model_text_and_first_json_object():
    assert clean_model_text("abc  \n</s>zzz") == "abc"
    assert clean_model_text(None) == ""
    assert first_json_object('pre {"a": "\\"}"} post') == '{"a": "\\"}"}'
    assert first_json_object("{ never") is None
    assert first_json_object("none") is None


def test_function_name_matching_is_exact_by_default():
    names = ["get_word_for_words", "random_word_for_words"]
    assert match_function_name("get_word_for_words", names) == "get_word_for_words"
    assert match_function_name("word_for_words", names) is None
    assert match_function_name("", names) is None
    assert match_function_name("Get_word_for_words", names) is None


def test_upstream_suffix_matching_behind_the_flag():
    names = ["get_word_for_words", "random_word_for_words"]
    assert match_function_name("word_for_words", names, suffix_match=True) == "get_word_for_words"
    assert match_function_name("", names, suffix_match=True) == "get_word_for_words"  # upstream's endswith("")
    assert match_function_name("nothing", names, suffix_match=True) is None


REACT_PIECES = st.sampled_from(["Thought:", "Thought: ", "Action:", "Action: ", "Action Input:", "Action Input: ",
                                "\n", "{", "}", '"', "\\", "</s>", "<tool_call>", '{"name": "f"}', "Finish", " "])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_fuzz_random_text_never_raises(text):
    result = parse_react_output(text)
    assert isinstance(result, (ParsedStep, ParseFailure))
    if isinstance(result, ParsedStep):
        assert result.action  # a step always names a function


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(REACT_PIECES, st.text(max_size=20)), max_size=40).map("".join))
def test_fuzz_react_like_text_never_raises(text):
    result = parse_react_output(text)
    assert isinstance(result, (ParsedStep, ParseFailure))
    if isinstance(result, ParsedStep):
        assert result.action and "\n" not in result.action
