"""Atomic file writes: a reader (or a re-run after `kill -9`) sees the old file or the whole new one."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from toolbench_eval.redaction import redact

# Temporaries are hidden (leading dot) and end in this suffix, so they never match a result pattern
# such as `*_<method>.json` and a run directory can sweep up what a killed process left behind.
PARTIAL_SUFFIX = ".partial"

# A result file is an ordinary file: created 0o666 and cut down by the process umask (0644 under the
# usual 022), unlike `tempfile.mkstemp`'s private 0600 that a rename would carry over.
_ORDINARY_MODE = 0o666
_CREATE_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)


def create_partial_file(path: Path, suffix: str = PARTIAL_SUFFIX) -> tuple[int, Path]:
    """Open a new hidden temporary beside `path` (`.<name>.<random><suffix>`) for writing.

    The kernel applies the umask to the mode passed to `open`, so the file gets exactly the mode
    any other new file of this process would get, without reading or changing the process umask
    (`os.umask` can only be read by setting it, which would race with other threads).
    """
    for _ in range(100):
        temporary = path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}"
        try:
            return os.open(temporary, _CREATE_FLAGS, _ORDINARY_MODE), temporary
        except FileExistsError:
            continue  # another writer drew the same name: draw again
    raise FileExistsError(
        f"{path.parent}: could not create a temporary for {path.name}; remove stale .{path.name}.* files"
    )


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` to `path` through a temporary file in the same folder, fsync'd, then `os.replace`.

    Every result file passes here, so here the redaction rule keeps credentials out of them."""
    text = redact(text)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = create_partial_file(path)
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
