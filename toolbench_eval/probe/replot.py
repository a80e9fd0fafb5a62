"""Redraw a finished probe's `accuracy.png` from its `records.jsonl`, without loading the model.

The configurations (their order and labels) come from the folder's `results.csv`; the rows are aggregated
again from the records and must equal that table, so the figure can never show other numbers than the
committed table. The model's RoPE (base, head_dim, position scale) comes from `summary.md`, where the run
wrote it.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from toolbench_eval.errors import UserError
from toolbench_eval.probe import report
from toolbench_eval.probe.runner import ProbeConfig, RecordStore

_ROPE_LINE = re.compile(r"`rope`: base ([0-9.eE+]+), head_dim (\d+), position scale ([0-9.eE+]+)")


def read_results(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="") as handle:
            return list(csv.DictReader(handle))
    except FileNotFoundError:
        raise UserError(f"{path}: missing; a probe folder has results.csv once `probe kv` has finished") from None


def configs_from_results(rows: list[dict[str, str]], own_base: float) -> list[ProbeConfig]:
    """The probe's configurations in the table's order, rebuilt so that their keys and labels match it."""
    configs: list[ProbeConfig] = []
    for row in rows:
        if any(c.key == row["config_key"] for c in configs):
            continue
        bases = tuple(float(b) for b in row["bases"].split())
        fusion = row["fusion"] or "max_logit"
        searched = re.match(r"buckets (auto:\d+) ", row["config"])
        name = searched.group(1) if searched else ",".join(f"{b:g}" for b in bases)
        config = ProbeConfig(name, bases, fusion, own=len(bases) == 1 and bases[0] == own_base)
        if (config.key, config.label) != (row["config_key"], row["config"]):
            raise UserError(f"results.csv: cannot rebuild configuration {row['config']!r} ({row['config_key']}); "
                            "re-run `probe kv` on the folder to rewrite its outputs")
        configs.append(config)
    return configs


def rope_from_summary(path: Path) -> tuple[float, int, float]:
    """(own base, head_dim, position scale) from the `rope` line `probe kv` wrote into summary.md."""
    try:
        found = _ROPE_LINE.search(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        found = None
    if not found:
        raise UserError(f"{path}: no `rope` line (base, head_dim, position scale); pass them to replot_accuracy")
    return float(found.group(1)), int(found.group(2)), float(found.group(3))


def _as_table(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Rows as results.csv spells them (what csv.DictWriter writes), to compare with the file."""
    return [{key: "" if value is None else str(value) for key, value in row.items()} for row in rows]


def replot_accuracy(probe_dir: str | Path, *, rope: tuple[float, int, float] | None = None) -> Path:
    """Rewrite `accuracy.{png,svg,pdf}` in `probe_dir` from its records; returns the PNG path."""
    folder = Path(probe_dir)
    table = read_results(folder / "results.csv")
    if not table:
        raise UserError(f"{folder}/results.csv has no rows; nothing to plot")
    own_base, head_dim, position_scale = rope or rope_from_summary(folder / "summary.md")
    configs = configs_from_results(table, own_base)
    records = RecordStore(folder / "records.jsonl").records
    rows = report.aggregate(records, configs, table[0]["model"])
    if _as_table(rows) != table:
        raise UserError(f"{folder}: records.jsonl no longer gives results.csv's numbers; re-run `probe kv` on "
                        "the folder so that the table and the figure agree")
    settings = _settings(folder / "probe.json")
    title = (f"KV retrieval, {table[0]['model']} ({settings.get('dtype', '?')}, "
             f"{settings.get('prompt_style', '?')} prompt), greedy")
    troughs = report.own_base_troughs(rows, own_base, head_dim, position_scale)
    return report.plot_accuracy(rows, folder / "accuracy.png", own_base=own_base, head_dim=head_dim,
                                position_scale=position_scale, troughs=troughs, title=title)


def _settings(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")).get("settings") or {})
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
