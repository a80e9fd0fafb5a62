"""Atomic file writes: a reader (or a re-run after `kill -9`) sees the old file or the whole new one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Temporaries are hidden (leading dot) and end in this suffix, so they never match a result pattern
# such as `*_<method>.json` and a run directory can sweep up what a killed process left behind.
PARTIAL_SUFFIX = ".partial"


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` to `path` through a temporary file in the same folder, fsync'd, then `os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=PARTIAL_SUFFIX)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
