"""The two moves ReAct and DFSDT share: ask the model from a node, and turn its answer into nodes.

The protocol (`reasoning.eval_protocol`) decides every recorded detail. One model output becomes
Thought -> Action -> Action Input nodes and two messages:

- `message_format: function_call` (ours, the format of ToolBench's and StableToolBench's published
  answer files): `{"role": "assistant", "content", "function_call": {"name", "arguments"}}` and
  `{"role": "function", "name", "content"}`;
- `tool_calls` / `tool_calls_vllm` (StableToolBench's current ToolLLaMA clients, HF / vLLM):
  `{"role": "assistant", "content", "tool_calls": [{"id", "type", "function"}]}` (vLLM: `id, function,
  type`) and `{"role": "tool", "name", "content", "tool_call_id"}`, with random 8-character ids
  (`call_`-prefixed for HF), drawn from the trajectory's own seeded generator.

`content` is the model's turn as the protocol keeps it (`assistant_content`). The Thought node holds
that whole text (`thought_node: raw_output`, upstream) or the parsed thought (`parsed_thought`). A
hallucinated name is renamed `invalid_hallucination_function_name` in the messages (not in the Action
node), as upstream does. With the `tolerant` parser, output that has no function call at all
(`ParseFailure`) still becomes Thought/Action/Action Input nodes, with an empty name, status 1 and an
observation that tells the model the expected format, so every decision costs the same depth.
"""

from __future__ import annotations

import copy
import random
import string
from dataclasses import dataclass
from typing import Any

