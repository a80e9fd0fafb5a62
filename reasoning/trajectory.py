"""What one solved query leaves behind: the tree(s), the chosen answer and the counters.

A `Trajectory` carries everything `reasoning.answer.answer_json` needs to write the StableToolBench
answer file, plus summary fields for the runner (`answered`, `gave_up`, `final_answer`,
`answer_text`, `query_count`, `total_tokens`, `error`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from reasoning.step import GIVE_ANSWER, STATUS_GIVE_UP, _finish_fields
from reasoning.tree import TreeNode

GIVE_ANSWER_FINISH = "give_answer"
GIVE_UP_FINISH = "give_up"


@dataclass(eq=False)
class Trajectory:
    method: str  # "CoT@1" | "DFS_woFilter_w2" (StableToolBench method names)
    query: str
    query_id: str
    functions: list[dict[str, Any]]  # bare schemas, Finish included, as written to `answer_generation.function`
    system_message: str  # the plain system prompt (what upstream's train_messages carry)
    forward_args: dict[str, Any]
    toolllama: bool = True
    rng: random.Random = field(default_factory=lambda: random.Random(42), repr=False)
    # Tool-call ids (`tool_calls` message format) come from their own generator, so drawing them never
    # changes which give-up node `rng` picks.
    id_rng: random.Random = field(default_factory=lambda: random.Random(43), repr=False)
    roots: list[TreeNode] = field(default_factory=list, repr=False)  # one per CoT try; one for DFSDT
    tries: list[TreeNode] = field(default_factory=list, repr=False)  # CoT: the last node of each try
    terminal_nodes: list[TreeNode] = field(default_factory=list, repr=False)
    give_up_nodes: list[TreeNode] = field(default_factory=list, repr=False)
    answer_node: TreeNode | None = field(default=None, repr=False)
    finish_type: str = GIVE_ANSWER_FINISH
    win: bool = False
    query_count: int = 0
    total_tokens: int = 0
    error: str | None = None

    @property
    def is_dfs(self) -> bool:
        return self.method.startswith("DFS")

    @property
    def valid_data(self) -> bool:
        """Upstream's `valid_data`: an answer node exists (DFSDT also counts a chosen give-up node)."""
        return self.answer_node is not None

    @property
    def answered(self) -> bool:
        """The model called Finish with `give_answer` (and a final answer)."""
        return self.answer_node is not None and self.finish_type == GIVE_ANSWER_FINISH

    @property
    def gave_up(self) -> bool:
        """No answer, and the model chose `give_up_and_restart` at least once."""
        if self.answered:
            return False
        if self.give_up_nodes:
            return True
        return any(node.observation_code == STATUS_GIVE_UP for node in self.tries)

    @property
    def final_answer(self) -> str:
        """The Finish call's raw arguments, as upstream stores `answer_generation.final_answer`."""
        return self.answer_node.description if self.answer_node is not None else ""

    @property
    def answer_text(self) -> str:
        """The `final_answer` field of a give_answer Finish call ("" otherwise)."""
        if not self.answered:
            return ""
        fields = _finish_fields(self.final_answer)
        if fields.get("return_type") != GIVE_ANSWER:
            return ""
        answer = fields.get("final_answer", "")
        return answer if isinstance(answer, str) else str(answer)

    def choose_answer(self) -> None:
        """Pick the answer node as upstream's `to_json(answer=True)` does: the first non-pruned terminal
        node; for DFSDT without one, a give-up node drawn with this trajectory's own seeded `rng`."""
        self.answer_node = None
        self.finish_type = GIVE_ANSWER_FINISH
        for node in self.terminal_nodes:
            if not node.pruned:
                self.answer_node = node
                return
        if self.is_dfs and self.give_up_nodes:
            self.answer_node = self.give_up_nodes[self.rng.randint(0, len(self.give_up_nodes) - 1)]
            self.finish_type = GIVE_UP_FINISH
