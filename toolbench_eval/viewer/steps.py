"""Answer-file nodes as steps a reader follows: thought, call, arguments, observation, status code.

Answer files store StableToolBench's node chain (`trys[].chain`, ReAct) or node tree (`tree.tree`, DFSDT) with
one node per part of a step (`Thought`, `Action`, `Action Input`). A reader thinks in steps, so this module folds
each Thought -> Action -> Action Input run into one step; where the tree branches, a step has child steps.
"""

from __future__ import annotations

import json
from typing import Any

THOUGHT, ACTION, ACTION_INPUT = "Thought", "Action", "Action Input"
FINISH = "Finish"


def thought_text(description: str, action: str | None) -> str:
    """The thought alone. Under `--protocol stabletoolbench` a Thought node holds the model's whole reply
    ("Thought: ...\\nAction: ...\\nAction Input: ..."); the call is shown in its own fields, so cut it here."""
    text = description
    if action is not None:
        cut = text.find(f"\nAction: {action}")
        if cut >= 0:
            text = text[:cut]
    text = text.removeprefix("Thought:")
    return text.strip()


def _new_step() -> dict[str, Any]:
    return {"thought": None, "action": None, "arguments": None, "observation": None, "status": None,
            "pruned": False, "terminal": False, "children": []}


def _only_child(node: dict[str, Any], node_type: str) -> dict[str, Any] | None:
    children = node.get("children") or []
    if len(children) == 1 and isinstance(children[0], dict) and children[0].get("node_type") == node_type:
        return children[0]
    return None


def _fold(node: dict[str, Any]) -> dict[str, Any]:
    """One step starting at `node`, its child steps built from whatever follows the step's last node."""
    step = _new_step()
    current = node
    thought = None
    if current.get("node_type") == THOUGHT:
        thought = str(current.get("description", ""))
        current = _only_child(current, ACTION) or current
    if current.get("node_type") == ACTION:
        step["action"] = str(current.get("description", ""))
        current = _only_child(current, ACTION_INPUT) or current
    if current.get("node_type") == ACTION_INPUT:
        step["arguments"] = str(current.get("description", ""))
        step["observation"] = current.get("observation")
        step["status"] = current.get("observation_code")
    if thought is not None:
        step["thought"] = thought_text(thought, step["action"])
    # Pruned or terminal flags sit on the step's last node (the Action Input that ended a branch).
    step["pruned"] = bool(current.get("pruned"))
    step["terminal"] = bool(current.get("is_terminal"))
    step["children"] = [_fold(child) for child in current.get("children") or [] if isinstance(child, dict)]
    return step


def _nest(chain: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A flat ReAct chain as the one-branch tree it is, so chains and trees fold the same way."""
    nested = None
    for node in reversed(chain):
        if isinstance(node, dict):
            nested = {**node, "children": [nested] if nested is not None else []}
    return nested


def chain_steps(chain: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A ReAct try's node chain as a flat list of steps (no `children`)."""
    nested = _nest(chain)
    steps = []
    step = _fold(nested) if nested is not None else None
    while step is not None:
        children = step.pop("children")
        steps.append(step)
        step = children[0] if children else None
    return steps


def tree_steps(root: dict[str, Any]) -> list[dict[str, Any]]:
    """A DFSDT tree's first steps, each with its `children` steps. The root node is an empty Action Input
    (the task itself), so the top level is the root's children."""
    return [_fold(child) for child in root.get("children") or [] if isinstance(child, dict)]


def finish_return_type(arguments: str | None) -> str | None:
    try:
        parsed = json.loads(arguments or "")
    except json.JSONDecodeError:
        return None
    return str(parsed.get("return_type")) if isinstance(parsed, dict) and "return_type" in parsed else None


def mark_chosen_path(steps: list[dict[str, Any]], final_answer: str) -> list[dict[str, Any]]:
    """Mark (`chosen: True`) the steps from the top to the Finish step whose arguments are the answer file's
    `final_answer` (the answer node's description), and return that path; [] when no step matches.

    DFSDT with first-answer stop has one give_answer leaf; when the run gave up, the answer node is one of
    the give-up leaves, and identical give-ups cannot be told apart from the file: the first one is marked."""

    def search(level: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for step in level:
            if step["action"] == FINISH and step["arguments"] == final_answer and not step["children"]:
                return [step]
            below = search(step["children"])
            if below:
                return [step, *below]
        return []

    path = search(steps) if final_answer else []
    for step in path:
        step["chosen"] = True
    return path


def preorder(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steps in the order DFSDT generated them: depth first, each child's subtree before its next sibling."""
    ordered = []
    for step in steps:
        ordered.append(step)
        ordered.extend(preorder(step["children"]))
    return ordered


def strip_children(step: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in step.items() if key != "children"}