from reasoning.eval_protocol import TOOLBENCH_EVAL, EvalProtocol
from reasoning.parser import ParsedStep, assistant_text, parse_find_slices, parse_react_output
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
class Expander:
    """Grows one trajectory's tree: asks its model from a node and turns the answer (text or native calls) into nodes."""

    trajectory: Trajectory
    model: ModelClient
    env: ToolEnvironment
    trajectory_id: str
    protocol: EvalProtocol = TOOLBENCH_EVAL

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
        if output.message is not None:
            self._forget_sent_function_calls(node)
        if self.protocol.token_count == "hf_len_bug" and output.message is None:
            # Upstream's HF client adds `len(tokenizer(text))`: the number of keys of the encoding, 2.
            self.trajectory.total_tokens += 2
        else:
            self.trajectory.total_tokens += _as_int(output.prompt_tokens) + _as_int(output.completion_tokens)
        return output

    def _forget_sent_function_calls(self, node: TreeNode) -> None:
        """Upstream's `chat_completion_request` pops `function_call` from every message it sends; its ReAct
        shares message objects along a chain, so recorded messages lose the key once sent (`sdk_dict`)."""
        if self.protocol.native_message != "sdk_dict":
            return
        for message in node.messages:
            if message.get("valid", True) is not False:
                message.pop("function_call", None)

    async def expand(self, node: TreeNode, output: ModelOutput) -> TreeNode:
        """Add Thought -> Action -> Action Input under `node` for one model output, run the call,
        and return the Action Input node (pruned on give-up, terminal on a final answer)."""
        if output.message is not None:
            return await self.expand_native(node, output.message)
        protocol = self.protocol
        text = assistant_text(output.text, protocol.assistant_content)
        parsed = parse_find_slices(text) if protocol.parser == "find_slices" else parse_react_output(text)
        if isinstance(parsed, ParsedStep):
            thought, name, arguments = parsed.thought, parsed.action, parsed.action_input
            result = await execute_step(name, arguments, self.function_names, self.env, protocol=protocol)
        else:
            thought, name, arguments = text, "", ""
            result = StepResult(error_observation(FORMAT_ERROR.format(reason=parsed.reason)),
                                STATUS_NO_SUCH_FUNCTION)
        call_name = HALLUCINATED_NAME if result.status == STATUS_NO_SUCH_FUNCTION else name

        thought_node = node.add_child(THOUGHT, text if protocol.thought_node == "raw_output" else thought)
        action_node = thought_node.add_child(ACTION, name)
        leaf = action_node.add_child(ACTION_INPUT, arguments)
        leaf.observation = result.observation
        leaf.observation_code = result.status
        leaf.messages.extend(self._turn_messages(text, call_name, arguments, result.observation,
                                                 output.call_id))
        if result.status == STATUS_GIVE_UP:
            leaf.pruned = True
        elif result.status == STATUS_FINAL_ANSWER:
            leaf.is_terminal = True
        return leaf

    async def expand_native(self, node: TreeNode, message: dict[str, Any]) -> TreeNode:
        """A native function-calling turn, as StableToolBench's `single_chain`/`DFS` build it: a Thought node
        for non-null content, then Action -> Action Input per tool call (parallel calls chain one after the
        other), each run; the assistant message goes into the first call's Action Input node (or, without
        calls, the last node), a `tool` message into each. A hallucinated name is renamed in the message's
        call. DFSDT drops `None` fields and deep-copies messages per node, as upstream does (so a renamed
        call shows in the nodes made after the rename only); ReAct shares them along the chain."""
        dfs = self.trajectory.is_dfs
        if dfs or self.protocol.native_message == "clean":
            message = {key: value for key, value in message.items() if value is not None}
        if self.protocol.native_message == "clean":
            message.pop("refusal", None)
        current, succeeded = node, False
        if message.get("content") is not None:
            current = _child(current, THOUGHT, message["content"], deep=dfs)
        calls = message.get("tool_calls") or []
        for index, call in enumerate(calls):
            function = call.get("function") if isinstance(call, dict) else None
            function = function if isinstance(function, dict) else {}
            name, arguments = function.get("name"), function.get("arguments")
            action = _child(current, ACTION, name, deep=dfs)
            action.is_terminal = succeeded
            leaf = _child(action, ACTION_INPUT, arguments, deep=dfs)
            result = await execute_step(str(name), arguments if isinstance(arguments, str) else "",
                                        self.function_names, self.env, protocol=self.protocol)
            leaf.observation, leaf.observation_code = result.observation, result.status
            succeeded = succeeded or result.status == STATUS_FINAL_ANSWER
            leaf.is_terminal = succeeded
            if result.status == STATUS_GIVE_UP:
                leaf.pruned = True
            elif result.status == STATUS_NO_SUCH_FUNCTION:
                function["name"] = HALLUCINATED_NAME
            if index == 0:
                leaf.messages.append(message)
            leaf.messages.append({"role": "tool", "name": function.get("name"), "content": leaf.observation,
                                  "tool_call_id": call.get("id") if isinstance(call, dict) else None})
            current = leaf
        if not calls:
            current.messages.append(message)
        return current

    def _turn_messages(self, text: str, name: str, arguments: str, observation: str,
                       call_id: str | None) -> list[dict[str, Any]]:
        """The assistant message and the observation message of one decision, in the protocol's format."""
        style = self.protocol.message_format
        if style == "function_call":
            return [{"role": "assistant", "content": text, "function_call": {"name": name, "arguments": arguments}},
                    {"role": "function", "name": name, "content": observation}]
        if call_id is None:
            call_id = new_call_id(self.trajectory.id_rng, prefix="call_" if style == "tool_calls" else "")
        function = {"name": name, "arguments": arguments}
        if style == "tool_calls":
            call = {"id": call_id, "type": "function", "function": function}
        else:
            call = {"id": call_id, "function": function, "type": "function"}
        return [{"role": "assistant", "content": text, "tool_calls": [call]},
                {"role": "tool", "name": name, "content": observation, "tool_call_id": call_id}]


_ID_ALPHABET = string.ascii_letters + string.digits


def new_call_id(rng: random.Random, *, prefix: str = "call_") -> str:
    """A tool-call id as StableToolBench's clients draw them: 8 letters or digits, `call_`-prefixed (HF ToolLLaMA,
    OpenAI) or bare (its vLLM client)."""
    return prefix + "".join(rng.choices(_ID_ALPHABET, k=8))


def _child(node: TreeNode, node_type: str, description: Any, *, deep: bool) -> TreeNode:
    """`node.add_child`, with the messages deep-copied when `deep` (upstream DFS's `deepcopy`)."""
    child = node.add_child(node_type, description)
    if deep:
        child.messages = copy.deepcopy(child.messages)
    return child


def _as_int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
