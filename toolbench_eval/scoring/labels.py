"""Answer files in, one common per-query record out.

Two inputs are read by their documented formats (research notes §1.5 and §1.6):

* raw answer files `<group>/<qid>_<method>.json` as ToolBench / StableToolBench inference writes them
  (and our runner writes them), and
* ToolEval "converted" files `{qid: {query, available_tools, answer{method, total_steps, final_answer,
  answer_details}}}` as `convert_to_answer_format.py` writes them.

Both become an `AnswerRecord`. For raw files the `answer_details` chain is rebuilt from the last entry
of `train_messages` (the full trajectory of the final decision), as upstream does for valid answers.
Where upstream differs for *invalid* answers (it converts a random CoT try, or flattens the whole DFS
tree) we take the last recorded trajectory instead, which is deterministic; such answers have an
empty final answer and are Unsolved by the short-circuit either way.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from toolbench_eval.errors import UserError, located


class AnswerStatus(Enum):
    """ToolEval's answer status. `str(AnswerStatus.Solved)` is `"AnswerStatus.Solved"`, the exact
    spelling StableToolBench stores in its `is_solved` maps."""

    Unsure = "Unsure"
    Unsolved = "Unsolved"
    Solved = "Solved"

    @property
    def value_for_sopr(self) -> float:
        """Solved 1, Unsure 0.5, Unsolved 0 (StableToolBench SoPR)."""
        return {"Solved": 1.0, "Unsure": 0.5, "Unsolved": 0.0}[self.value]

    @classmethod
    def parse(cls, text: str) -> AnswerStatus:
        """Read `"Solved"` or `"AnswerStatus.Solved"` (either spelling appears in files).

        >>> AnswerStatus.parse("AnswerStatus.Unsure")
        <AnswerStatus.Unsure: 'Unsure'>
        """
        name = str(text).strip().removeprefix("AnswerStatus.")
        try:
            return cls(name)
        except ValueError:
            raise ValueError(f"unknown answer status {text!r}; expected Solved, Unsolved or Unsure") from None


# Ordering used where two statuses are compared (win rate): a solved answer beats an unsure one,
# which beats an unsolved one, as in ToolEval's `normalized_openai_completions`.
STATUS_RANK = {AnswerStatus.Unsolved: 0, AnswerStatus.Unsure: 1, AnswerStatus.Solved: 2}


@dataclass(frozen=True)
class AnswerRecord:
    """What the scorers need to know about one query's answer."""

    query_id: str
    query: str
    method: str
    final_answer_raw: str  # as stored: usually the Finish call's JSON arguments string
    final_answer: str  # the `final_answer` text inside it (or the raw string when it is not JSON)
    finish_type: str | None  # "give_answer" | "give_up" | None (no Finish call)
    ends_with_finish: bool  # the last tool step of the chain is a Finish call
    answer_details: list[dict[str, Any]]
    total_steps: int
    available_tools: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""

    @property
    def tool_calls(self) -> int:
        """Number of tool steps in the chain (Finish included)."""
        return len(self.tool_messages())

    def tool_messages(self) -> list[Any]:
        """The tool steps of the chain in order, Finish included: `{"name", "arguments", "response"}` messages."""
        return list(_tool_messages(self.answer_details))

    def converted(self) -> dict[str, Any]:
        """The ToolEval `answer` object (what the LLM judge reads)."""
        return {
            "method": self.method,
            "total_steps": self.total_steps,
            "final_answer": self.final_answer_raw,
            "answer_details": self.answer_details,
        }

    def steps(self) -> tuple[str, str]:
        """ToolEval's `get_steps`: `"Step k: {...}"` lines for tool nodes, and the `"Final step: ..."`.

        The strings use Python's repr of the node message, as upstream does, because upstream's
        "last step is Finish" test looks for the text `'name': 'Finish'` in the final step.
        """
        lines, final = [], ""
        for k, message in enumerate(_tool_messages(self.answer_details), start=1):
            lines.append(f"Step {k}: {message}")
            final = f"Final step: {message}"
        return "\n".join(lines), final


