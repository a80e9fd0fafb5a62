"""Native function calling for in-process models: render `tools` with the model's own chat template, parse its
tool calls back out of the generated text.

The `hf` and `vllm` engines serve `tool_format=native` with this: the conversation (as the reasoner records it,
OpenAI style) goes through `tokenizer.apply_chat_template(..., tools=...)`, the engine generates as usual (so
Attention Buckets and the prefix cache apply), and a parser chosen by model family turns the text into an
assistant message with `tool_calls`:

| family | what the model writes | models |
|---|---|---|
| `hermes` | `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, one block per call | Qwen2.5/Qwen3, Hermes |
| `llama3_json` | a JSON object `{"name": ..., "parameters": {...}}` (optionally after `<\\|python_tag\\|>`), calls separated by `;` | Llama-3.1/3.2/3.3 |
| `mistral` | `[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]` | Mistral, Mixtral |

`tool_parser=auto` (the default) picks the family from the chat template's own text.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from typing import Any

from toolbench_eval.errors import UserError

FAMILIES = ("hermes", "llama3_json", "mistral")
_HERMES_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


def load_chat_template(path: str) -> str:
    """`--model-args chat_template=FILE`: a Jinja chat template for a checkpoint whose own has no tool calling."""
    from pathlib import Path

    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as error:
        raise UserError(f"chat_template={path}: cannot read the template ({error.strerror or error})") from None


def detect_family(template: str | None) -> str:
    """The tool-call family a chat template teaches (see the module table).

    >>> detect_family("... <tool_call> ..."), detect_family("... [TOOL_CALLS] ..."), detect_family("<|python_tag|>")
    ('hermes', 'mistral', 'llama3_json')
    """
    text = template or ""
    if "<tool_call>" in text:
        return "hermes"
    if "[TOOL_CALLS]" in text:
        return "mistral"
    if "<|python_tag|>" in text or "ipython" in text or '"parameters"' in text:
        return "llama3_json"
    raise UserError("tool_format=native: the model's chat template shows no tool-call format this engine can "
                    f"parse; pass tool_parser= one of {list(FAMILIES)}, or use tool_format=react")


def template_messages(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The recorded conversation in the shape chat templates expect: no `None` fields or bookkeeping keys,
    tool-call arguments as objects (templates write them with `tojson`)."""
    shaped = []
    for message in messages:
        out = {key: value for key, value in message.items()
               if value is not None and key in ("role", "content", "tool_calls", "name", "tool_call_id")}
        if out.get("role") == "assistant" and "content" not in out:
            out["content"] = ""
        if out.get("tool_calls"):
            calls = []
            for call in out["tool_calls"]:
                function = dict(call.get("function") or {})
                arguments = function.get("arguments")
                if isinstance(arguments, str):
                    try:
                        parsed = json.loads(arguments)
                    except ValueError:
                        parsed = None
                    function["arguments"] = parsed if isinstance(parsed, dict) else arguments
                calls.append({"id": call.get("id"), "type": "function", "function": function})
            out["tool_calls"] = calls
        shaped.append(out)
    return shaped


