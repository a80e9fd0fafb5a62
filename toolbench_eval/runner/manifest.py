"""A run's manifest (`<run>/manifest.json`): what ran, written when the run starts and read on resume, by
`score`, `export`, `compare` and `diagnose`.

Reading a manifest and writing it again gives the same bytes, for the manifests of earlier versions too:
fields were only ever added, so keys an older file lacks stay absent, and keys this version does not know
are kept (after the known ones).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from typing_extensions import TypedDict  # pydantic reads typing's TypedDict only from Python 3.12

from toolbench_eval.errors import located
from toolbench_eval.json_fields import Number, one_of, validated

# The blocks whose inner fields resume and scoring read. pydantic writes a block's declared keys first, so
# they are declared in the order the runner writes them; the rest follow as read. A block needs a config of
# its own (the manifest's does not reach it): `__pydantic_config__`, as pydantic 2.5 has no `with_config`.
BLOCK = ConfigDict(extra="allow", strict=True)


class ModelBlock(TypedDict, total=False):
    __pydantic_config__ = BLOCK
    engine: str
    spec: str | None
    args: dict[str, Any]
    weights: str | None


class BucketsBlock(TypedDict, total=False):
    __pydantic_config__ = BLOCK
    bases: list[Number] | None  # then fusion, source, search settings


class BenchmarkBlock(TypedDict, total=False):
    __pydantic_config__ = BLOCK
    name: str | None
    root: str | None


class Manifest(BaseModel):
    """What a run was: the model and its weights, the Attention Buckets bases, the benchmark and the queries
    asked, the protocol, the full config, package versions and the code's git revision."""

    # Strict: a JSON file holds no "1" for 1, no true for 1. Extra keys are those of later versions, kept.
    # `model_name` is a key of the file; pydantic 2.5 would warn that `model_` is its own namespace.
    model_config = ConfigDict(extra="allow", strict=True, frozen=True, protected_namespaces=())

    # The JSON keys, in the order the runner writes them.
    run_id: str = Field(min_length=1)
    created: str = ""
    method: str = Field(min_length=1)  # StableToolBench's name: CoT@1 | DFS_woFilter_w2
    method_label: str = ""  # react | dfsdt | dfsdt-retriever
    model: ModelBlock = {}
    model_name: str = ""
    buckets: BucketsBlock | None = None
    benchmark: BenchmarkBlock = {}
    groups: list[str] = []
    query_ids: dict[str, list[str]] = {}
    decoding: dict[str, Any] = {}
    prompt_style: str = ""
    tool_format: str = ""  # react | native
    # `EvalProtocol.manifest()`: name, label, overrides, switches
    protocol: Annotated[dict[str, Any] | str, one_of(dict, str)] | None = None
    single_chain_max_step: int | None = None
    max_query_count: int | None = None
    width: int | None = None
    seed: int | None = None
    tool_backend: dict[str, Any] = {}
    retriever: dict[str, Any] | None = None
    config: dict[str, Any] = {}  # `RunConfig.as_dict()`
    versions: dict[str, Any] = {}
    git_revision: str | None = None

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
        """Checked: a missing or empty `run_id` or `method`, or a field of the wrong type, is a UserError
        naming `source` and the field."""
        return validated(cls, data, source)

    def to_json(self) -> dict[str, Any]:
        """The keys that were set (read from the file, passed when made, given by `replace`): a key an older
        file lacked stays absent."""
        return self.model_dump(exclude_unset=True)

    def dumps(self) -> str:
        """The text of manifest.json (equal manifests give equal bytes)."""
        return json.dumps(self.to_json(), ensure_ascii=False, indent=2) + "\n"

    def replace(self, **changes: Any) -> Manifest:
        """A copy with `changes`; a key the file lacked is written once it is given a value."""
        return self.model_copy(update=changes)

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