def short_circuit(record: AnswerRecord | None) -> str | None:
    """Why an answer is Unsolved without asking a judge, or None when a judge must look.

    Upstream's rules: the last tool step is not `Finish`; the final answer is empty; the final
    answer mentions `give_up_and_restart`. A missing answer file is Unsolved too.
    """
    if record is None:
        return "no answer file"
    if not record.ends_with_finish:
        return "last step is not Finish"
    if record.final_answer_raw == "":
        return "empty final answer"
    if "give_up_and_restart" in record.final_answer_raw:
        return "gave up (give_up_and_restart)"
    return None


# ---------------------------------------------------------------------------------------------
# Chains of `answer_details` nodes


def _chain(nodes: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    # ToolEval walks the first `next` child from the root, so do we.
    node = nodes[0] if nodes else None
    while isinstance(node, dict):
        yield node
        following = node.get("next") or []
        node = following[0] if following else None


def _tool_messages(nodes: list[dict[str, Any]]) -> Iterator[Any]:
    for node in _chain(nodes):
        if node.get("role") == "tool" and node.get("message"):
            yield node["message"]


def _tool_name(message: Any) -> str:
    if isinstance(message, dict):
        return str(message.get("name", ""))
    return ""


def _to_nested(sequence: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """Linear (role, message) pairs -> ToolEval's nested `[{"role", "message", "next": [...]}]`."""
    head: dict[str, Any] = {"role": "system", "message": "", "next": []}
    tail = {"role": "user", "message": "", "next": []}
    head["next"].append(tail)
    for role, message in sequence:
        node = {"role": role, "message": message, "next": []}
        tail["next"].append(node)
        tail = node
    return [head]


def parse_finish_arguments(raw: str) -> tuple[str | None, str]:
    """(`return_type`, `final_answer` text) from a Finish call's arguments string.

    Parsed leniently like upstream (`strict=False`); text that is not a JSON object is taken as the
    answer itself with no return type.

    >>> parse_finish_arguments('{"return_type": "give_answer", "final_answer": "42"}')
    ('give_answer', '42')
    """
    if not isinstance(raw, str):
        return None, ""
    try:
        parsed = json.loads(raw, strict=False)
    except json.JSONDecodeError:
        return None, raw
    if not isinstance(parsed, dict):
        return None, raw
    return_type = parsed.get("return_type")
    return (str(return_type) if return_type is not None else None), str(parsed.get("final_answer", "") or "")


# ---------------------------------------------------------------------------------------------
# Raw answer files


def _sequence_from_messages(messages: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """Tool and assistant steps of one OpenAI-style message list (both the old `function_call` and
    the newer `tool_calls` styles), skipping the system and user prompts as upstream does."""
    sequence: list[tuple[str, Any]] = []
    responses_by_id = {
        m.get("tool_call_id"): m.get("content", "")
        for m in messages
        if m.get("role") == "tool" and m.get("tool_call_id") is not None
    }
    for index, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        if message.get("function_call"):
            call = message["function_call"]
            name = call.get("name", "")
            response = ""
            if name != "Finish" and index + 1 < len(messages):
                following = messages[index + 1]
                if following.get("role") in ("function", "tool"):
                    response = following.get("content", "")
            sequence.append(
                ("tool", {"name": name, "arguments": call.get("arguments", ""), "response": response})
            )
        elif message.get("tool_calls"):
            for call in message["tool_calls"]:
                function = call.get("function", {})
                name = function.get("name", "")
                response = "" if name == "Finish" else responses_by_id.get(call.get("id"), "")
                sequence.append(
                    ("tool", {"name": name, "arguments": function.get("arguments", ""), "response": response})
                )
                if name == "Finish":
                    break
        else:
            sequence.append(("assistant", message.get("content") or ""))
    return sequence


def _sequence_from_chain(chain: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """Tool and assistant steps from a CoT try's node chain (Thought / Action / Action Input)."""
    sequence: list[tuple[str, Any]] = []
    for index, node in enumerate(chain):
        kind = node.get("node_type")
        if kind == "Thought":
            sequence.append(("assistant", node.get("description", "")))
        elif kind == "Action":
            follow = chain[index + 1] if index + 1 < len(chain) else {}
            sequence.append(
                (
                    "tool",
                    {
                        "name": node.get("description", ""),
                        "arguments": follow.get("description", ""),
                        "response": follow.get("observation", ""),
                    },
                )
            )
    return sequence


def record_from_raw(data: dict[str, Any], *, query_id: str, method: str, source: str = "") -> AnswerRecord:
    """Build an `AnswerRecord` from a parsed raw answer file."""
    generation = data.get("answer_generation")
    if not isinstance(generation, dict):
        raise located(source or query_id, "not a ToolBench answer file", field="answer_generation")
    train_messages = generation.get("train_messages") or []
    if train_messages and isinstance(train_messages[-1], list):
        sequence = _sequence_from_messages(train_messages[-1])
    else:
        tries = data.get("trys") or []
        sequence = _sequence_from_chain(tries[-1].get("chain", [])) if tries else []
    raw = generation.get("final_answer", "")
    raw = raw if isinstance(raw, str) else json.dumps(raw)
    return_type, text = parse_finish_arguments(raw)
    finish_type = generation.get("finish_type")
    if finish_type is None:
        if return_type == "give_answer" or (return_type is None and generation.get("valid_data") and raw):
            finish_type = "give_answer"
        elif return_type == "give_up_and_restart":
            finish_type = "give_up"
    tool_steps = [message for role, message in sequence if role == "tool"]
    return AnswerRecord(
        query_id=query_id,
        query=str(generation.get("query", "")),
        method=method,
        final_answer_raw=raw,
        final_answer=text,
        finish_type=finish_type,
        ends_with_finish=bool(tool_steps) and _tool_name(tool_steps[-1]) == "Finish",
        answer_details=_to_nested(sequence),
        total_steps=len(sequence) + 2,  # upstream counts the blanked system and user nodes too
        available_tools=list(generation.get("function") or []),
        source=source,
    )


def read_raw_answer(path: Path, *, method: str) -> AnswerRecord:
    """Read one raw answer file `<qid>_<method>.json`."""
    path = Path(path)
    suffix = f"_{method}.json"
    if not path.name.endswith(suffix):
        raise located(path, f"answer file name must end with {suffix!r}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise located(path, f"cannot read answer file ({error}); delete it to re-run the query") from None
    return record_from_raw(data, query_id=path.name[: -len(suffix)], method=method, source=str(path))


def read_answer_dir(directory: Path, *, method: str) -> dict[str, AnswerRecord]:
    """All answers `<qid>_<method>.json` in one group directory, keyed by query id (missing dir: {})."""
    directory = Path(directory)
    if not directory.is_dir():
        return {}
    records = {}
    for path in sorted(directory.glob(f"*_{method}.json")):
        record = read_raw_answer(path, method=method)
        records[record.query_id] = record
    return records


# ---------------------------------------------------------------------------------------------
# ToolEval converted files


def record_from_converted(entry: dict[str, Any], *, query_id: str, source: str = "") -> AnswerRecord:
    """Build an `AnswerRecord` from one entry of a ToolEval converted file."""
    answer = entry.get("answer")
    if not isinstance(answer, dict) or "final_answer" not in answer:
        raise located(source, "converted entry has no answer.final_answer", entry=query_id, field="answer")
    details = answer.get("answer_details") or []
    raw = answer.get("final_answer") or ""
    raw = raw if isinstance(raw, str) else json.dumps(raw)
    return_type, text = parse_finish_arguments(raw)
    record = AnswerRecord(
        query_id=str(query_id),
        query=str(entry.get("query", "")),
        method=str(answer.get("method", "")),
        final_answer_raw=raw,
        final_answer=text,
        finish_type={"give_answer": "give_answer", "give_up_and_restart": "give_up"}.get(return_type or ""),
        ends_with_finish=False,
        answer_details=details,
        total_steps=int(answer.get("total_steps", 0) or 0),
        available_tools=list(entry.get("available_tools") or []),
        source=source,
    )
    _, final_step = record.steps()
    # Upstream's test, verbatim: the repr of the last tool node mentions 'name': 'Finish'.
    ends = "'name': 'Finish'" in final_step
    if record.finish_type is None and ends and raw and "give_up_and_restart" not in raw:
        record = replace(record, finish_type="give_answer")
    return replace(record, ends_with_finish=ends)


def read_converted(path: Path) -> dict[str, AnswerRecord]:
    """Read a ToolEval converted file (one group) into records keyed by query id."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: no such converted answer file") from None
    except (OSError, json.JSONDecodeError) as error:
        raise located(path, f"not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise located(path, "expected a JSON object {query_id: {query, available_tools, answer}}")
    return {
        str(qid): record_from_converted(entry, query_id=str(qid), source=str(path))
        for qid, entry in data.items()
    }
