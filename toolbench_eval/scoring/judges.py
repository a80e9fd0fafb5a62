"""Judges: decide whether an answer solved its query, and which of two answers is better.

Every judge has the same two questions (`Judge`):

* `judge(query, answer, round=r) -> Verdict(status, reason)`: Solved / Unsolved / Unsure;
* `prefer(query, answer_a, answer_b, round=r) -> "a" | "b" | "tie"`.

`round` is the evaluation round; a sampling judge (the LLM) answers each round independently, a
deterministic one ignores it. Two judges exist: `RuleJudge` here (LocalToolBench ground truth) and
`LLMJudge` in `llm_judge.py` (any OpenAI-compatible endpoint, ToolEval's rubric).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from toolbench_eval.benchmark.model import Query
from toolbench_eval.errors import UserError
from toolbench_eval.scoring.labels import AnswerRecord, AnswerStatus, short_circuit
from toolbench_eval.scoring.normalize import states_fact

Preference = Literal["a", "b", "tie"]


@dataclass(frozen=True)
class Verdict:
    """A judge's decision on one answer in one round."""

    status: AnswerStatus
    reason: str = ""
    malformed: bool = False  # the judge's reply could not be read; status is then Unsure


class Judge(Protocol):
    """What pass rate and win rate need from a judge."""

    #: Short stable name used in file names: "rule" or "llm-<model>".
    id: str
    #: True when every round gives the same answer (scorers then ask once and repeat it).
    deterministic: bool
    #: How many queries may be judged at once.
    concurrency: int
    #: True when it reads the benchmark's ground truth (queries without it cannot be scored).
    needs_ground_truth: bool
    #: True when judging calls a model (costs money or time): `export` then never judges on its own.
    calls_a_model: bool

    def use_cache_dir(self, directory: Any) -> None:
        """Where to keep the judge's replies (a judge that asks nobody keeps nothing)."""
        ...

    def judge(self, query: Query, answer: AnswerRecord, *, round: int = 0) -> Verdict: ...

    def prefer(
        self, query: Query, answer_a: AnswerRecord, answer_b: AnswerRecord, *, round: int = 0
    ) -> Preference: ...

    def describe(self) -> dict[str, Any]:
        """Settings recorded in score files (never secrets)."""
        ...


class RuleJudge:
    """Ground-truth judge for LocalToolBench.

    Solved when the answer ends with `Finish(give_answer)` and its final answer states every required
    fact (`Query.ground_truth.facts`, matched with `normalize.states_fact`); Unsolved otherwise. It
    never says Unsure. The upstream short-circuits (no Finish, empty answer, give-up) apply first.

    `prefer`: the answer stating more required facts wins (an answer that did not finish with
    `give_answer` states none); with equal facts the one with fewer tool calls wins; else a tie.
    """

    id = "rule"
    deterministic = True
    concurrency = 1
    needs_ground_truth = True
    calls_a_model = False

    def use_cache_dir(self, directory: Any) -> None:
        """Nothing to cache: the rule judge asks nobody."""

    def describe(self) -> dict[str, Any]:
        return {"name": "rule", "normalisation": "toolbench_eval.scoring.normalize (NFKC, casefold, numbers)"}

    @staticmethod
    def _facts(query: Query) -> tuple[str, ...]:
        if query.ground_truth is None:
            raise UserError(
                f"query {query.query_id} ({query.group}): no ground truth, "
                "so the rule judge cannot score it; "
                "score this benchmark with --judge llm"
            )
        return query.ground_truth.facts

    def facts_stated(self, query: Query, answer: AnswerRecord | None) -> int:
        """How many required facts the answer's final answer states (0 unless it gave an answer)."""
        facts = self._facts(query)
        if short_circuit(answer) is not None or answer is None or answer.finish_type != "give_answer":
            return 0
        return sum(states_fact(answer.final_answer, fact) for fact in facts)

    def judge(self, query: Query, answer: AnswerRecord, *, round: int = 0) -> Verdict:
        facts = self._facts(query)
        reason = short_circuit(answer)
        if reason is not None:
            return Verdict(AnswerStatus.Unsolved, reason)
        if answer.finish_type != "give_answer":
            return Verdict(AnswerStatus.Unsolved, f"finished with {answer.finish_type or 'no Finish'}")
        missing = [fact for fact in facts if not states_fact(answer.final_answer, fact)]
        if missing:
            return Verdict(AnswerStatus.Unsolved, "missing facts: " + "; ".join(missing))
        return Verdict(AnswerStatus.Solved, f"states all {len(facts)} required facts")

    def prefer(
        self, query: Query, answer_a: AnswerRecord, answer_b: AnswerRecord, *, round: int = 0
    ) -> Preference:
        facts_a, facts_b = self.facts_stated(query, answer_a), self.facts_stated(query, answer_b)
        if facts_a != facts_b:
            return "a" if facts_a > facts_b else "b"
        calls_a = answer_a.tool_calls if answer_a else 10**9
        calls_b = answer_b.tool_calls if answer_b else 10**9
        if calls_a != calls_b:
            return "a" if calls_a < calls_b else "b"
        return "tie"
