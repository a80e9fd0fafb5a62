"""Raw answer files <-> ToolEval's converted format.

Raw -> converted reproduces StableToolBench's `toolbench/tooleval/convert_to_answer_format.py`
(with ToolBench's `ExecutionGraph` from `tooleval/evaluation/dataclass.py`). One converted file maps
`qid -> {query, available_tools, answer{method, total_steps, final_answer, answer_details}}`, where
`answer_details` is a one-element list holding the nested path `system -> user -> tool/assistant ...`
(`{"role", "message", "next": [...]}`; system and user messages are blanked, as upstream).

- Valid data: `train_messages[-1]` is walked from index 2. An assistant message with a call becomes a
  `tool` node `{name, arguments, response}` (the response is the next function/tool message; `''`
  for Finish); a content-only assistant message becomes an `assistant` node (the content of a
  message that also has a call is dropped, as upstream). Both message styles are read:
  `function_call` + `role: function`, and `tool_calls` + `role: tool` (matched by `tool_call_id`).
  `function_call: None` (OpenAI message dumps) is treated as absent, where upstream crashes (STB #34).
- Invalid CoT: a try drawn at random; invalid DFS: the whole tree, Action/Action Input pairs merged
  into `tool` nodes, then reduced to one root-to-leaf path by a random walk.
- Randomness: upstream seeds the global `random` with 42 once and converts files in `os.listdir`
  order; we use one `random.Random(seed)` per directory, consumed in the same places (including the
  walk over single-child chains), over files in sorted name order, so output is reproducible.

Converted -> raw (`converted_to_raw`) rebuilds a minimal raw answer that converts back to the same
entry. What the converted format no longer has is lost: the system prompt (written as ""), the
thought text of calls, status codes (0, or the Finish outcome), `query_count`/`total_tokens` (0),
all other tries and tree branches, diversity prompts, and node flags (`pruned`, `finished`, ...).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

from reasoning.prompts import build_user_message
from reasoning.step import FINISH, finish_step

_SKIPPED_ROLES = ("system", "user", "function", "tool")


class MalformedAnswerError(ValueError):
    """An answer file that cannot be converted; the message says which part is wrong."""


class _Graph:
    """The parts of ToolBench's `ExecutionGraph` the converter uses (insertion-ordered edges)."""

    def __init__(self) -> None:
        self.nodes: dict[int, dict[str, Any]] = {}
        self.edges: dict[int, dict[int, None]] = {}
        self.init: int | None = None
        self._next_id = 0

    def add(self, role: Any, message: Any) -> int:
        node_id = self._next_id
        self._next_id += 1
        self.nodes[node_id] = {"role": role, "message": message}
        if self.init is None:
            self.init = node_id
        return node_id

    def link(self, source: int, target: int) -> None:
        self.edges.setdefault(source, {})[target] = None

    def adjacent(self, node_id: int) -> list[int]:
        return list(self.edges.get(node_id, {}))

    def random_path(self, rng: random.Random) -> list[dict[str, Any]]:
        """Upstream `reduce_graph_to_sequence`: a random walk from the first node to a leaf (one
        `rng.choice` per step, even where there is only one way on)."""
        node_id = self.init
        path = [self.nodes[node_id]]
        adjacent = self.adjacent(node_id)
        while adjacent:
            node_id = rng.choice(adjacent)
            path.append(self.nodes[node_id])
            adjacent = self.adjacent(node_id)
        return path


