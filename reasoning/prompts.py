"""Prompt texts and prompt rendering, as StableToolBench builds them.

The constant texts are compatibility data copied verbatim from upstream (typos included:
"excute", "finial", "trys", "querys", "trails"); ToolLLaMA was trained on exactly these strings.

Where they come from (StableToolBench / ToolBench):
- `FORMAT_INSTRUCTIONS_SYSTEM_FUNCTION`, `FORMAT_INSTRUCTIONS_USER_FUNCTION`:
  `toolbench/inference/Prompts/ReAct_prompts.py` (the text in StableToolBench's published answer files).
- `TASK_DESCRIPTION_HEADER` and the numbered tool list: `rapidapi_wrapper.__init__`.
- `DIVERSITY_PROMPT`: `toolbench/inference/Prompts/Tree_search_prompts.py`.
- `process_system_message`: `toolbench/utils.py`.
- The `Role: content` layout: `toolbench/inference/LLM/tool_llama_model.py` (`ToolLLaMA.parse`).

The protocol's `assistant_layout` decides how a past assistant turn is rendered: `space` is
StableToolBench's `Assistant: <text>\\n`; `newline` (ours) is `Assistant:\\n<the model's own text>\\n`,
the generation cue followed by what the model wrote, which keeps every prompt a prefix of the next one
(KV prefix reuse, and the training layout in `toolbench_eval.training`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

FORMAT_INSTRUCTIONS_SYSTEM_FUNCTION = """You are AutoGPT, you can use many tools(functions) to do the following task.
First I will give you the task description, and your task start.
At each step, you need to give your thought to analyze the status now and what to do next, with a function call to actually excute your step.
After the call, you will get the call result, and you are now in a new state.
Then you will analyze your status now, then decide what to do next...
After many (Thought-call) pairs, you finally perform the task, then you can give your finial answer.
Remember: 
1.the state change is irreversible, you can't go back to one of the former state, if you want to restart the task, say "I give up and restart".
2.All the thought is short, at most in 5 sentence.
3.You can do more then one trys, so if your plan is to continusly try some conditions, you can do one of the conditions per try.
Let's Begin!
Task description: {task_description}"""  # verbatim upstream text ("Remember: " keeps its trailing space)

FORMAT_INSTRUCTIONS_USER_FUNCTION = """
{input_description}
Begin!
"""

TASK_DESCRIPTION_HEADER = """You should use functions to help handle the real time user querys. Remember:
1.ALWAYS call "Finish" function at the end of the task. And the final answer should contain enough information to show to the user,If you can't handle the task, or you find that function calls always fail(the function is not valid now), use function Finish->give_up_and_restart.
2.Do not use origin tool names, use only subfunctions' names.
You have access of the following tools:
"""

DIVERSITY_PROMPT = """This is not the first time you try this task, all previous trails failed.
Before you generate my thought for this state, I will first show you your previous actions for this state, and then you must generate actions that is different from all of them. Here are some previous actions candidates:
{previous_candidate}
Remember you are now in the intermediate state of a trail, you will first analyze the now state and previous action candidates, then make actions that is different from all the previous."""

# `process_system_message` anchors its format hint on this sentence of the system prompt.
SYSTEM_FORMAT_ANCHOR = "with a function call to actually excute your step."
SYSTEM_FORMAT_HINT = " Your output should follow this format:\nThought:\nAction\nAction Input:\n"
SYSTEM_FUNCTIONS_PREFIX = "\nSpecifically, you have access to the following APIs: "

TOOL_DESCRIPTION_MAX_LENGTH = 512

# ToolLLaMA's role names (`tool-llama-single-round` template); `tool` is the newer name of `function`.
TOOLLLAMA_ROLES = {"system": "System", "user": "User", "function": "Function", "tool": "Function",
                   "assistant": "Assistant"}
GENERATION_CUE = "Assistant:\n"


def bare_functions(functions: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Function schemas as bare `{name, description, parameters}` dicts.

    StableToolBench keeps them wrapped as OpenAI tools (`{"type": "function", "function": {...}}`) and
    unwraps them before prompting ToolLLaMA; both forms are accepted here.

    >>> bare_functions([{"type": "function", "function": {"name": "f"}}, {"name": "g"}])
    [{'name': 'f'}, {'name': 'g'}]
    """
    result = []
    for function in functions:
        if isinstance(function, dict) and function.get("type") == "function" and isinstance(
                function.get("function"), dict):
            result.append(function["function"])
        else:
            result.append(function)
    return result


