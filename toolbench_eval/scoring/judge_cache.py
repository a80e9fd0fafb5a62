"""On-disk cache of judge replies, so re-scoring a run costs no requests.

One small JSON file per request, named by the sha256 of everything that shapes the reply (model,
temperature, function schema, prompt, evaluation round), stored as `<dir>/<k[:2]>/<k>.json` and
written atomically. Files are independent, so threads and interrupted runs cannot corrupt each other.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from toolbench_eval.atomic import write_text_atomic


def cache_key(payload: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of `payload`.

    >>> cache_key({"model": "m", "prompt": "p"}) == cache_key({"prompt": "p", "model": "m"})
    True
    """
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ResponseCache:
    """Key -> reply record (a JSON object)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def put(self, key: str, record: dict[str, Any]) -> None:
        write_text_atomic(self._path(key), json.dumps(record, ensure_ascii=False))
