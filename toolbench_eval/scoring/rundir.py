"""Reading a run directory (`results/runs/<run-id>/`) the way the runner writes it.

Only the manifest and the answer files matter here; a query is finished iff its answer file exists.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolbench_eval.benchmark.model import GROUPS, Query
from toolbench_eval.errors import UserError, located
from toolbench_eval.paths import REPO_ROOT
from toolbench_eval.scoring.labels import AnswerRecord, read_answer_dir


@dataclass(frozen=True)
class RunInfo:
    """The parts of `manifest.json` that scoring and export use."""

    path: Path
    run_id: str
    method: str  # "CoT@1" | "DFS_woFilter_w2"
    method_label: str  # "react" | "dfsdt" | "dfsdt-retriever", + " (native calls)" for tool_format=native
    model_name: str
    buckets: dict[str, Any] | None
    benchmark_name: str
    benchmark_root: str
    groups: tuple[str, ...]
    manifest: dict[str, Any]

    @property
    def scores_dir(self) -> Path:
        return self.path / "scores"

    @property
    def bases(self) -> tuple[float, ...]:
        """The RoPE bases of Attention Buckets, or () for a run without buckets."""
        if not self.buckets:
            return ()
        return tuple(float(b) for b in self.buckets.get("bases") or ())

    def answers(self, group: str) -> dict[str, AnswerRecord]:
        """Finished answers of one group, keyed by query id."""
        return read_answer_dir(self.path / group, method=self.method)

    def selected_query_ids(self, group: str, benchmark_ids: list[str]) -> list[str]:
        """The query ids the run was asked to solve, in benchmark order.

        An explicit `"query_ids": {group: [...]}` (top level or in `config`) wins; else `config.limit`
        (the runner's `--limit N`: the first N queries of each group); else the whole group.
        """
        config = self.manifest.get("config") or {}
        for holder in (self.manifest, config):
            selection = holder.get("query_ids") if isinstance(holder, dict) else None
            if isinstance(selection, dict) and group in selection:
                return [str(q) for q in selection[group]]
        limit = config.get("limit") if isinstance(config, dict) else None
        if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0:
            return benchmark_ids[:limit]
        return benchmark_ids


def load_run(path: str | Path) -> RunInfo:
    """Read `RUN_DIR/manifest.json`; errors name the file, the field and the fix."""
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise UserError(
            f"{path}: not a run directory (no manifest.json); pass a directory under results/runs/"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise located(manifest_path, f"not valid JSON ({error})") from None
    for key in ("run_id", "method"):
        if not manifest.get(key):
            raise located(manifest_path, "required field is missing; the runner writes it", field=key)
    benchmark = manifest.get("benchmark") or {}
    groups = tuple(manifest.get("groups") or [g for g in GROUPS if (path / g).is_dir()])
    model = manifest.get("model") or {}
    return RunInfo(
        path=path,
        run_id=str(manifest["run_id"]),
        method=str(manifest["method"]),
        method_label=str(manifest.get("method_label") or manifest["method"])
        + (" (native calls)" if manifest.get("tool_format") == "native" else ""),
        model_name=str(manifest.get("model_name") or model.get("spec") or "model"),
        buckets=manifest.get("buckets") or None,
        benchmark_name=str(benchmark.get("name") or ""),
        benchmark_root=str(benchmark.get("root") or ""),
        groups=groups,
        manifest=manifest,
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
