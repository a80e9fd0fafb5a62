"""The trajectory tree shared by ReAct (a chain) and DFSDT (a tree).

Every model decision adds nodes under the current one: a `Thought` (the model's reasoning), an
`Action` (the function name) and an `Action Input` (the arguments, with the observation and its
status code). Depth counts nodes, as upstream (`tree_node.get_depth`): the root is depth 0, so with
three nodes per decision `single_chain_max_step=12` allows four calls.

Each node keeps the message list of the conversation up to it (`messages`), so that any node can
be continued and `train_messages()` can rebuild the per-decision message lists upstream writes.
Lists are copied per node; message dicts are shared and never mutated once shared.

`to_json` writes upstream's node shape (`toolbench/inference/Tree/Tree.py`): `is_terminal, pruned,
finished, depth, node_type, description, Elo[, observation][, observation_code], child_count,
expand_num[, io_state]`. Upstream always writes `is_terminal: false` (a bug); we write the real value
unless `upstream_quirks=True`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

THOUGHT = "Thought"
ACTION = "Action"
ACTION_INPUT = "Action Input"


@dataclass(eq=False)
class TreeNode:
    node_type: str = ACTION_INPUT
    description: str = ""
    observation: str = ""
    observation_code: int | None = None
    is_terminal: bool = False
    pruned: bool = False
    finished: bool = False
    expand_num: int = 0
    elo: float = 1000.0
    depth: int = 0
    father: TreeNode | None = field(default=None, repr=False)
    children: list[TreeNode] = field(default_factory=list, repr=False)
    messages: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def add_child(self, node_type: str, description: str) -> TreeNode:
        """A new child that starts from a copy of this node's conversation."""
        child = TreeNode(node_type=node_type, description=description, depth=self.depth + 1, father=self,
                         messages=list(self.messages))
        self.children.append(child)
        return child

    def size(self) -> int:
        """Nodes in this subtree, itself included."""
        return 1 + sum(child.size() for child in self.children)

    def max_length(self) -> int:
        """Nodes on the longest downward path, itself included (upstream `get_max_depth`)."""
        return 1 + max((child.max_length() for child in self.children), default=0)

    def make_finish(self, inter_val: int = 1) -> None:
        """Mark this node and its ancestors `finished`, up to `inter_val` Action Input ancestors
        further up (upstream `make_finish`, called with 2 when an answer is found in DFSDT)."""
        node: TreeNode | None = self
        while node is not None:
            node.finished = True
            if node.node_type == ACTION_INPUT:
                inter_val -= 1
            if inter_val < 0:
                return
            node = node.father

    def path_from_root(self) -> list[TreeNode]:
        """The nodes from the root's first child down to this node (the root excluded)."""
        path = []
        node: TreeNode | None = self
        while node is not None and node.father is not None:
            path.append(node)
            node = node.father
        return path[::-1]

    def chain_json(self, *, upstream_quirks: bool = False) -> list[dict[str, Any]]:
        """Upstream `get_chain_result_from_this_node`: node JSONs from the root's child to here."""
        return [node.to_json(upstream_quirks=upstream_quirks) for node in self.path_from_root()]

    def train_messages(self) -> list[list[dict[str, Any]]]:
        """One message list per assistant decision on the path to this node, the last being the whole
        conversation (upstream `get_train_messages_from_this_node`): each list is cut after its last
        assistant message and keeps only the most recent invalid (diversity) message."""
        result: list[list[dict[str, Any]]] = []
        for node in reversed(self.path_from_root()):
            messages = list(node.messages)
            if node.node_type == ACTION_INPUT:
                while messages and messages[-1].get("role") != "assistant":
                    messages.pop()
                if messages:
                    result.append(_keep_last_invalid(messages))
            elif node.node_type == THOUGHT:
                while messages and messages[-1].get("role") == "user":
                    messages.pop()
                messages = _keep_last_invalid(messages)
                if messages and messages[-1].get("role") == "assistant":
                    result.append(messages)
        return [[dict(message) for message in messages] for messages in reversed(result)]

    def to_json(self, *, upstream_quirks: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "is_terminal": False if upstream_quirks else self.is_terminal,
            "pruned": self.pruned,
            "finished": self.finished,
            "depth": self.depth,
            "node_type": self.node_type,
            "description": self.description,
            "Elo": self.elo,
        }
        if self.observation != "":
            data["observation"] = self.observation
        if self.observation_code is not None:
            data["observation_code"] = self.observation_code
        data["child_count"] = len(self.children)
        data["expand_num"] = self.expand_num
        if self.node_type == ACTION_INPUT:
            data["io_state"] = {}  # upstream's environment state; the RapidAPI wrapper writes {}
        return data

    def to_json_recursive(self, *, upstream_quirks: bool = False) -> dict[str, Any]:
        data = self.to_json(upstream_quirks=upstream_quirks)
        data["children"] = [child.to_json_recursive(upstream_quirks=upstream_quirks) for child in self.children]
        return data


def _keep_last_invalid(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop messages flagged `valid: False` except the most recent one (upstream
    `sift_first_invalid_message`)."""
    kept: list[dict[str, Any]] = []
    seen_invalid = False
    for message in reversed(messages):
        if message.get("valid", True) is False:
            if seen_invalid:
                continue
            seen_invalid = True
        kept.append(message)
    return kept[::-1]


def tree_json(root: TreeNode, *, upstream_quirks: bool = False) -> dict[str, Any]:
    """Upstream `my_tree.to_json_recursive`: `{size, max_length, tree}`."""
    return {"size": root.size(), "max_length": root.max_length(),
            "tree": root.to_json_recursive(upstream_quirks=upstream_quirks)}
