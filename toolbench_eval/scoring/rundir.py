"""Reading a run directory (`results/runs/<run-id>/`) the way the runner writes it.

Only the manifest and the answer files matter here; a query is finished iff its answer file exists.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from toolbench_eval.benchmark.model import GROUPS, Query
from toolbench_eval.errors import UserError
from toolbench_eval.paths import REPO_ROOT
from toolbench_eval.runner.manifest import Manifest
from toolbench_eval.scoring.labels import AnswerRecord, read_answer_dir


@dataclass(frozen=True)
class RunInfo:
    """A run directory as scoring and export see it: its manifest, and the names tables show."""

    path: Path
    manifest: Manifest
    run_id: str
    method: str  # "CoT@1" | "DFS_woFilter_w2", as answer files are named
    method_label: str  # "react" | "dfsdt" | "dfsdt-retriever", + " (native calls)" for tool_format=native
    model_name: str
    groups: tuple[str, ...]

    @property
    def scores_dir(self) -> Path:
        return self.path / "scores"

    def answers(self, group: str) -> dict[str, AnswerRecord]:
        """Finished answers of one group, keyed by query id."""
        return read_answer_dir(self.path / group, method=self.method)


def load_run(path: str | Path) -> RunInfo:
    """Read `RUN_DIR/manifest.json`; errors name the file, the field and the fix."""
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise UserError(
            f"{path}: not a run directory (no manifest.json); pass a directory under results/runs/"
        )
    manifest = Manifest.read(manifest_path)
    native = " (native calls)" if manifest.tool_format == "native" else ""
    return RunInfo(
        path=path,
        manifest=manifest,
        run_id=manifest.run_id,
        method=manifest.method,
        method_label=(manifest.method_label or manifest.method) + native,
        model_name=manifest.model_name or str(manifest.model.get("spec") or "model"),
        groups=tuple(manifest.groups or [g for g in GROUPS if (path / g).is_dir()]),
    )


def resolve_benchmark_root(root: str) -> Path:
    """A benchmark root as recorded: absolute, relative to the working directory, or repo-relative."""
    candidate = Path(root)
    if candidate.is_absolute() or candidate.exists():
        return candidate
    return REPO_ROOT / candidate


def load_queries(root: str, groups: list[str], *, required: bool) -> dict[str, dict[str, Query]] | None:
    """Benchmark queries by group and query id, via the project's benchmark loader.

    When `required` is false a loading failure returns None with a warning (the LLM judge can do
    without ground truth); when it is true the failure is raised as a `UserError`.
    """
    try:
        from toolbench_eval.benchmark.loader import load_benchmark

        # A bare name ("localtoolbench") is the loader's to resolve; anything path-like is resolved here.
        target: str | Path = root
        if "/" in root or "\\" in root or Path(root).exists():
            target = resolve_benchmark_root(root)
        loaded = load_benchmark(target, groups)
    except UserError:
        if required:
            raise
        warnings.warn(
            f"benchmark {root!r} could not be loaded; using the answered queries only", stacklevel=2
        )
        return None
    except (ImportError, OSError, ValueError, KeyError, TypeError) as error:  # loader missing or broken
        if required:
            raise UserError(
                f"benchmark {root!r}: cannot load queries ({type(error).__name__}: {error}); "
                "the rule judge needs the benchmark's ground truth (pass --benchmark PATH or use --judge llm)"
            ) from None
        warnings.warn(
            f"benchmark {root!r} could not be loaded ({error}); using answered queries", stacklevel=2
        )
        return None
    groups_iter = loaded.values() if isinstance(loaded, dict) else loaded
    result: dict[str, dict[str, Query]] = {}
    for group in groups_iter:
        result[group.name] = {str(q.query_id): q for q in group.queries}
    return result
