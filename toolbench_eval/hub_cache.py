"""Model specs that name a Hugging Face repo (`Org/Name`, optionally `@revision`), found in the local cache only.

Runs never download: a repo id must already be in this machine's Hugging Face cache (the standard layout,
``<cache>/models--Org--Name/snapshots/<commit>/``, with ``refs/<branch or tag>`` holding the commit). The lookup
is huggingface_hub's own (`snapshot_download(..., local_files_only=True)`), so a branch, a tag or a commit
resolves exactly as transformers would resolve it offline; we add short commit hashes (a unique prefix of a
cached snapshot) and errors that name the folder looked in and the fix.

>>> parse_repo_spec("Qwen/Qwen2.5-7B-Instruct@main")
RepoSpec(repo_id='Qwen/Qwen2.5-7B-Instruct', revision='main')
>>> parse_repo_spec("/models/llama") is None, parse_repo_spec("./llama") is None, parse_repo_spec("llama") is None
(True, True, True)
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from toolbench_eval.errors import UserError

# `Org/Name` as the Hub spells repo ids (word characters, '-', '.'), then an optional `@revision`. A bare `Name`
# is not taken as a repo id: it is far more often a local folder's name, and current Hub ids have an owner.
_REPO_SPEC = re.compile(r"(?P<repo>[A-Za-z0-9_][\w.-]*/[\w.-]*[A-Za-z0-9_])(?:@(?P<revision>[^\s@]+))?")
_SHORT_COMMIT = re.compile(r"[0-9a-f]{7,39}")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


@dataclass(frozen=True)
class RepoSpec:
    repo_id: str
    revision: str | None = None  # None: the default branch, `main`

    def __str__(self) -> str:
        return self.repo_id + (f"@{self.revision}" if self.revision else "")

    @property
    def folder_name(self) -> str:
        """The repo's folder inside the cache (`models--Org--Name`)."""
        return "models--" + self.repo_id.replace("/", "--")


def parse_repo_spec(spec: str) -> RepoSpec | None:
    """The repo a spec names, or None when it is not shaped like `Org/Name[@revision]` (a path, a builtin name)."""
    match = _REPO_SPEC.fullmatch(spec.strip())
    if match is None or "--" in match["repo"] or ".." in match["repo"]:  # the Hub refuses both in repo ids
        return None
    return RepoSpec(match["repo"], match["revision"])


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache this process would use, read from the environment now.

    Same precedence as huggingface_hub (HF_HUB_CACHE, the legacy HUGGINGFACE_HUB_CACHE, HF_HOME/hub,
    XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub), but read at call time: huggingface_hub reads these
    variables once, at import, so a cache pointed at afterwards would be ignored."""
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return Path(os.path.expandvars(os.environ[variable])).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def cached_snapshot(repo: RepoSpec, cache: Path | None = None) -> Path:
    """The snapshot folder of `repo` in the local cache; never downloads. A `UserError` naming the repo, the
    folder looked in and the fix when it is not there (or only partly)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    cache = cache or hub_cache_dir()
    revision = _full_commit(cache / repo.folder_name, repo.revision) if repo.revision else "main"
    try:
        return Path(snapshot_download(repo.repo_id, revision=revision, cache_dir=cache, local_files_only=True))
    except LocalEntryNotFoundError as error:
        incomplete = type(error).__name__ == "IncompleteSnapshotError"  # huggingface_hub >= 1.x: files missing
        raise UserError(_not_cached_message(repo, cache, incomplete=incomplete)) from None


def check_snapshot_has_weights(repo: RepoSpec, folder: Path) -> None:
    """Refuse a cached snapshot that holds a config but no weights: what `AutoConfig.from_pretrained` online, or an
    interrupted download, leaves behind; loading it would fail deep inside transformers or vLLM."""
    if not any(path.name.endswith(WEIGHT_SUFFIXES) for path in folder.iterdir()):
        raise UserError(f"{repo}: the cached snapshot {folder} has no weight files (*.safetensors, *.bin): only "
                        f"part of the repo was downloaded; fix: {_download_hint(repo)}")


def _full_commit(repo_folder: Path, revision: str) -> str:
    """`revision` itself, or the full commit of the one cached snapshot whose name starts with it (a short hash,
    as `git log --oneline` and the Hub's web pages show commits)."""
    if not _SHORT_COMMIT.fullmatch(revision) or (repo_folder / "refs" / revision).is_file():
        return revision
    snapshots = repo_folder / "snapshots"
    matches = sorted(p.name for p in snapshots.iterdir() if p.name.startswith(revision)) if snapshots.is_dir() else []
    return matches[0] if len(matches) == 1 else revision


def _cached_revisions(repo_folder: Path) -> list[str]:
    """What the cache holds for one repo, for error messages: `ref -> commit` lines, then unreferenced commits."""
    refs_dir, snapshots = repo_folder / "refs", repo_folder / "snapshots"
    refs = {}
    if refs_dir.is_dir():
        refs = {str(p.relative_to(refs_dir)): p.read_text(encoding="utf-8").strip()
                for p in sorted(refs_dir.rglob("*")) if p.is_file()}
    lines = [f"{ref} -> {commit[:12]}" for ref, commit in refs.items()]
    if snapshots.is_dir():
        lines += [p.name[:12] for p in sorted(snapshots.iterdir()) if p.name not in refs.values()]
    return lines


def _download_hint(repo: RepoSpec) -> str:
    revision = f" --revision {repo.revision}" if repo.revision else ""
    return (f"on a machine with internet access run `hf download {repo.repo_id}{revision}` (older huggingface_hub: "
            "`huggingface-cli download ...`) and copy its cache folder here (then point HF_HUB_CACHE or HF_HOME at "
            "it), or pass a local checkpoint folder with pretrained=PATH")


def _not_cached_message(repo: RepoSpec, cache: Path, *, incomplete: bool) -> str:
    folder = cache / repo.folder_name
    revision = repo.revision or "main"
    if incomplete:
        what = f"the cached snapshot of revision {revision!r} in {folder} is incomplete (an interrupted download?)"
    elif folder.is_dir():
        held = _cached_revisions(folder)
        what = (f"revision {revision!r} is not in the cache folder {folder} (it holds: "
                f"{', '.join(held) if held else 'nothing'})")
    else:
        what = f"not in the local Hugging Face cache (looked for {folder}; no local folder of that name either)"
    return f"{repo}: {what}; models are never downloaded at run time; fix: {_download_hint(repo)}"
