"""A run's manifest (`<run>/manifest.json`): what ran, written when the run starts and read on resume, by
`score`, `export`, `compare` and `diagnose`.

Reading a manifest and writing it again gives the same bytes, for the manifests of earlier versions too:
fields were only ever added, so keys an older file lacks stay absent, and keys this version does not know
are kept (after the known ones).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from toolbench_eval.errors import located
from toolbench_eval.json_fields import check, read_fields


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """What a run was: the model and its weights, the Attention Buckets bases, the benchmark and the queries
    asked, the protocol, the full config, package versions and the code's git revision."""

    # The JSON keys, in the order the runner writes them.
    run_id: str
    created: str = ""
    method: str  # StableToolBench's name: CoT@1 | DFS_woFilter_w2
    method_label: str = ""  # react | dfsdt | dfsdt-retriever
    model: dict[str, Any] = field(default_factory=dict)  # engine, spec, args, weights
    model_name: str = ""
    buckets: dict[str, Any] | None = None  # bases, fusion, source, search settings
    benchmark: dict[str, Any] = field(default_factory=dict)  # name, root
    groups: list[str] = field(default_factory=list)
    query_ids: dict[str, list[str]] = field(default_factory=dict)
    decoding: dict[str, Any] = field(default_factory=dict)
    prompt_style: str = ""
    tool_format: str = ""  # react | native
    protocol: dict[str, Any] | str | None = None  # `EvalProtocol.manifest()`: name, label, overrides, switches
    single_chain_max_step: int | None = None
    max_query_count: int | None = None
    width: int | None = None
    seed: int | None = None
    tool_backend: dict[str, Any] = field(default_factory=dict)
    retriever: dict[str, Any] | None = None
    config: dict[str, Any] = field(default_factory=dict)  # `RunConfig.as_dict()`
    versions: dict[str, Any] = field(default_factory=dict)
    git_revision: str | None = None
    absent: frozenset[str] = field(default=frozenset(), repr=False, compare=False)  # keys the file lacked
    unknown: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)  # keys of later versions

    @classmethod
    def read(cls, path: Path) -> Manifest:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise located(path, f"not valid JSON ({error}); restore it, or start the run again in a new "
                                "folder (--out)") from None
        return cls.from_json(data, path)

    @classmethod
    def from_json(cls, data: Any, source: str | Path) -> Manifest:
        """Checked: a missing `run_id` or `method`, or a field of the wrong type, is a UserError naming
        `source` and the field."""
        values = read_fields(cls, data, source, only=frozenset(JSON_KEYS))
        for key in ("run_id", "method"):
            if not values[key]:
                raise located(source, "is empty; the runner writes it", field=key)
        _check_inner_fields(values, source)
        return cls(**values, absent=frozenset(JSON_KEYS) - data.keys(),
                   unknown={k: v for k, v in data.items() if k not in JSON_KEYS})

    def to_json(self) -> dict[str, Any]:
        known = {key: getattr(self, key) for key in JSON_KEYS if key not in self.absent}
        return {**known, **self.unknown}

    def dumps(self) -> str:
        """The text of manifest.json (equal manifests give equal bytes)."""
        return json.dumps(self.to_json(), ensure_ascii=False, indent=2) + "\n"

    def replace(self, **changes: Any) -> Manifest:
        """A copy with `changes`; a key the file lacked is written once it is given a value."""
        return replace(self, absent=self.absent - changes.keys(), **changes)

    # ---- what the fields mean --------------------------------------------------------------------
    @property
    def weights(self) -> str | None:
        """The fingerprint of the weights that made the answers (None where unrecorded)."""
        return self.model.get("weights")

    def with_weights(self, weights: str | None) -> Manifest:
        return self.replace(model={**self.model, "weights": weights})

    @property
    def bases(self) -> tuple[float, ...]:
        """The RoPE bases of Attention Buckets, or () for a run without buckets."""
        return tuple(float(b) for b in (self.buckets or {}).get("bases") or ())

    @property
    def benchmark_name(self) -> str:
        return str(self.benchmark.get("name") or "")

    @property
    def benchmark_root(self) -> str:
        return str(self.benchmark.get("root") or "")

    @property
    def protocol_label(self) -> str | None:
        """The recorded protocol's label (its name plus overridden switches), or a bare recorded name; None for
        runs made before manifests recorded a protocol."""
        recorded = self.protocol
        if isinstance(recorded, dict):
            recorded = recorded.get("label") or recorded.get("name")
        return str(recorded) if recorded else None

    @property
    def protocol_switches(self) -> dict[str, Any] | None:
        switches = self.protocol.get("switches") if isinstance(self.protocol, dict) else None
        return switches if isinstance(switches, dict) else None

    def selected_query_ids(self, group: str, benchmark_ids: list[str]) -> list[str]:
        """The query ids the run was asked to solve, in benchmark order.

        An explicit `"query_ids": {group: [...]}` (top level or in `config`) wins; else `config.limit`
        (the runner's `--limit N`: the first N queries of each group); else the whole group.
        """
        for selection in (self.query_ids, self.config.get("query_ids")):
            if isinstance(selection, dict) and group in selection:
                return [str(q) for q in selection[group]]
        limit = self.config.get("limit")
        if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0:
            return benchmark_ids[:limit]
        return benchmark_ids


JSON_KEYS = tuple(f.name for f in fields(Manifest) if f.name not in ("absent", "unknown"))


def _check_inner_fields(values: dict[str, Any], source: str | Path) -> None:
    """The inner fields that resume and scoring read: ids and names are strings, bases are numbers."""
    bases = (values.get("buckets") or {}).get("bases")
    inner = [
        *((f"groups[{i}]", group, str) for i, group in enumerate(values.get("groups", []))),
        *((f"query_ids.{group}", ids, list) for group, ids in values.get("query_ids", {}).items()),
        *((f"benchmark.{key}", values.get("benchmark", {}).get(key), str | None) for key in ("name", "root")),
        *((f"model.{key}", values.get("model", {}).get(key), str | None) for key in ("spec", "weights")),
        ("buckets.bases", bases, list | None),
        *((f"buckets.bases[{i}]", base, float) for i, base in enumerate(bases if isinstance(bases, list) else [])),
    ]
    for path, value, expected in inner:
        check(value, expected, source, path)