def render_with_tools(tokenizer: Any, messages: Sequence[dict[str, Any]], tools: list[dict[str, Any]]) -> str:
    """The prompt for a native turn: the model's chat template with `tools`; refused when the template ignores
    them (the model would never see its functions)."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise UserError("tool_format=native: the tokenizer has no chat template; use tool_format=react")
    shaped = template_messages(messages)
    try:
        with_tools = tokenizer.apply_chat_template(shaped, tools=tools, add_generation_prompt=True, tokenize=False)
        without = tokenizer.apply_chat_template(shaped, add_generation_prompt=True, tokenize=False)
    except Exception as error:  # noqa: BLE001 (jinja2 raise_exception: e.g. Llama-3.1 takes one call per turn)
        raise UserError(f"tool_format=native: the model's chat template refused this conversation: {error}") from None
    if tools and with_tools == without:
        raise UserError("tool_format=native: the model's chat template ignores `tools`; use tool_format=react "
                        "(ReAct text, functions in the system prompt)")
    return with_tools


def _call_object(value: Any) -> tuple[str, str] | None:
    """(name, arguments JSON text) of a call object, or None when it is not one."""
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None
    arguments = value.get("arguments", value.get("parameters", {}))
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return value["name"], arguments


def _json_values(text: str) -> list[Any]:
    """Consecutive JSON values in `text` (separated by whitespace or `;`); stops at the first non-JSON."""
    decoder, values, index = json.JSONDecoder(), [], 0
    while True:
        while index < len(text) and text[index] in " \t\r\n;":
            index += 1
        if index >= len(text):
            return values
        try:
            value, index = decoder.raw_decode(text, index)
        except ValueError:
            return values
        values.append(value)


def parse_tool_calls(text: str, family: str) -> tuple[str | None, list[tuple[str, str]]]:
    """(content, [(name, arguments), ...]) of a generated turn; text that is no call stays content.

    >>> parse_tool_calls('Let me look.\\n<tool_call>\\n{"name": "f", "arguments": {"q": 1}}\\n</tool_call>', "hermes")
    ('Let me look.', [('f', '{"q": 1}')])
    >>> parse_tool_calls('<|python_tag|>{"name": "f", "parameters": {}}; {"name": "g", "parameters": {"a": 2}}',
    ...                  "llama3_json")
    (None, [('f', '{}'), ('g', '{"a": 2}')])
    >>> parse_tool_calls('[TOOL_CALLS][{"name": "f", "arguments": {"x": "y"}}]', "mistral")
    (None, [('f', '{"x": "y"}')])
    >>> parse_tool_calls("Just an answer.", "hermes")
    ('Just an answer.', [])
    """
    calls: list[tuple[str, str]] = []
    if family == "hermes":
        for block in _HERMES_BLOCK.findall(text):
            for value in _json_values(block):
                call = _call_object(value)
                if call is not None:
                    calls.append(call)
        content = _HERMES_BLOCK.sub("", text).strip() if calls else text.strip()
    elif family == "mistral":
        head, marker, tail = text.partition("[TOOL_CALLS]")
        for value in _json_values(tail) if marker else []:
            for item in value if isinstance(value, list) else [value]:
                call = _call_object(item)
                if call is not None:
                    calls.append(call)
        content = head.strip() if calls else text.strip()
    elif family == "llama3_json":
        body = text.replace("<|python_tag|>", "").strip()
        values = _json_values(body) if body.startswith("{") else []
        calls = [call for call in (_call_object(value) for value in values) if call is not None]
        content = None if calls else text.strip()
    else:
        raise UserError(f"tool_parser={family!r} is not one of {list(FAMILIES)}")
    return (content or None), calls


# How each family opens and closes one call, and names its arguments (for constrained decoding).
_CALL_SHAPES = {
    "hermes": ('<tool_call>\n{"name": ', '}\n</tool_call>', "arguments"),
    "llama3_json": ('{"name": ', "}", "parameters"),
    "mistral": ('[TOOL_CALLS] [{"name": ', "}]", "arguments"),
}


def native_call_grammar(tools: Sequence[dict[str, Any]], level: str, family: str) -> str | None:
    """The Lark grammar (llguidance dialect) of one native call in `family`'s format, for `decoding.constrain`:
    `names` = a listed function and a JSON object; `arguments` = also only its declared parameters, the required
    ones present (`reasoning.action_grammar.arguments_schema`). A constrained turn is one call, no content.

    >>> grammar = native_call_grammar([{"type": "function", "function": {"name": "f"}}], "names", "llama3_json")
    >>> grammar.splitlines()[0]
    'start: "{\\\\"name\\\\": " call "}"'
    """
    from reasoning.action_grammar import JSON_LAYOUT, arguments_schema, check_level

    if check_level(level) == "off":
        return None
    opening, closing, key = _CALL_SHAPES[family]
    functions = [tool.get("function", tool) for tool in tools]
    alternatives, rules = [], []
    for index, function in enumerate(f for f in functions if f.get("name")):
        schema = arguments_schema(function) if level == "arguments" else {"type": "object"}
        schema["x-guidance"] = JSON_LAYOUT
        alternatives.append(f"{json.dumps(json.dumps(function['name']) + f', {json.dumps(key)}: ')} args{index}")
        rules.append(f"args{index}: %json {json.dumps(schema)}")
    return "\n".join([f"start: {json.dumps(opening)} call {json.dumps(closing)}",
                      "call: " + " | ".join(alternatives), *rules])


async def chat_through_template(engine: Any, messages: Sequence[dict[str, Any]], tools: list[dict[str, Any]],
                                params: Any, tool_parser: str, constrain: str = "off") -> Any:
    """`Engine.chat` for an in-process engine: render with the chat template and `tools`, generate with the
    engine's own `generate` (buckets, prefix cache and all), parse the calls. Stop strings of the text path do
    not apply: the turn ends at the model's end of turn. `constrain` (names, arguments) decodes inside
    `native_call_grammar`."""
    import dataclasses

    from toolbench_eval.engines.base import ChatReply

    prompt = render_with_tools(engine.tokenizer, messages, tools)
    family = detect_family(engine.tokenizer.chat_template) if tool_parser == "auto" else tool_parser
    if family not in FAMILIES:
        raise UserError(f"tool_parser={tool_parser!r} is not one of auto, {', '.join(FAMILIES)}")
    grammar = native_call_grammar(tools, constrain, family) if constrain != "off" else params.grammar
    [completion] = await engine.generate([prompt], dataclasses.replace(params, stop=(), grammar=grammar))
    rng = random.Random(f"{params.seed}/{len(prompt)}/{prompt[-200:]}")
    return ChatReply(assistant_turn(completion.text, family, rng), completion.prompt_tokens,
                     completion.completion_tokens, completion.bucket_weights)


def assistant_turn(text: str, family: str, rng: random.Random) -> dict[str, Any]:
    """The assistant message of a generated turn, in the same form as the `openai` engine's (`content, refusal,
    role, function_call, tool_calls`), with fresh `call_<8 characters>` ids."""
    from reasoning.expansion import new_call_id
    from toolbench_eval.engines.base import assistant_message

    content, calls = parse_tool_calls(text, family)
    return assistant_message({"content": content, "tool_calls": [
        {"id": new_call_id(rng), "function": {"arguments": arguments, "name": name}} for name, arguments in calls]})
