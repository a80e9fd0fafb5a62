"""Ablation grids: one YAML file expands into many runs under one output root.

    out: results/runs/ablation-demo          # output root; each run is a sub-folder
    base:                                    # RunConfig keys shared by every run (or `base_config: FILE`)
      benchmark: localtoolbench
      groups: [G1_instruction, G1_category]
      model: hf
      model_args: {pretrained: default}
      limit: 4
    grid:                                    # every combination of these axes becomes one run
      method: [react, dfsdt]
      fusion: [max_logit]
      buckets:
        - none                               # no Attention Buckets
        - {single: [10000, 20000]}           # each base alone (one bucket)
        - {arithmetic: {n: [2, 3], start: 10000, stop: 30000}}
        - {random: {n: [3], seeds: [0, 1], min_base: 10000, max_base: 30000, step: 500}}
        - {searched: {n: [1, 2, 3]}}         # auto:N (base search for this model)
        - {explicit: [[10000, 17500, 30000]]}
      groups: [[G1_instruction], [G1_category]]   # optional: alternative group sets
      constrain: [off, arguments]            # optional: decoding.constrain levels (names get -constrain-<level>)
      protocol: [stabletoolbench, toolbench-eval]  # optional: evaluation protocols (names get -<protocol>;
                                             # the leaderboard then mixes protocols on purpose)
    score: {judge: rule}                      # scored and exported at the end

Runs that load the same weights share one loaded model (see `runner.execute.ModelCache`).

>>> runs = expand_grid({"base": {"groups": ["G1_instruction"]},
...                     "grid": {"method": ["react"], "buckets": ["none", {"searched": {"n": [1, 2]}}]}})
>>> [(r.name, r.config.buckets) for r in runs]
[('react-nobuckets', None), ('react-auto1', 'auto:1'), ('react-auto2', 'auto:2')]
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolbench_eval.errors import located
from toolbench_eval.paths import RESULTS_DIR
from toolbench_eval.runner.config import RunConfig, load_yaml_mapping

GRID_AXES = ("method", "fusion", "buckets", "groups", "constrain", "protocol")
TOP_LEVEL_KEYS = ("out", "base", "base_config", "grid", "score", "export")


@dataclass(frozen=True)
class GridRun:
    name: str  # the run's folder name under the grid's output root
    config: RunConfig


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def bucket_choices(entry: Any, *, source: str | Path = "grid") -> list[tuple[str, str | None]]:
    """Expand one `buckets` entry into (tag, buckets-setting) pairs."""
    if entry is None or entry in ("none", "off", False):
        return [("nobuckets", None)]
    if isinstance(entry, str):  # "auto:3" or "10000,20000"
        return [(entry.replace(":", "").replace(",", "_"), entry)]
    if not isinstance(entry, Mapping) or len(entry) != 1:
        raise located(source, f"buckets entry {entry!r}: use none, a string, or one of single/arithmetic/random/"
                      "searched/explicit", field="grid.buckets")
    (kind, spec), = entry.items()
    if kind == "single":
        return [(f"single{_number_text(b)}", _number_text(b)) for b in _as_list(spec)]
    if kind == "explicit":
        sets = spec if spec and isinstance(spec[0], (list, tuple)) else [spec]
        return [("set" + "_".join(_number_text(b) for b in s), ",".join(_number_text(b) for b in s)) for s in sets]
    if kind == "searched":
        counts = _as_list(spec.get("n", [1, 2, 3])) if isinstance(spec, Mapping) else _as_list(spec)
        return [(f"auto{int(n)}", f"auto:{int(n)}") for n in counts]
    if kind == "arithmetic":
        from buckets.search import arithmetic_bases

        out = []
        for n in _as_list(spec.get("n", 3)):
            bases = arithmetic_bases(int(n), float(spec["start"]), float(spec["stop"]))
            out.append((f"arith{int(n)}", ",".join(_number_text(b) for b in bases)))
        return out
    if kind == "random":
        from buckets.search import random_bases

        out = []
        for n in _as_list(spec.get("n", 3)):
            for seed in _as_list(spec.get("seeds", [0])):
                bases = random_bases(int(n), int(spec.get("min_base", 10000)), int(spec.get("max_base", 30000)),
                                     int(spec.get("step", 500)), seed=int(seed))
                out.append((f"rand{int(n)}s{int(seed)}", ",".join(_number_text(b) for b in bases)))
        return out
    raise located(source, f"unknown buckets kind {kind!r}; use single, arithmetic, random, searched or explicit",
                  field="grid.buckets")


def expand_grid(spec: Mapping[str, Any], *, source: str | Path = "grid") -> list[GridRun]:
    """Every combination of the grid axes as a named `RunConfig` (output folders under `spec['out']`)."""
    unknown = sorted(set(spec) - set(TOP_LEVEL_KEYS))
    if unknown:
        raise located(source, f"unknown key(s) {unknown}; known: {list(TOP_LEVEL_KEYS)}", field=unknown[0])
    base = dict(load_yaml_mapping(spec["base_config"]) if spec.get("base_config") else {})
    base.update(spec.get("base") or {})
    # Recording bucket weights is asked of the whole grid and applies to its cells with buckets only, so the base
    # (which may have none) is checked without it.
    record_weights = base.pop("record_bucket_weights", False)
    base_config = RunConfig.from_mapping(base, source=source)
    grid = spec.get("grid") or {}
    bad_axes = sorted(set(grid) - set(GRID_AXES))
    if bad_axes:
        raise located(source, f"unknown grid axis {bad_axes}; axes: {list(GRID_AXES)}", field="grid")
    methods = _as_list(grid.get("method", base_config.method))
    fusions = _as_list(grid.get("fusion", base_config.fusion))
    bucket_entries = grid.get("buckets", [base_config.buckets or "none"])
    bucket_options = [choice for entry in _as_list(bucket_entries) for choice in bucket_choices(entry, source=source)]
    group_sets = grid.get("groups")
    group_options = [list(_as_list(g)) for g in group_sets] if group_sets else [base_config.groups]
    base_constrain = base_config.decoding.get("constrain", "off")
    # YAML reads a bare `off` as false.
    constrain_levels = ["off" if level is False else level for level in _as_list(grid.get("constrain", base_constrain))]
    protocols = _as_list(grid.get("protocol", base_config.protocol))
    root = Path(spec.get("out") or RESULTS_DIR / "runs" / Path(str(source)).stem)

    runs: list[GridRun] = []
    seen: set[str] = set()
    for method, fusion, (tag, buckets), groups, constrain, protocol in itertools.product(
            methods, fusions, bucket_options, group_options, constrain_levels, protocols):
        parts = [method, tag]
        if len(fusions) > 1 and buckets is not None:
            parts.append(fusion)
        if len(group_options) > 1:
            parts.append("+".join(groups))
        if constrain != "off":
            parts.append(f"constrain-{constrain}")
            tag = f"{tag}-constrain-{constrain}"
        if len(protocols) > 1:
            parts.append(str(protocol))
            tag = f"{tag}-{protocol}"
        name = "-".join(parts)
        if name in seen:  # e.g. several fusion rules without buckets are one run
            continue
        seen.add(name)
        label = f"{Path(base_config.engine_spec).name or base_config.model}-{tag}"
        config = base_config.override(
            {"method": method, "fusion": fusion, "groups": groups, "out": str(root / name), "run_id": name,
             "model_name": base_config.model_name and f"{base_config.model_name}-{tag}" or label,
             # only where it differs, so the configs (and resumability) of grids without the axis stay as they were
             "decoding": {"constrain": constrain} if constrain != base_constrain else None,
             "protocol": protocol},
            source=source,
        )
        config.buckets = buckets
        config.record_bucket_weights = record_weights if buckets is not None else False
        config.normalize(source=source)
        runs.append(GridRun(name, config))
    return runs