def _prompt_tool_description(description: Any) -> str:
    try:
        text = description[:TOOL_DESCRIPTION_MAX_LENGTH].replace("\n", "").strip()
    except (TypeError, AttributeError):  # upstream: a missing description becomes "None"
        text = ""
    return text or "None"


def build_task_description(tool_descriptions: Sequence[tuple[str, str]]) -> str:
    """The `{task_description}` of the system prompt: the fixed header, then one numbered line per
    distinct tool, `k.<standard_tool_name>: <description>` with the description cut to 512 characters,
    newlines removed and stripped (`"None"` when empty). A repeated tool keeps its first position
    and its last description, as upstream's dict does.

    >>> print(build_task_description([("words", "Random\\nwords"), ("maps", "")]).splitlines()[-2:])
    ['1.words: Randomwords', '2.maps: None']
    """
    unique: dict[str, Any] = {}
    for standard_tool_name, description in tool_descriptions:
        unique[standard_tool_name] = description
    lines = [f"{k}.{name}: {_prompt_tool_description(description)}\n"
             for k, (name, description) in enumerate(unique.items(), start=1)]
    return TASK_DESCRIPTION_HEADER + "".join(lines)


def build_system_message(tool_descriptions: Sequence[tuple[str, str]]) -> str:
    """The system prompt every backbone gets (before any ToolLLaMA augmentation)."""
    return FORMAT_INSTRUCTIONS_SYSTEM_FUNCTION.replace("{task_description}",
                                                       build_task_description(tool_descriptions))


def process_system_message(system: str, functions: list[dict[str, Any]]) -> str:
    """ToolLLaMA's augmentation of the system prompt: a format hint after the anchor sentence, then
    the Python `repr` (not JSON) of the bare function list, exactly as upstream's `str(functions)`.

    >>> text = process_system_message(build_system_message([]), [{"name": "f"}])
    >>> text.endswith("\\nSpecifically, you have access to the following APIs: [{'name': 'f'}]")
    True
    """
    if SYSTEM_FORMAT_ANCHOR not in system:
        raise ValueError(f"system message lacks the sentence {SYSTEM_FORMAT_ANCHOR!r} that ToolLLaMA's "
                         "format hint is anchored on; build it with build_system_message()")
    system = system.replace(SYSTEM_FORMAT_ANCHOR, SYSTEM_FORMAT_ANCHOR + SYSTEM_FORMAT_HINT)
    return system + SYSTEM_FUNCTIONS_PREFIX + str(bare_functions(functions))


def build_user_message(query: str) -> str:
    """`"\\n{query}\\nBegin!\\n"` (upstream `FORMAT_INSTRUCTIONS_USER_FUNCTION`)."""
    return FORMAT_INSTRUCTIONS_USER_FUNCTION.replace("{input_description}", query)


def initial_messages(query_text: str, tool_descriptions: Sequence[tuple[str, str]],
                     functions: list[dict[str, Any]], *, toolllama: bool = True) -> list[dict[str, Any]]:
    """The system and user messages a trajectory starts from.

    With `toolllama=True` the system message carries ToolLLaMA's augmentation (format hint and the
    function list), because the ToolLLaMA layout has no other place for the functions. Otherwise the
    plain system prompt is used and the model client passes the functions as tools.
    """
    system = build_system_message(tool_descriptions)
    if toolllama:
        system = process_system_message(system, functions)
    return [{"role": "system", "content": system}, {"role": "user", "content": build_user_message(query_text)}]


def render_toolllama_prompt(messages: Sequence[dict[str, Any]], *, assistant_layout: str = "newline") -> str:
    """The ToolLLaMA prompt: `Role: content\\n` per message (`function`/`tool` -> `Function`), then
    `Assistant:\\n`. Messages flagged `valid: False` (old diversity prompts) are kept, as ToolLLaMA
    inference keeps them. A past assistant turn shows the model's own text (its `content`, the raw
    output), rendered as `Assistant:\\n<text>\\n` so each prompt is a prefix of the next one
    (`assistant_layout="space"`: `Assistant: <text>\\n` as StableToolBench writes it).

    >>> render_toolllama_prompt([{"role": "system", "content": "S"}, {"role": "user", "content": "Q"},
    ...                          {"role": "assistant", "content": "Thought: t"},
    ...                          {"role": "function", "name": "f", "content": "{}"}])
    'System: S\\nUser: Q\\nAssistant:\\nThought: t\\nFunction: {}\\nAssistant:\\n'
    """
    parts = []
    for message in messages:
        role = TOOLLLAMA_ROLES.get(message.get("role", ""), str(message.get("role", "")).capitalize())
        content = message.get("content")
        content = "" if content is None else str(content)
        if role == "Assistant" and assistant_layout == "newline":
            parts.append(f"{GENERATION_CUE}{content}\n")
        else:
            parts.append(f"{role}: {content}\n")
    return "".join(parts) + GENERATION_CUE


