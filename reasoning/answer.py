"""StableToolBench raw answer files: `<query_id>_<method>.json`, one per query.

The JSON reproduces upstream's `single_chain.to_json(answer=True)` (CoT) and
`DFS_tree_search.to_json(answer=True)` (DFSDT) key for key, in upstream's key order:

- CoT: `win, try_count, trys[{chain, win}], compare_candidates, forward_args, answer_generation{
  valid_data, final_answer, function, query_count, total_tokens, train_messages, chain, query}`.
- DFS: `win, tree{size, max_length, tree}, forward_args, compare_candidates, answer_generation{
  valid_data, query_count, total_tokens, final_answer, finish_type, function, chain[,
  train_messages], query}` (upstream only writes `train_messages` when there is an answer node).

`train_messages` carry the plain system prompt, as upstream's do (the ToolLLaMA augmentation is a
rendering detail). The protocol decides the rest: `node_json_quirks` reproduces two upstream bugs
(every node's `is_terminal` is written `false`, and a CoT try's `win` is the run's status *before*
that try, so a single winning try shows `false`); `answer_functions: openai_tools` writes
`answer_generation.function` as `{"type": "function", "function": ...}` (upstream's current code),
`bare` as the plain schemas (the published answer files); `answer_file_encoding: ascii` writes
`json.dump(indent=2)` bytes (ASCII escapes, no final newline) as upstream, `utf8_newline` UTF-8 text
with a final newline. Files are written atomically.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from reasoning.eval_protocol import TOOLBENCH_EVAL, EvalProtocol
from reasoning.trajectory import Trajectory
from reasoning.tree import tree_json


def answer_filename(query_id: str | int, method: str) -> str:
    """`<query_id>_<method>.json`, e.g. `588_CoT@1.json`."""
    return f"{query_id}_{method}.json"


def _train_messages(trajectory: Trajectory) -> list[list[dict[str, Any]]]:
    node = trajectory.answer_node
    if node is None:
        return []
    lists = node.train_messages()
    for messages in lists:
        if messages and messages[0].get("role") == "system":
            messages[0] = {**messages[0], "content": trajectory.system_message}
    return lists


def answer_json(trajectory: Trajectory, method: str | None = None, *,
                protocol: EvalProtocol = TOOLBENCH_EVAL) -> dict[str, Any]:
    """The raw answer JSON of a trajectory; `method` defaults to the trajectory's own."""
    method = method or trajectory.method
    if method.startswith("DFS") != trajectory.is_dfs:
        raise ValueError(f"method {method!r} does not match the trajectory's method {trajectory.method!r}")
    upstream_quirks = protocol.node_json_quirks
    candidates = [node.chain_json(upstream_quirks=upstream_quirks)
                  for node in trajectory.terminal_nodes if not node.pruned]
    functions = trajectory.functions
    if protocol.answer_functions == "openai_tools":
        functions = [{"type": "function", "function": function} for function in functions]
    if trajectory.is_dfs:
        return _dfs_json(trajectory, candidates, upstream_quirks, functions)
    return _cot_json(trajectory, candidates, upstream_quirks, functions)


def _cot_json(trajectory: Trajectory, candidates: list, upstream_quirks: bool,
              functions: list[dict[str, Any]]) -> dict[str, Any]:
    trys = []
    won_before = False
    for last in trajectory.tries:
        won = last.is_terminal and not last.pruned
        trys.append({"chain": last.chain_json(upstream_quirks=upstream_quirks),
                     "win": won_before if upstream_quirks else won})
        won_before = won_before or won
    return {
        "win": trajectory.win,
        "try_count": len(trajectory.tries),
        "trys": trys,
        "compare_candidates": candidates,
        "forward_args": dict(trajectory.forward_args),
        "answer_generation": {
            "valid_data": trajectory.valid_data,
            "final_answer": trajectory.final_answer,
            "function": functions,
            "query_count": trajectory.query_count,
            "total_tokens": trajectory.total_tokens,
            "train_messages": _train_messages(trajectory),
            "chain": [],
            "query": trajectory.query,
        },
    }


def _dfs_json(trajectory: Trajectory, candidates: list, upstream_quirks: bool,
              functions: list[dict[str, Any]]) -> dict[str, Any]:
    generation: dict[str, Any] = {
        "valid_data": trajectory.valid_data,
        "query_count": trajectory.query_count,
        "total_tokens": trajectory.total_tokens,
        "final_answer": trajectory.final_answer,
        "finish_type": trajectory.finish_type,
        "function": functions,
        "chain": [],
    }
    if trajectory.answer_node is not None:
        generation["train_messages"] = _train_messages(trajectory)
    generation["query"] = trajectory.query
    return {
        "win": trajectory.win,
        "tree": tree_json(trajectory.roots[0], upstream_quirks=upstream_quirks),
        "forward_args": dict(trajectory.forward_args),
        "compare_candidates": candidates,
        "answer_generation": generation,
    }


ANSWER_FILE_ENCODINGS = ("ascii", "utf8_newline")


def dumps_answer(data: Any, encoding: str = "utf8_newline") -> str:
    """The exact text of an answer file (stable for equal data), in the protocol's `answer_file_encoding`.

    >>> print(dumps_answer({"a": "é"}, "ascii"))
    {
      "a": "\\u00e9"
    }
    """
    if encoding == "ascii":
        return json.dumps(data, indent=2)
    if encoding != "utf8_newline":
        raise ValueError(f"answer file encoding {encoding!r} is not one of {list(ANSWER_FILE_ENCODINGS)}")
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# Temporaries are hidden (leading dot) and end in this suffix, so they never match a result pattern such as
# `*_<method>.json`, and a run folder can sweep up what a killed process left behind.
PARTIAL_SUFFIX = ".partial"


def open_temporary(path: Path) -> tuple[int, Path]:
    """A new hidden `.<name>.<random>.partial` beside `path`, opened for writing.

    Created with mode 0o666 for the kernel to cut down by the umask, so the file ends up readable like any
    other new file (0644 under umask 022), without touching the process umask; `tempfile` would make it 0600.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        temporary = path.parent / f".{path.name}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}"
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue  # another writer drew the same name: draw again
    raise FileExistsError(f"{path.parent}: could not create a temporary for {path.name}; "
                          f"remove stale .{path.name}.* files")


def write_text_atomically(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` through a temporary in the same folder, fsync'd, then `os.replace`: a reader (or a re-run
    after `kill -9`) sees the old file or the whole new one, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = open_temporary(path)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_answer_file(path: str | os.PathLike[str], data: Any, *, encoding: str = "utf8_newline") -> Path:
    """Write `data` as an answer file, atomically (a killed run leaves nothing or the whole answer)."""
    return write_text_atomically(path, dumps_answer(data, encoding))
