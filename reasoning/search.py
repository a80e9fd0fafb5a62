"""The two moves ReAct and DFSDT share: ask the model from a node, and turn its answer into nodes.

Message bookkeeping (documented choice): the older OpenAI style that ToolEval's converter and the
published StableToolBench/ToolBench answer files use. One model output becomes

    {"role": "assistant", "content": <the model's text>, "function_call": {"name", "arguments"}}
    {"role": "function", "name": <name>, "content": <observation>}

`content` is the model's raw text (end-of-sequence markers removed), so a ToolLLaMA prompt rebuilt
from the messages shows the model exactly what it wrote, as StableToolBench does. The `Thought` node
holds the parsed thought. A hallucinated name is renamed `invalid_hallucination_function_name` in
the messages (not in the Action node), as upstream does. Output that has no function call at all
(`ParseFailure`) still becomes Thought/Action/Action Input nodes, with an empty name, status 1 and
an observation that tells the model the expected format, so every decision costs the same depth and
the model gets feedback in the layout it reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reasoning.parser import ParsedStep, clean_model_text, parse_react_output
from reasoning.protocols import InfrastructureError, ModelClient, ModelOutput, ToolEnvironment
from reasoning.step import (
    HALLUCINATED_NAME,
    STATUS_FINAL_ANSWER,
    STATUS_GIVE_UP,
    STATUS_NO_SUCH_FUNCTION,
    StepResult,
    error_observation,
    execute_step,
)
from reasoning.trajectory import Trajectory
from reasoning.tree import ACTION, ACTION_INPUT, THOUGHT, TreeNode

FORMAT_ERROR = ("No function call found ({reason}). Your output should follow this format:\n"
                "Thought: <your reasoning>\nAction: <one function name>\nAction Input: <a JSON object>")


def model_view(messages: list[dict[str, Any]], *, keep_invalid: bool) -> list[dict[str, Any]]:
    """The messages a model is shown: invalid (old diversity) messages are kept for ToolLLaMA, as its
    upstream client keeps them, and dropped otherwise, as the OpenAI client does; the `valid` flag
    itself is bookkeeping and is removed."""
    return [{key: value for key, value in message.items() if key != "valid"}
            for message in messages if keep_invalid or message.get("valid", True) is not False]


@dataclass
class Search:
    """One trajectory's model, tools and counters."""

    trajectory: Trajectory
    model: ModelClient
    env: ToolEnvironment
    trajectory_id: str
    suffix_match: bool = False

    @property
    def function_names(self) -> list[str]:
        return [str(function.get("name", "")) for function in self.trajectory.functions]

    async def ask(self, node: TreeNode) -> ModelOutput | None:
        """One model call from `node`'s conversation; None (and `trajectory.error`) if the client fails.

        An `InfrastructureError` (the model's server is unavailable) propagates: the query is not answered."""
        messages = model_view(node.messages, keep_invalid=self.trajectory.toolllama)
        try:
            output = await self.model.generate(messages, self.trajectory.functions,
                                               trajectory_id=self.trajectory_id)
        except InfrastructureError:
            raise
        except Exception as error:  # noqa: BLE001  (an engine failure ends this trajectory, not the run)
            self.trajectory.query_count += 1
            self.trajectory.error = f"model call failed: {type(error).__name__}: {error}"
            return None
        self.trajectory.query_count += 1
        self.trajectory.total_tokens += _as_int(getattr(output, "prompt_tokens", 0)) + _as_int(
            getattr(output, "completion_tokens", 0))
        return output

    async def expand(self, node: TreeNode, output: ModelOutput) -> TreeNode:
        """Add Thought -> Action -> Action Input under `node` for one model output, run the call,
        and return the Action Input node (pruned on give-up, terminal on a final answer)."""
        text = clean_model_text(getattr(output, "text", ""))
        parsed = parse_react_output(text)
        if isinstance(parsed, ParsedStep):
            thought, name, arguments = parsed.thought, parsed.action, parsed.action_input
            result = await execute_step(name, arguments, self.function_names, self.env,
                                        suffix_match=self.suffix_match)
        else:
            thought, name, arguments = text, "", ""
            result = StepResult(error_observation(FORMAT_ERROR.format(reason=parsed.reason)),
                                STATUS_NO_SUCH_FUNCTION)
        call_name = HALLUCINATED_NAME if result.status == STATUS_NO_SUCH_FUNCTION else name

        thought_node = node.add_child(THOUGHT, thought)
        action_node = thought_node.add_child(ACTION, name)
        leaf = action_node.add_child(ACTION_INPUT, arguments)
        leaf.observation = result.observation
        leaf.observation_code = result.status
        leaf.messages.append({"role": "assistant", "content": text,
                              "function_call": {"name": call_name, "arguments": arguments}})
        leaf.messages.append({"role": "function", "name": call_name, "content": result.observation})
        if result.status == STATUS_GIVE_UP:
            leaf.pruned = True
        elif result.status == STATUS_FINAL_ANSWER:
            leaf.is_terminal = True
        return leaf


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