def _as_tools(functions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "function", "function": function} for function in bare_functions(functions)]


def _chat_messages(messages: Sequence[dict[str, Any]], *, tool_role: str) -> list[dict[str, str]]:
    converted = []
    for message in messages:
        role = message.get("role", "user")
        content = message.get("content")
        content = "" if content is None else str(content)
        if role in ("function", "tool"):
            if tool_role == "tool":
                converted.append({"role": "tool", "name": str(message.get("name", "")), "content": content})
                continue
            role, content = "user", f"Function: {content}"
        converted.append({"role": role, "content": content})
    return converted


def _strict_alternation(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """For templates that only know user/assistant turns that alternate: fold the system message
    into the first user turn and merge consecutive turns of one role."""
    merged: list[dict[str, str]] = []
    system = ""
    for message in messages:
        role, content = message["role"], message["content"]
        if role == "system":
            system += content + "\n\n"
            continue
        role = "assistant" if role == "assistant" else "user"
        if merged and merged[-1]["role"] == role:
            merged[-1]["content"] += "\n" + content
        else:
            merged.append({"role": role, "content": content})
    if system:
        if merged and merged[0]["role"] == "user":
            merged[0]["content"] = system + merged[0]["content"]
        else:
            merged.insert(0, {"role": "user", "content": system.rstrip()})
    return merged


def _with_functions_in_system(messages: list[dict[str, str]], functions: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Put the functions (and the ReAct format the parser reads) into the system message: ToolLLaMA's
    own augmentation when the system prompt is ours, else a plain listing."""
    result = [dict(message) for message in messages]
    for message in result:
        if message["role"] == "system":
            if SYSTEM_FORMAT_ANCHOR in message["content"]:
                message["content"] = process_system_message(message["content"], functions)
            else:
                message["content"] += "\n" + _FUNCTION_LISTING + str(bare_functions(functions))
            return result
    return [{"role": "system", "content": _FUNCTION_LISTING + str(bare_functions(functions))}] + result


_FUNCTION_LISTING = ("Your output should follow this format:\nThought:\nAction\nAction Input:\n"
                     "Specifically, you have access to the following APIs: ")


def render_chat_template(tokenizer: Any, messages: Sequence[dict[str, Any]], functions: list[dict[str, Any]]) -> str:
    """A prompt for an instruct model through its own chat template, with the functions as `tools`.

    Robust to templates that ignore `tools` (the system message then gets ToolLLaMA's augmentation,
    format hint and function list, so the model still sees them), that reject `tool` or `system`
    roles (tool results become `Function: ...` user turns; the system prompt folds into the first
    user turn), and that demand strict user/assistant alternation. A model whose template does use
    `tools` may answer with a `<tool_call>` JSON object; `reasoning.parser` reads that too. Invalid (`valid: False`) messages are rendered like the others;
    the reasoner decides what to pass.
    """
    tools = _as_tools(functions)

    def apply(chat: list[dict[str, str]], with_tools: bool) -> str:
        kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": True}
        if with_tools and tools:
            kwargs["tools"] = tools
        return tokenizer.apply_chat_template(chat, **kwargs)

    # (conversation, fold into strict user/assistant alternation?) from the richest shape to the simplest.
    attempts = [
        (_chat_messages(messages, tool_role="tool"), False),
        (_chat_messages(messages, tool_role="user"), False),
        (_chat_messages(messages, tool_role="user"), True),
    ]
    last_error: Exception | None = None
    for chat, strict in attempts:
        try:
            shaped = _strict_alternation(chat) if strict else chat
            with_tools = apply(shaped, True)
            if not tools or with_tools != apply(shaped, False):
                return with_tools
            # The template ignored `tools`: put the schemas where the model will read them.
            augmented = _with_functions_in_system(chat, functions)
            return apply(_strict_alternation(augmented) if strict else augmented, False)
        except Exception as error:  # noqa: BLE001  (jinja2 TemplateError and friends: try a simpler shape)
            last_error = error
    raise ValueError(f"the tokenizer's chat template cannot render this conversation: {last_error}")
