"""JSON Lines files (events, probe records, training trajectories), read with `jsonlines`.

One rule for every append-only file we write: a process killed mid-write leaves at most one torn line, the
last one. Readers that resume from such a file skip that line (`tolerate_torn_last_line=True`); any other
unreadable line is an error that names the file and the line.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonlines


class JsonlLineError(ValueError):
    """A line that is not JSON: `path`, its 1-based `line_number` and the parser's message."""

    def __init__(self, path: Path, line_number: int, message: str) -> None:
        super().__init__(f"{path}: line {line_number} is not JSON ({message})")
        self.path, self.line_number, self.message = path, line_number, message


def read_append_log(path: str | Path, *, fix: str) -> list[Any]:
    """Every record of an append-only log we write (a torn last line skipped); any other bad line is a
    `UserError` that names the file and the line, and says `fix`."""
    from toolbench_eval.errors import UserError

    try:
        return [value for _, value in read_jsonl(path, tolerate_torn_last_line=True)]
    except JsonlLineError as error:
        raise UserError(f"{error}; {fix}") from None


def read_jsonl(path: str | Path, *, tolerate_torn_last_line: bool = False) -> Iterator[tuple[int, Any]]:
    """`(line number, value)` for every non-empty line of `path`.

    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp(); path = os.path.join(folder, "e.jsonl")
    >>> _ = open(path, "w").write('{"a": 1}\\n\\n{"b": 2}\\n{"c": ')
    >>> list(read_jsonl(path, tolerate_torn_last_line=True))
    [(1, {'a': 1}), (3, {'b': 2})]
    """
    path = Path(path)
    numbered = [(number, line) for number, line in
                enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if line.strip()]
    last = numbered[-1][0] if numbered else 0
    reader = jsonlines.Reader(line for _, line in numbered)
    try:
        for number, _ in numbered:
            try:
                value = reader.read()
            except jsonlines.InvalidLineError as error:
                if tolerate_torn_last_line and number == last:
                    return
                raise JsonlLineError(path, number, str(error).split(" (line")[0]) from None
            yield number, value
    finally:
        reader.close()
