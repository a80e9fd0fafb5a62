"""Parsing a model's ReAct output (`Thought: / Action: / Action Input:`) into one step.

Upstream's `react_parser` slices the text with `str.find` and never checks anything, so a missing
marker silently yields a garbage slice. This parser never raises: it returns a `ParsedStep` or a
`ParseFailure` the reasoner turns into an observation. It tolerates what small models write: a
leading newline, `Thought:` without a space, end-of-sequence markers (`</s>`, `<|im_end|>`, ...) and
text after them, extra text after the Action Input JSON object (the first balanced object is taken),
backticks or quotes around the action name, and an OpenAI-style `{"name": ..., "arguments": ...}`
call (optionally in `<tool_call>` tags) when no `Action:` line is present.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# End-of-sequence texts a decoder may leave in its output; everything from the first one on is dropped.
EOS_MARKERS = ("</s>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|end_of_text|>")

_THOUGHT = re.compile(r"Thought\s*:[ \t]*")
# `Action:` at a line start, else anywhere after whitespace (`Action Input:` never matches: no colon after "Action").
_ACTION_LINE = re.compile(r"(?m)^[ \t]*Action[ \t]*:")
_ACTION_ANYWHERE = re.compile(r"(?<!\S)Action[ \t]*:")
_ACTION_INPUT = re.compile(r"Action[ \t]*Input[ \t]*:[ \t]*")
_NAME_CHARS = re.compile(r"[A-Za-z0-9_\-.]+")


@dataclass(frozen=True)
class ParsedStep:
    """One decision: the thought (may be empty), the function name and its raw argument text."""

    thought: str
    action: str
    action_input: str


@dataclass(frozen=True)
class ParseFailure:
    """Why the text is not a step, and the text itself."""

    reason: str
    raw: str


def clean_model_text(text: object) -> str:
    """The model's text without end-of-sequence markers (and what follows them) or trailing space.

    >>> clean_model_text("Thought: x\\nAction: f</s> junk")
    'Thought: x\\nAction: f'
    """
    return assistant_text(text, "rstrip")


def first_json_object(text: str) -> str | None:
    """The first balanced `{...}` in `text` (string-aware), or None when there is none or it never closes.

    >>> first_json_object('x {"a": "}", "b": {"c": 1}} trailing {')
    '{"a": "}", "b": {"c": 1}}'
    """
    start = text.find("{")
    if start == -1:
        return None
    depth = 0
    in_string = False
    escaped = False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start:index + 1]
    return None


def _clean_action_name(line: str) -> str:
    """`Action: `get_x`.` -> `get_x`: the first name-like token of the line."""
    match = _NAME_CHARS.search(line.strip().strip("`'\"*"))
    return match.group(0).rstrip(".-") if match else ""


def _action_input_text(rest: str) -> str:
    """The argument text after `Action Input:`: the first balanced JSON object when one starts there,
    else the text as written (the step reports it as unparseable)."""
    stripped = rest.strip()
    if stripped.startswith("{") or (stripped.startswith("```") and "{" in stripped):
        found = first_json_object(stripped)
        if found is not None:
            return found
    return stripped


def _parse_json_call(text: str) -> ParsedStep | None:
    """An OpenAI-style call object (`{"name": ..., "arguments": ...}`), e.g. inside `<tool_call>` tags."""
    search_from = 0
    while True:
        start = text.find("{", search_from)
        if start == -1:
            return None
        candidate = first_json_object(text[start:])
        if candidate is None:
            return None
        try:
            value = json.loads(candidate, strict=False)
        except ValueError:
            value = None
        if isinstance(value, dict) and isinstance(value.get("name"), str) and value["name"].strip():
            arguments = value.get("arguments", value.get("parameters", {}))
            if not isinstance(arguments, str):
                arguments = json.dumps(arguments, ensure_ascii=False)
            thought = text[:start].replace("<tool_call>", "").strip()
            thought = _THOUGHT.sub("", thought, count=1).strip() if thought.startswith("Thought") else thought
            return ParsedStep(thought=thought, action=value["name"].strip(), action_input=arguments)
        search_from = start + 1


def _parse(text: str) -> ParsedStep | ParseFailure:
    text = clean_model_text(text)
    if not text.strip():
        return ParseFailure("empty output", text)
    action = _ACTION_LINE.search(text) or _ACTION_ANYWHERE.search(text)
    if action is None:
        call = _parse_json_call(text)
        if call is not None:
            return call
        return ParseFailure("no 'Action:' line", text)

    before = text[:action.start()]
    thought_match = _THOUGHT.search(before)
    thought = before[thought_match.end():] if thought_match else before
    after = text[action.end():]
    action_input = _ACTION_INPUT.search(after)
    if action_input is not None:
        name_text = after[:action_input.start()]
        input_text = _action_input_text(after[action_input.end():])
    else:
        # No `Action Input:` marker: accept a JSON object that follows the action line.
        newline = after.find("\n")
        name_text = after if newline == -1 else after[:newline]
        tail = "" if newline == -1 else after[newline + 1:]
        input_text = first_json_object(tail) or ""
    name = _clean_action_name(name_text)
    if not name:
        return ParseFailure("empty action name after 'Action:'", text)
    return ParsedStep(thought=thought.strip(), action=name, action_input=input_text)


def parse_react_output(text: str) -> ParsedStep | ParseFailure:
    """Parse one model output; never raises.

    >>> parse_react_output("\\nThought:I need words\\nAction: get_word_for_words\\nAction Input: {\\"n\\": 3} ok</s>")
    ParsedStep(thought='I need words', action='get_word_for_words', action_input='{"n": 3}')
    >>> parse_react_output("Sure! Here is the answer.")
    ParseFailure(reason="no 'Action:' line", raw='Sure! Here is the answer.')
    """
    try:
        return _parse(text)
    except Exception as error:  # noqa: BLE001  (defensive: model output is data, a parser bug must not end a trajectory)
        return ParseFailure(f"unparseable output ({type(error).__name__})", clean_model_text(text))


def parse_find_slices(text: str) -> ParsedStep:
    """Upstream's `react_parser` (`toolbench/inference/utils.py`), for the `stabletoolbench` protocol: three
    `str.find` slices, no checks, always one call. A missing marker gives what upstream gives: slices from
    index -1 + len(marker) and up to index -1 (the last character lost).

    >>> parse_find_slices("Thought: t\\nAction: f\\nAction Input: {}")
    ParsedStep(thought='t', action='f', action_input='{}')
    >>> parse_find_slices("Thought: t\\nAction: get_x")  # no Action Input: the name loses its last character
    ParsedStep(thought='t', action='get_', action_input='tion: get_x')
    """
    thought = text[text.find("Thought: ") + len("Thought: "):text.find("\nAction: ")]
    action = text[text.find("Action: ") + len("Action: "):text.find("\nAction Input: ")]
    action_input = text[text.find("Action Input: ") + len("Action Input: "):]
    return ParsedStep(thought=thought, action=action, action_input=action_input)


def assistant_text(raw: object, mode: str) -> str:
    """The model's turn as it is kept (prompt history, messages, answer file), by the protocol's
    `assistant_content`: `strip` is upstream's HF ToolLLaMA client (cut at the last `</s>`, then `strip()`),
    `raw` its vLLM client (the completion as the server returned it), `rstrip` ours (cut at the first
    end-of-sequence marker of any model family, then `rstrip()`).

    >>> assistant_text(" Thought: t</s>x", "strip"), assistant_text(" Thought: t\\n", "raw")
    ('Thought: t', ' Thought: t\\n')
    >>> assistant_text("Thought: t<|im_end|>x \\n", "rstrip")
    'Thought: t'
    """
    if not isinstance(raw, str):
        raw = "" if raw is None else str(raw)
    if mode == "raw":
        return raw
    if mode == "strip":
        position = raw.rfind("</s>")
        return (raw if position == -1 else raw[:position]).strip()
    cut = len(raw)
    for marker in EOS_MARKERS:
        position = raw.find(marker)
        if position != -1:
            cut = min(cut, position)
    return raw[:cut].rstrip()


def match_function_name(name: str, function_names: list[str], *, suffix_match: bool = False) -> str | None:
    """The function `name` refers to: exact match only by default. With `suffix_match=True`, upstream
    `_step`'s rule: the first function, in list order, whose name ends with `name` (so an empty name
    matches the first function, and a name that another function also ends with may pick that one).

    >>> match_function_name("word_for_words", ["get_word_for_words"]) is None
    True
    >>> match_function_name("word_for_words", ["get_word_for_words"], suffix_match=True)
    'get_word_for_words'
    >>> match_function_name("a_for_x", ["ba_for_x", "a_for_x"], suffix_match=True)
    'ba_for_x'
    """
    if suffix_match:
        for candidate in function_names:
            if candidate.endswith(name):
                return candidate
        return None
    return name if name in function_names else None
