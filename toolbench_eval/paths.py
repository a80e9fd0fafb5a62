"""Where bundled data and caches live. Everything resolves offline; nothing here downloads."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("TOOLBENCH_EVAL_DATA", REPO_ROOT / "data"))
RESULTS_DIR = REPO_ROOT / "results"


def cache_dir() -> Path:
    """A writable cache (converted models, databases, embeddings); override with TOOLBENCH_EVAL_CACHE."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "toolbench-eval"
    path = Path(os.environ.get("TOOLBENCH_EVAL_CACHE", default))
    path.mkdir(parents=True, exist_ok=True)
    return path
