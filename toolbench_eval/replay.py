"""Replay raw answer files: re-run our reasoner on the model outputs and observations a file records.

The regression test of a protocol. A StableToolBench answer file (ToolLLaMA text style, ReAct `CoT@n` or
DFSDT `DFS_woFilter_w<n>`) records every model output (under upstream's rules a Thought node holds the whole
output) and every observation (on its Action Input node). Replaying feeds those outputs back, in the order
the model produced them (tree pre-order), and answers every tool call with the observation recorded for that
decision; everything else (parsing, name matching, Finish handling, status codes of local decisions, depth
limits, backtracking, message bookkeeping, the answer file) is ours, under the chosen protocol. The result
is compared with the file: `train_messages`, the tree (DFS) or tries (CoT), the converted answer (ToolEval's
format, what the judges read) and the whole file's bytes.

What a file does not record is taken as follows: tool-call ids are the file's, matched by order in
`train_messages` (ids off the answer path are recorded nowhere); the tool descriptions from its system prompt; for per-call token
counts (`token_count: usage`), the file's total on the first call; the output of a DFSDT call that hit the
query budget (upstream drops it) is empty. Upstream picks a give-up answer with the process-global `random`;
where a tree has several give-up nodes and no answer, the pick may differ and is reported.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reasoning.answer import answer_json, dumps_answer
from reasoning.convert import convert_answer
from reasoning.eval_protocol import EvalProtocol
from reasoning.prompts import TASK_DESCRIPTION_HEADER, bare_functions, build_system_message
from reasoning.protocols import ModelOutput, ToolResult
from reasoning.tree import ACTION, ACTION_INPUT, THOUGHT
from toolbench_eval.errors import UserError


@dataclass(frozen=True)
class Decision:
    """One recorded model decision: its output text and the observation (with status) it got; for native
    function calling, its content (None when the model wrote none) and its calls instead."""

    output: str
    observation: str
    status: int
    content: str | None = None
    calls: tuple[Call, ...] | None = None  # native turns only


@dataclass(frozen=True)
class Call:
    """One recorded tool call of a native turn: the name and arguments as the model wrote them, and what
    the Action Input node recorded."""

    name: str
    arguments: str
    observation: str
    status: int


@dataclass
class ReplayReport:
    path: Path
    method: str
    decisions: int
    identical: dict[str, bool]  # train_messages, tree, converted, file
    first_difference: dict[str, str]  # per differing part: where and the two values

    @property
    def ok(self) -> bool:
        return all(self.identical[part] for part in ("train_messages", "tree", "converted"))

    def as_dict(self) -> dict[str, Any]:
        return {"file": str(self.path), "method": self.method, "decisions": self.decisions, "ok": self.ok,
                "identical": self.identical, "first_difference": self.first_difference}


def _preorder(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("children", []):
        yield from _preorder(child)


def _chain_decisions(nodes: list[dict[str, Any]]) -> Iterator[tuple[dict, dict | None]]:
    """(Thought node, its Action Input node) pairs of a flat node list, in order."""
    for index, node in enumerate(nodes):
        if node.get("node_type") == THOUGHT:
            leaf = next((n for n in nodes[index + 1:index + 3] if n.get("node_type") == ACTION_INPUT), None)
            yield node, leaf


def _tree_decisions(root: dict[str, Any]) -> Iterator[tuple[dict, dict | None]]:
    for node in _preorder(root):
        if node.get("node_type") == THOUGHT:
            action = (node.get("children") or [None])[0]
            leaf = (action.get("children") or [None])[0] if action else None
            yield node, leaf


def _recorded_decisions(data: dict[str, Any], is_dfs: bool) -> list[Decision]:
    """Every decision the file records, in the order the model made them (tree pre-order)."""
    if is_dfs:
        pairs = list(_tree_decisions(data["tree"]["tree"]))
    else:
        pairs = [pair for attempt in data["trys"] for pair in _chain_decisions(attempt["chain"])]
    return [Decision(output=str(thought.get("description", "")),
                     observation=str(leaf.get("observation", "")) if leaf else "",
                     status=int(leaf.get("observation_code", 0) or 0) if leaf else 0)
            for thought, leaf in pairs]


def is_native_file(data: dict[str, Any]) -> bool:
    """Whether a file was made by a native function-calling model: an Action node right after another call
    (null content), a Thought node followed by another Thought (a content-only turn), or an Action whose name
    is not in the Thought before it (a ReAct Thought holds the whole output, the name included)."""
    chains = [attempt["chain"] for attempt in data["trys"]] if "trys" in data else None
    nodes = [n for chain in chains for n in chain] if chains is not None else list(_preorder(data["tree"]["tree"]))
    pairs = ([pair for chain in chains for pair in itertools.pairwise(chain)] if chains is not None
             else [(node, child) for node in nodes for child in node.get("children", [])])
    for before, after in pairs:
        kinds = (before.get("node_type"), after.get("node_type"))
        if kinds[1] == ACTION and kinds[0] != THOUGHT:
            return True
        if kinds == (THOUGHT, THOUGHT):
            return True
        if kinds == (THOUGHT, ACTION) and str(after.get("description", "")) not in str(before.get("description", "")):
            return True
    return False


def _turn(segment: list[dict[str, Any]]) -> Decision:
    """A native turn from its nodes: an optional Thought, then Action/Action Input pairs."""
    content = None
    if segment and segment[0].get("node_type") == THOUGHT:
        content, segment = str(segment[0].get("description", "")), segment[1:]
    calls = []
    for action, leaf in zip(segment[::2], segment[1::2], strict=False):
        calls.append(Call(str(action.get("description", "")), str(leaf.get("description", "")),
                          str(leaf.get("observation", "")), int(leaf.get("observation_code", 0) or 0)))
    return Decision(output=content or "", observation="", status=0, content=content, calls=tuple(calls))


def _cut_by_messages(chain: list[dict[str, Any]], assistant: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """A CoT chain cut into turns by its recorded assistant messages (content, then as many calls)."""
    segments, index = [], 0
    for message in assistant:
        size = (1 if message.get("content") is not None else 0) + 2 * len(message.get("tool_calls") or [])
        segments.append(chain[index:index + size])
        index += size
    return segments


def _cut_by_thoughts(chain: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """A CoT chain cut before every Thought node: the fewest turns it can be (parallel calls kept together)."""
    segments: list[list[dict[str, Any]]] = []
    for node in chain:
        if not segments or node.get("node_type") == THOUGHT:
            segments.append([])
        segments[-1].append(node)
    return segments


def _split_to(segments: list[list[dict[str, Any]]], wanted: int) -> list[list[dict[str, Any]]] | None:
    """`segments` cut further into `wanted` turns when that can be done one way only: a turn without content
    starts at an Action node, so the cuts can only fall before the second, third, ... call of a segment."""
    cuts = [(s, i) for s, segment in enumerate(segments) for i in range(1, len(segment))
            if segment[i].get("node_type") == ACTION and i >= 2 and segment[i - 1].get("node_type") == ACTION_INPUT]
    if wanted - len(segments) != len(cuts):
        return None
    result = []
    for s, segment in enumerate(segments):
        start = 0
        for cut in [i for t, i in cuts if t == s]:
            result.append(segment[start:cut])
            start = cut
        result.append(segment[start:])
    return result


def _native_tree_turns(root: dict[str, Any]) -> list[Decision]:
    """Turns of a DFS tree: every node the search visited (expand_num > 0) ends a turn that starts below its
    nearest visited ancestor; visit order is the order of model calls."""
    ends: list[tuple[int, list[dict[str, Any]]]] = []

    def walk(node: dict[str, Any], segment: list[dict[str, Any]]) -> None:
        for child in node.get("children", []):
            path = [*segment, child]
            if int(child.get("expand_num", 0) or 0) > 0:
                ends.append((int(child["expand_num"]), path))
                walk(child, [])
            else:
                walk(child, path)

    walk(root, [])
    return [_turn(path) for _, path in sorted(ends, key=lambda item: item[0])]


def _native_decisions(data: dict[str, Any]) -> list[Decision]:
    generation = data.get("answer_generation", {})
    if "tree" in data:
        turns = _native_tree_turns(data["tree"]["tree"])
    else:
        lists = generation.get("train_messages") or []
        assistant = [m for m in lists[-1] if m.get("role") == "assistant"] if lists else None
        segments: list[list[dict[str, Any]]] = []
        for number, attempt in enumerate(data["trys"]):
            last = number == len(data["trys"]) - 1
            segments.extend(_cut_by_messages(attempt["chain"], assistant) if assistant and last
                            else _cut_by_thoughts(attempt["chain"]))
        wanted = int(generation.get("query_count", len(segments)) or 0)
        if wanted != len(segments):
            segments = _split_to(segments, wanted) or segments
        turns = [_turn(segment) for segment in segments]
    expected = int(generation.get("query_count", len(turns)) or 0)
    dropped = 1 if "tree" in data and expected == len(turns) + 1 else 0  # a budget-hit call upstream drops
    if expected != len(turns) + dropped:
        raise UserError(f"cannot tell the model's turns apart: the file records {expected} model calls, the tree "
                        f"reads as {len(turns)} (parallel calls vs turns without content are ambiguous here)")
    return turns


def _native_message(decision: Decision, number: int) -> dict[str, Any]:
    """The assistant message of a recorded native turn, in the openai SDK's `.dict()` form."""
    from toolbench_eval.engines.base import assistant_message

    return assistant_message({"content": decision.content, "tool_calls": [
        {"id": f"call_replay{number}_{index}", "function": {"arguments": call.arguments, "name": call.name}}
        for index, call in enumerate(decision.calls or ())]})