def _details(path: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Upstream `convert_to_dict` of a path: nested `{role, message, next}`, system/user blanked."""
    nested: list[dict[str, Any]] = []
    for node in reversed(path):
        message = "" if node["role"] in ("system", "user") else node["message"]
        nested = [{"role": node["role"], "message": message, "next": nested}]
    return nested


def _start(query: str) -> tuple[_Graph, int]:
    graph = _Graph()
    system = graph.add("system", "")  # upstream writes a fixed system text here; it is blanked on output
    user = graph.add("user", query)
    graph.link(system, user)
    return graph, user


def _result(method: str, generation: dict[str, Any], path: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "query": generation.get("query", ""),
        "available_tools": generation.get("function", []),
        "answer": {
            "method": method,
            "total_steps": len(path),
            "final_answer": generation.get("final_answer", ""),
            "answer_details": _details(path),
        },
    }


def _chain(graph: _Graph, last: int, nodes: Iterator[tuple[str, Any]]) -> None:
    for role, message in nodes:
        node = graph.add(role, message)
        graph.link(last, node)
        last = node


def _message_nodes(conversation: list[Any]) -> Iterator[tuple[str, Any]]:
    """The tool/assistant nodes of a valid conversation (upstream `process_valid_data`)."""
    index = 2
    while index < len(conversation):
        message = conversation[index]
        if not isinstance(message, dict):
            raise MalformedAnswerError(f"train_messages[-1][{index}] is not a message object")
        role = message.get("role")
        if role in _SKIPPED_ROLES:
            index += 1
            continue
        if role != "assistant":
            raise MalformedAnswerError(f"train_messages[-1][{index}] has unknown role {role!r}")
        call = message.get("function_call")
        calls = message.get("tool_calls")
        if isinstance(call, dict):
            name = call.get("name")
            response = ""
            following = conversation[index + 1] if index + 1 < len(conversation) else None
            if isinstance(following, dict) and following.get("role") in ("function", "tool"):
                index += 1  # the function message is consumed with its call
                if name != FINISH:
                    response = following.get("content")
            yield "tool", {"name": name, "arguments": call.get("arguments"), "response": response}
        elif isinstance(calls, list) and calls:
            for tool_call in calls:
                function = tool_call.get("function") if isinstance(tool_call, dict) else None
                if not isinstance(function, dict):
                    raise MalformedAnswerError(f"train_messages[-1][{index}]: a tool call has no 'function'")
                name, arguments = function.get("name"), function.get("arguments")
                if name == FINISH:
                    yield "tool", {"name": name, "arguments": arguments, "response": ""}
                    break
                for later in conversation[index + 1:]:
                    if isinstance(later, dict) and later.get("role") == "tool" and \
                            later.get("tool_call_id") == tool_call.get("id"):
                        yield "tool", {"name": name, "arguments": arguments, "response": later.get("content")}
                        break
        else:
            yield "assistant", message.get("content")
        index += 1


def _valid(method: str, generation: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    train_messages = generation.get("train_messages")
    if not isinstance(train_messages, list) or not train_messages or not isinstance(train_messages[-1], list):
        raise MalformedAnswerError("answer_generation.train_messages must be a non-empty list of message lists "
                                   "when valid_data is true")
    graph, user = _start(generation.get("query", ""))
    _chain(graph, user, _message_nodes(train_messages[-1]))
    return _result(method, generation, graph.random_path(rng))


def _cot_chain_nodes(chain: list[Any]) -> Iterator[tuple[str, Any]]:
    index = 0
    while index < len(chain):
        node = chain[index]
        node_type = node.get("node_type") if isinstance(node, dict) else None
        if node_type == "Action":
            following = chain[index + 1] if index + 1 < len(chain) and isinstance(chain[index + 1], dict) else {}
            yield "tool", {"name": node.get("description"), "arguments": following.get("description", ""),
                           "response": following.get("observation", "")}
            index += 1
        elif node_type == "Thought":
            yield "assistant", node.get("description")
        else:
            raise MalformedAnswerError(f"a try's chain[{index}] has node_type {node_type!r}; "
                                       "expected 'Action' or 'Thought'")
        index += 1


def _invalid_cot(method: str, data: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    tries = data.get("trys")
    if not isinstance(tries, list) or not tries:
        raise MalformedAnswerError("'trys' must be a non-empty list for an invalid CoT answer")
    trial = rng.choice(tries)
    chain = trial.get("chain") if isinstance(trial, dict) else None
    if not isinstance(chain, list):
        raise MalformedAnswerError("a try has no 'chain' list")
    generation = data["answer_generation"]
    graph, user = _start(generation.get("query", ""))
    _chain(graph, user, _cot_chain_nodes(chain))
    return _result(method, generation, graph.random_path(rng))


def _invalid_dfs(method: str, data: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    tree = data.get("tree")
    root = tree.get("tree") if isinstance(tree, dict) else None
    if not isinstance(root, dict) or not isinstance(root.get("children"), list):
        raise MalformedAnswerError("'tree.tree.children' must be a list for an invalid DFS answer")
    generation = data["answer_generation"]
    graph, user = _start(generation.get("query", ""))

    def add_subtree(node: Any) -> int:
        if not isinstance(node, dict):
            raise MalformedAnswerError("a tree node is not an object")
        children = node.get("children") or []
        child_ids = [add_subtree(child) for child in children]
        message = dict(node)
        if child_ids:
            message["children"] = None  # upstream clears it on inner nodes
        node_id = graph.add(node.get("node_type"), message)
        for child_id in child_ids:
            graph.link(node_id, child_id)
        return node_id

    for child in root["children"]:
        graph.link(user, add_subtree(child))

    def purify(node_id: int) -> None:
        node = graph.nodes[node_id]
        if node["role"] == "Action":
            for adjacent in graph.adjacent(node_id):
                inner = graph.nodes[adjacent]
                if inner["role"] == "Action Input":
                    node["role"] = "tool"
                    node["message"] = {"name": node["message"].get("description"),
                                       "arguments": inner["message"].get("description"),
                                       "response": inner["message"].get("observation", "")}
                    edges = graph.edges.setdefault(node_id, {})
                    edges.update(graph.edges.pop(adjacent, {}))
                    edges.pop(adjacent, None)
                    del graph.nodes[adjacent]
                    break
        elif node["role"] == "Thought":
            node["role"] = "assistant"
            node["message"] = node["message"].get("description")
        elif node["role"] not in ("Action Input", "system", "user"):
            raise MalformedAnswerError(f"tree node has unknown node_type {node['role']!r}")
        for adjacent in graph.adjacent(node_id):
            purify(adjacent)

    purify(user)
    return _result(method, generation, graph.random_path(rng))


def convert_answer(data: Any, method: str, rng: random.Random | None = None) -> dict[str, Any]:
    """One raw answer JSON -> its converted entry. `rng` defaults to `random.Random(42)`."""
    rng = rng if rng is not None else random.Random(42)
    if not isinstance(data, dict) or not isinstance(data.get("answer_generation"), dict):
        raise MalformedAnswerError("expected an object with an 'answer_generation' object")
    generation = data["answer_generation"]
    if generation.get("valid_data"):
        return _valid(method, generation, rng)
    if "CoT" in method or "cot" in method:
        return _invalid_cot(method, data, rng)
    if "DFS" in method or "dfs" in method:
        return _invalid_dfs(method, data, rng)
    raise MalformedAnswerError(f"unknown method {method!r}: expected a CoT or DFS method name")


def answer_files(answer_dir: str | os.PathLike[str], method: str) -> list[Path]:
    """The files upstream's converter reads: `*.json` whose name contains `method`, sorted by name."""
    directory = Path(answer_dir)
    return sorted(path for path in directory.iterdir()
                  if path.is_file() and path.name.endswith(".json") and method in path.name)


def convert_answer_dir(answer_dir: str | os.PathLike[str], method: str, *, seed: int = 42) -> dict[str, Any]:
    """Convert every answer file of `method` in `answer_dir`: `{qid: entry}` with the qid taken from
    the file name before the first `_`, as upstream. A bad file raises `MalformedAnswerError` naming it."""
    rng = random.Random(seed)
    converted: dict[str, Any] = {}
    for path in answer_files(answer_dir, method):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise MalformedAnswerError(f"{path}: not a readable JSON file: {error}") from error
        try:
            converted[path.name.split("_")[0]] = convert_answer(data, method, rng)
        except MalformedAnswerError as error:
            raise MalformedAnswerError(f"{path}: {error}") from error
        except (AttributeError, KeyError, TypeError, IndexError) as error:
            raise MalformedAnswerError(f"{path}: unexpected answer structure ({type(error).__name__}: "
                                       f"{error})") from error
    return converted


# --- converted -> raw -------------------------------------------------------------------------------


def _path_nodes(details: Any) -> list[dict[str, Any]]:
    """The nodes after system and user along the first `next` branch."""
    if not isinstance(details, list) or not details:
        raise MalformedAnswerError("answer.answer_details must be a non-empty list")
    path = []
    node = details[0]
    while isinstance(node, dict):
        path.append(node)
        following = node.get("next") or []
        node = following[0] if isinstance(following, list) and following else None
    return path[2:]


def _node_json(node_type: str, description: Any, depth: int, **extra: Any) -> dict[str, Any]:
    data = {"is_terminal": False, "pruned": False, "finished": False, "depth": depth, "node_type": node_type,
            "description": description, "Elo": 1000.0}
    data.update(extra)
    data.update({"child_count": 0, "expand_num": 0})
    if node_type == "Action Input":
        data["io_state"] = {}
    return data


def converted_to_raw(entry: dict[str, Any], method: str | None = None) -> dict[str, Any]:
    """A minimal raw answer JSON for one converted entry; `convert_answer` of it gives `entry` back.
    See the module docstring for what cannot be recovered."""
    if not isinstance(entry, dict) or not isinstance(entry.get("answer"), dict):
        raise MalformedAnswerError("expected an object with an 'answer' object")
    answer = entry["answer"]
    method = method or answer.get("method") or "CoT@1"
    query = entry.get("query", "")
    final_answer = answer.get("final_answer", "")
    messages: list[dict[str, Any]] = [{"role": "system", "content": ""},
                                      {"role": "user", "content": build_user_message(query)}]
    train_messages: list[list[dict[str, Any]]] = []
    chain: list[dict[str, Any]] = []
    for node in _path_nodes(answer.get("answer_details")):
        message = node.get("message")
        if node.get("role") == "tool" and isinstance(message, dict):
            name, arguments, response = message.get("name"), message.get("arguments"), message.get("response")
            messages.append({"role": "assistant", "content": "",
                             "function_call": {"name": name, "arguments": arguments}})
            train_messages.append(list(messages))
            code = finish_step(arguments if isinstance(arguments, str) else "").status if name == FINISH else 0
            observation = {"observation": response} if response not in ("", None) else {}
            chain.append(_node_json("Action", name, len(chain) + 1))
            chain.append(_node_json("Action Input", arguments, len(chain) + 1, **observation, observation_code=code))
            if name != FINISH:
                messages.append({"role": "function", "name": name, "content": response})
        else:
            messages.append({"role": "assistant", "content": message})
            train_messages.append(list(messages))
            chain.append(_node_json("Thought", message, len(chain) + 1))
    for previous, _ in pairwise(chain):
        previous["child_count"] = 1
    valid = final_answer != ""
    win = valid and "give_answer" in str(final_answer)
    generation_tail = {"query_count": 0, "total_tokens": 0}
    functions = entry.get("available_tools", [])
    if method.startswith("DFS") or "dfs" in method:
        root = _node_json("Action Input", "", 0)
        nested = root
        for node in chain:
            nested["children"] = [dict(node)]
            nested = nested["children"][0]
        nested["children"] = []
        root["child_count"] = 1 if chain else 0
        generation: dict[str, Any] = {"valid_data": valid, **generation_tail, "final_answer": final_answer,
                                      "finish_type": "give_answer" if win or not valid else "give_up",
                                      "function": functions, "chain": []}
        if valid:
            generation["train_messages"] = train_messages
        generation["query"] = query
        return {"win": win, "tree": {"size": len(chain) + 1, "max_length": len(chain) + 1, "tree": root},
                "forward_args": {}, "compare_candidates": [chain] if win else [], "answer_generation": generation}
    return {
        "win": win, "try_count": 1, "trys": [{"chain": chain, "win": win}],
        "compare_candidates": [chain] if win else [], "forward_args": {},
        "answer_generation": {"valid_data": valid, "final_answer": final_answer, "function": functions,
                              **generation_tail, "train_messages": train_messages if valid else [],
                              "chain": [], "query": query},
    }
