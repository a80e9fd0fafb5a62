"""Atomic result files: a reader (or a re-run after `kill -9`) sees the old file or the whole new one.

The write itself is `reasoning.answer.write_text_atomically`, which answer files use too; here every other
result file also passes the redaction rule, which keeps credentials out of them.
"""

from __future__ import annotations

import os
from pathlib import Path

from reasoning.answer import PARTIAL_SUFFIX, write_text_atomically
from toolbench_eval.redaction import redact

__all__ = ["PARTIAL_SUFFIX", "write_text_atomic"]


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` (redacted) to `path` atomically."""
    return write_text_atomically(path, redact(text))