def _with_recorded_call_ids(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """`ours` with its tool-call ids replaced by the file's, matched by order of appearance in
    `train_messages` (the only place ids are recorded; upstream draws them from the global `random`)."""
    def ids(value: Any) -> list[str]:
        found: list[str] = []
        for messages in value.get("answer_generation", {}).get("train_messages") or []:
            for message in messages:
                for call in message.get("tool_calls") or []:
                    if isinstance(call, dict) and call.get("id") not in found:
                        found.append(call.get("id"))
        return found

    mapping = dict(zip(ids(ours), ids(theirs), strict=False))

    def rename(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: mapping.get(inner, inner) if key in ("id", "tool_call_id") else rename(inner)
                    for key, inner in value.items()}
        if isinstance(value, list):
            return [rename(inner) for inner in value]
        return value

    return rename(ours) if mapping else ours


class _ReplayModel:
    def __init__(self, decisions: list[Decision], first_call_tokens: int) -> None:
        self.decisions = decisions
        self.first_call_tokens = first_call_tokens
        self.calls = 0

    async def generate(self, messages, functions, *, trajectory_id: str) -> ModelOutput:
        index = self.calls
        self.calls += 1
        tokens = self.first_call_tokens if index == 0 else 0
        if index >= len(self.decisions):  # a call whose output upstream dropped
            empty = {"content": None, "role": "assistant"} if self.decisions and self.decisions[0].calls is not None \
                else None
            return ModelOutput(text="", prompt_tokens=tokens, message=empty)
        decision = self.decisions[index]
        if decision.calls is not None:
            return ModelOutput(text=decision.output, prompt_tokens=tokens, message=_native_message(decision, index))
        return ModelOutput(text=decision.output, prompt_tokens=tokens)


class _ReplayEnvironment:
    def __init__(self, model: _ReplayModel) -> None:
        self.model = model
        self.used: set[tuple[int, int]] = set()

    async def call(self, function_name, arguments, *, raw_arguments=None) -> ToolResult:
        number = self.model.calls - 1
        decision = self.model.decisions[number]
        if decision.calls is None:
            return ToolResult(observation=decision.observation, status=decision.status)
        # Native: the first call of this turn not answered yet whose name is (or ends with) the called one.
        for index, call in enumerate(decision.calls):
            if (number, index) not in self.used and function_name.endswith(call.name):
                self.used.add((number, index))
                return ToolResult(observation=call.observation, status=call.status)
        raise UserError(f"model call {number + 1}: no recorded observation for a call of {function_name}")


def tool_descriptions_from_system(system: str) -> list[tuple[str, str]] | None:
    """The `(tool, description)` lines of a system prompt built by `build_system_message`, or None."""
    start = system.find(TASK_DESCRIPTION_HEADER)
    if start == -1:
        return None
    pairs = []
    for line in system[start + len(TASK_DESCRIPTION_HEADER):].splitlines():
        number, dot, rest = line.partition(".")
        name, colon, description = rest.partition(": ")
        if not (number.isdigit() and dot and colon):
            return None
        pairs.append((name, "" if description == "None" else description))
    return pairs if build_system_message(pairs) == system else None


def _first_difference(ours: Any, theirs: Any, where: str = "") -> str | None:
    if type(ours) is not type(theirs):
        return f"{where or '.'}: ours {json.dumps(ours)[:300]} / file {json.dumps(theirs)[:300]}"
    if isinstance(ours, dict):
        if list(ours) != list(theirs):
            return f"{where or '.'}: keys ours {list(ours)} / file {list(theirs)}"
        for key in ours:
            found = _first_difference(ours[key], theirs[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(ours, list):
        for index, (a, b) in enumerate(zip(ours, theirs, strict=False)):
            found = _first_difference(a, b, f"{where}[{index}]")
            if found:
                return found
        if len(ours) != len(theirs):
            return f"{where or '.'}: {len(ours)} items ours / {len(theirs)} in the file"
        return None
    if ours != theirs:
        return f"{where or '.'}: ours {json.dumps(ours)[:300]} / file {json.dumps(theirs)[:300]}"
    return None


def replay_answer(data: dict[str, Any], protocol: EvalProtocol) -> dict[str, Any]:
    """Our answer JSON for the decisions `data` records (see the module docstring)."""
    from reasoning.dfsdt import solve_dfsdt
    from reasoning.react import solve_react

    native = is_native_file(data) if ("trys" in data or "tree" in data) else False
    if protocol.thought_node != "raw_output" and not native:
        raise UserError(f"replay needs the model's whole outputs, which protocol {protocol.label!r} does not "
                        "record (its Thought nodes hold the parsed thought); replay files made under "
                        "thought_node=raw_output (stabletoolbench)")
    is_dfs = "tree" in data
    if not is_dfs and "trys" not in data:
        raise UserError("not a raw answer file: it has neither 'trys' (CoT) nor 'tree' (DFS)")
    generation = data.get("answer_generation", {})
    functions = bare_functions(generation.get("function", []))
    lists = generation.get("train_messages") or []
    system = lists[-1][0]["content"] if lists and lists[-1] and lists[-1][0].get("role") == "system" else ""
    descriptions = tool_descriptions_from_system(system) or []
    decisions = _native_decisions(data) if native else _recorded_decisions(data, is_dfs)
    tokens = int(generation.get("total_tokens", 0) or 0) if protocol.token_count == "usage" or native else 0
    model = _ReplayModel(decisions, tokens)
    env = _ReplayEnvironment(model)
    forward = data.get("forward_args", {})
    common = {"single_chain_max_step": int(forward.get("single_chain_max_step", protocol.single_chain_max_step)),
              "protocol": protocol, "query_id": "replay"}
    query = str(generation.get("query", ""))
    if is_dfs:
        trajectory = asyncio.run(solve_dfsdt(query, functions, descriptions, model, env, **common,
                                             toolllama=not native,
                                             width=int(forward.get("tree_beam_size", 2)),
                                             max_query_count=int(forward.get("max_query_count", 200))))
    else:
        trajectory = asyncio.run(solve_react(query, functions, descriptions, model, env, **common,
                                             toolllama=not native,
                                             pass_at=int(forward.get("pass_at", 1))))
    if system and not descriptions:  # the system prompt was not ours to rebuild: carry it over
        trajectory.system_message = system
    return _with_recorded_call_ids(answer_json(trajectory, protocol=protocol), data)


def replay_file(path: Path, protocol: EvalProtocol) -> ReplayReport:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UserError(f"{path}: cannot read it as a JSON answer file ({error})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: an answer file holds a JSON object")
    try:
        ours = replay_answer(data, protocol)
    except UserError as error:
        raise UserError(f"{path}: {error}") from None
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as error:
        raise UserError(f"{path}: not a raw answer file of the shape replay reads "
                        f"({type(error).__name__}: {error})") from None
    method = "DFS" if "tree" in data else "CoT"
    method_name = path.stem.split("_", 1)[1] if "_" in path.stem else ("DFS_woFilter_w2" if method == "DFS" else "CoT@1")
    parts = {
        "train_messages": (ours["answer_generation"].get("train_messages"),
                           data.get("answer_generation", {}).get("train_messages")),
        "tree": (ours.get("tree"), data.get("tree")) if method == "DFS" else (ours.get("trys"), data.get("trys")),
        "converted": (convert_answer(ours, method_name, random.Random(42)),
                      convert_answer(data, method_name, random.Random(42))),
    }
    identical, differences = {}, {}
    for part, (a, b) in parts.items():
        found = _first_difference(a, b)
        identical[part] = found is None
        if found:
            differences[part] = found
    identical["file"] = dumps_answer(ours, protocol.answer_file_encoding) == text
    if not identical["file"] and "file" not in differences:
        found = _first_difference(ours, data)
        differences["file"] = found or "same JSON, other bytes (encoding or final newline)"
    decisions = _native_decisions(data) if is_native_file(data) else _recorded_decisions(data, method == "DFS")
    return ReplayReport(path, method_name, len(decisions), identical, differences)
