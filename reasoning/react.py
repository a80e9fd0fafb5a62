"""ReAct, StableToolBench's `CoT@n` (normally `CoT@1`): one chain of decisions per try.

Upstream: `toolbench/inference/Algorithms/single_chain.py`. A try ends when the model gives an
answer (terminal), gives up (pruned), or the chain reaches `single_chain_max_step` nodes of depth
(pruned). Failed API calls do not end it; the model reads the error and continues. Up to `pass_at`
tries run until one answers.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from reasoning.eval_protocol import TOOLBENCH_EVAL, EvalProtocol
from reasoning.expansion import Expander
from reasoning.prompts import bare_functions, build_system_message, initial_messages
from reasoning.protocols import ModelClient, ToolEnvironment
from reasoning.trajectory import Trajectory
from reasoning.tree import TreeNode


async def solve_react(query_text: str, functions: list[dict[str, Any]], tool_descriptions: Sequence[tuple[str, str]],
                      model: ModelClient, env: ToolEnvironment, *, single_chain_max_step: int = 12,
                      query_id: str = "", toolllama: bool = True, pass_at: int = 1, seed: int = 42,
                      protocol: EvalProtocol = TOOLBENCH_EVAL, trajectory_id: str | None = None) -> Trajectory:
    """Solve one query with ReAct and return its trajectory (never raises on model or tool output).

    `functions` are the query's schemas with Finish last (bare or OpenAI-tool wrapped);
    `tool_descriptions` are `(standard_tool_name, description)` pairs for the system prompt;
    `trajectory_id` (default: `query_id`) is passed to the model client for its KV prefix cache.
    """
    functions = bare_functions(functions)
    trajectory = Trajectory(
        method=f"CoT@{pass_at}", query=query_text, query_id=str(query_id), functions=functions,
        system_message=build_system_message(tool_descriptions),
        forward_args={"single_chain_max_step": single_chain_max_step, "pass_at": pass_at, "answer": 1},
        toolllama=toolllama, rng=random.Random(seed), id_rng=random.Random(f"{seed}/tool-call-ids"),
    )
    expander = Expander(trajectory, model, env, trajectory_id or str(query_id), protocol=protocol)
    for _ in range(pass_at):
        root = TreeNode(messages=initial_messages(query_text, tool_descriptions, functions, toolllama=toolllama))
        trajectory.roots.append(root)
        last = await _run_chain(expander, root, single_chain_max_step)
        trajectory.tries.append(last)
        trajectory.terminal_nodes.append(last)
        if last.is_terminal and not last.pruned:
            trajectory.win = True
            break
        if trajectory.error is not None:
            break
    trajectory.choose_answer()
    return trajectory


async def _run_chain(expander: Expander, root: TreeNode, max_depth: int) -> TreeNode:
    node = root
    while True:
        output = await expander.ask(node)
        if output is None:  # the model client failed: the try ends here, without an answer
            node.pruned = True
            return node
        node = await expander.expand(node, output)
        if node.depth >= max_depth and not node.is_terminal:
            node.pruned = True
        if node.pruned or node.is_terminal:
            return node
