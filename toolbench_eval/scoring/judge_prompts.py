"""What the LLM judge is asked: ToolEval's function schemas (exact) and our prompts (same rubric).

The function names, parameter names, enum values and schema descriptions are StableToolBench's
`tooleval_gpt-3.5-turbo_default/config.yaml` verbatim (typos included), because results and cached
replies must stay comparable. The `reason` field is added the way upstream's `return_reason=True`
adds it. The prompt texts are written for this project: same rules, same inputs, our own words.
"""

from __future__ import annotations

import copy
from typing import Any

PROMPT_VERSION = "toolbench-eval-judge-1"

STATUS_ENUM = ["Unsure", "Unsolved", "Solved"]
_STATUS_DESCRIPTION = "Parse the json answer with layerd nodes and return the answer_status about the answer"

# Upstream schemas (config.yaml), verbatim.
FUNCTION_SCHEMAS: dict[str, dict[str, Any]] = {
    "check_answer_status": {
        "name": "check_answer_status",
        "description": _STATUS_DESCRIPTION,
        "parameters": {
            "type": "object",
            "properties": {"answer_status": {"type": "string", "enum": STATUS_ENUM}},
            "required": ["answer_status"],
        },
    },
    "parse_answer_status": {
        "name": "parse_answer_status",
        "description": _STATUS_DESCRIPTION,
        "parameters": {
            "type": "object",
            "properties": {"answer_status": {"type": "string", "enum": STATUS_ENUM}},
            "required": ["answer_status"],
        },
    },
    "select_better_answer": {
        "name": "select_better_answer",
        "description": (
            "Select the better answer with a comprehensive investigation on given aspects. "
            "You should ignore the impact of the order of candidate answers."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "index": {"type": "number", "description": "The `index` value in the selected better answer."}
            },
            "required": ["index"],
        },
    },
}


def schema_with_reason(name: str) -> dict[str, Any]:
    """The function schema with upstream's required `reason` string appended."""
    schema = copy.deepcopy(FUNCTION_SCHEMAS[name])
    schema["parameters"]["required"].append("reason")
    schema["parameters"]["properties"]["reason"] = {"type": "string", "description": "explain your answer."}
    return schema


CHECK_ANSWER_STATUS = """\
You are grading whether an assistant's final reply settles a user's request.

Request:
{query}

Final reply:
{answer}

Choose `answer_status` by these rules:
1. The reply apologises, declines, says it could not finish, or does not respond directly and \
affirmatively to the request: "Unsolved".
2. The reply responds directly and affirmatively: look closer.
2.1 If the reply by itself is not enough to tell whether the request is settled: "Unsure".
2.2 If you can tell with confidence: "Solved" when it is settled, "Unsolved" when it is not.

Put your explanation in `reason` and call `check_answer_status` with `answer_status`."""

PARSE_ANSWER_STATUS = """\
You are checking an assistant's work on a user's request against the full record of what it did. \
The record is JSON: nested nodes with a `role` and a `message`; a 'tool' node's message holds the \
function name, its arguments and the response that came back.

Request:
{query}

Record:
{answer}

Choose `answer_status` by these rules:
1. Every 'tool' node's response reports an error: "Unsolved".
2. Something in "final_answer" is false or invalid given the responses in the 'tool' nodes: "Unsolved".
3. You cannot establish whether the information is genuine and valid: "Unsure".
4. Some 'tool' nodes are successful calls and those calls really do settle the request: "Solved".

Put your explanation in `reason` and call `parse_answer_status` with `answer_status`."""

SELECT_BETTER_ANSWER = """\
Request:
{query}

Answer_0:
{answer_0}

Answer_1:
{answer_1}

Two attempts at the request above are given as JSON. Follow these rules to pick the better one and \
return its `index` **(0 for Answer_0, 1 for Answer_1)**; the order they are listed in must not matter:
1. First compare their "final_answer" values on:
- Completeness: does it carry everything needed to reply to the request?
- Accuracy: does it describe truthfully what was done and what failed in the end?
- Explanation: when the request was not met, does it give a detailed and correct reason?
2. If that does not decide it, compare their "answer_details" on:
- Wasted calls: the share of tool calls that failed or repeated an earlier call.
- Cost: the total tokens spent during the attempt.
- Progress: how many fixed sub-goals the attempt reached.
- Exploration: how many successful calls with different tools or arguments it tried.

When you have decided, call `select_better_answer`; if you cannot decide, pick either answer."""

PROMPTS = {
    "check_answer_status": CHECK_ANSWER_STATUS,
    "parse_answer_status": PARSE_ANSWER_STATUS,
    "select_better_answer": SELECT_BETTER_ANSWER,
}


def render(name: str, **fields: str) -> str:
    """Fill a prompt. Uses `str.replace` on named slots so braces inside answers stay literal."""
    text = PROMPTS[name]
    for key, value in fields.items():
        text = text.replace("{" + key + "}", value)
    return text
