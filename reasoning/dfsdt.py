"""DFSDT, StableToolBench's `DFS_woFilter_w<width>`: depth-first search over decision trees.

Upstream: `toolbench/inference/Algorithms/DFS.py` with `with_filter=False` (pre-order DFS).

- Each node is expanded up to `width` times; every expansion asks the model once and is explored
  to the end before the next one (pre-order). From the second expansion on, the model first gets a
  user message with `DIVERSITY_PROMPT` listing the earlier children's calls as JSON (`name`,
  `arguments`, `function_output`, `mento-carlo-action-value` = 0.0) and, when the node has one, its
  observation again. That message is flagged `valid: False` after the call: ToolLLaMA keeps seeing
  it (upstream's ToolLLaMA client keeps invalid messages), other clients do not.
- Return values drive backtracking: an answer returns 2 and, with `answer=1`, the search stops
  (10000 propagates); a give-up node returns 2, so the node that produced it stops expanding and
  its parent tries a new sibling; a depth-limit prune or an exhausted node returns 1.
- At `max_query_count` model calls the search stops (100000 propagates); the output of that last
  call is not used, as upstream.
- The answer is the first `give_answer` node; without one, a give-up node chosen with the
  trajectory's own `random.Random(seed)` (upstream draws from the process-global `random`, which is
  not reproducible under threads).
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

from reasoning.eval_protocol import TOOLBENCH_EVAL, EvalProtocol
from reasoning.expansion import Expander
from reasoning.prompts import DIVERSITY_PROMPT, bare_functions, build_system_message, initial_messages
from reasoning.protocols import ModelClient, ToolEnvironment
from reasoning.step import STATUS_GIVE_UP
from reasoning.trajectory import Trajectory
from reasoning.tree import ACTION_INPUT, TreeNode

FINAL_ANSWER_BACK_LENGTH = 2
PRUNE_BACK_LENGTH = 2
STOP_ANSWER_FOUND = 10000
STOP_QUERY_LIMIT = 100000


def diversity_message(node: TreeNode) -> dict[str, Any] | None:
    """The diversity prompt for expanding `node` again, or None when no earlier child made a call."""
    candidates = []
    for child in node.children:
        leaf = child
        while not leaf.is_terminal and leaf.node_type != ACTION_INPUT and leaf.children:
            leaf = leaf.children[0]
        if leaf.node_type == ACTION_INPUT:
            candidates.append({
                "name": leaf.father.description if leaf.father is not None else "",
                "arguments": leaf.description,
                "function_output": leaf.observation,
                "mento-carlo-action-value": 0.0,
            })
    if not candidates:
        return None
    previous = f"{json.dumps(candidates, indent=2)}\n"
    if node.observation != "":
        previous += f"again, your former observation: {node.observation}\n"
    return {"role": "user", "content": DIVERSITY_PROMPT.replace("{previous_candidate}", previous)}


async def solve_dfsdt(query_text: str, functions: list[dict[str, Any]], tool_descriptions: Sequence[tuple[str, str]],
                      model: ModelClient, env: ToolEnvironment, *, width: int = 2, max_query_count: int = 200,
                      single_chain_max_step: int = 12, seed: int = 42, query_id: str = "",
                      toolllama: bool = True, protocol: EvalProtocol = TOOLBENCH_EVAL,
                      trajectory_id: str | None = None) -> Trajectory:
    """Solve one query with DFSDT and return its trajectory (never raises on model or tool output).

    Arguments as `reasoning.react.solve_react`; `width` is upstream's `tree_beam_size`, `seed` seeds
    the choice of a give-up node when no answer is found.
    """
    functions = bare_functions(functions)
    trajectory = Trajectory(
        method=f"DFS_woFilter_w{width}", query=query_text, query_id=str(query_id), functions=functions,
        system_message=build_system_message(tool_descriptions),
        forward_args={"single_chain_max_step": single_chain_max_step, "tree_beam_size": width,
                      "max_query_count": max_query_count, "answer": 1, "with_filter": False},
        toolllama=toolllama, rng=random.Random(seed), id_rng=random.Random(f"{seed}/tool-call-ids"),
    )
    root = TreeNode(messages=initial_messages(query_text, tool_descriptions, functions, toolllama=toolllama))
    trajectory.roots.append(root)
    expander = Expander(trajectory, model, env, trajectory_id or str(query_id), protocol=protocol)
    walker = _DepthFirst(expander, width=width, max_query_count=max_query_count, max_depth=single_chain_max_step)
    await walker.visit(root)
    trajectory.choose_answer()
    return trajectory


class _DepthFirst:
    def __init__(self, expander: Expander, *, width: int, max_query_count: int, max_depth: int) -> None:
        self.expander = expander
        self.trajectory = expander.trajectory
        self.width = width
        self.max_query_count = max_query_count
        self.max_depth = max_depth
        self.expand_count = 0

    async def visit(self, node: TreeNode) -> int:
        """Expand `node` and its subtrees; return how many levels to go back (upstream's DFS)."""
        trajectory = self.trajectory
        node.expand_num = self.expand_count
        self.expand_count += 1
        if node.depth >= self.max_depth or node.pruned or node.is_terminal:
            if node.is_terminal:
                trajectory.win = True
                trajectory.terminal_nodes.append(node)
                return FINAL_ANSWER_BACK_LENGTH
            node.pruned = True
            if node.observation_code == STATUS_GIVE_UP:
                trajectory.give_up_nodes.append(node)
                return PRUNE_BACK_LENGTH
            return 1

        for _ in range(self.width):
            message = diversity_message(node) if node.children else None
            if message is not None:
                node.messages.append(message)
            output = await self.expander.ask(node)
            if output is None or trajectory.query_count >= self.max_query_count:
                return STOP_QUERY_LIMIT
            if message is not None:
                message["valid"] = False  # later children inherit it as an old, invalid message
            leaf = await self.expander.expand(node, output)
            if leaf.is_terminal:
                leaf.make_finish(FINAL_ANSWER_BACK_LENGTH)
            result = await self.visit(leaf)
            if len(trajectory.terminal_nodes) >= 1:  # answer=1: stop at the first answer
                return STOP_ANSWER_FOUND
            if result > 1:
                return result - 1
        return 1
