"""Attention Buckets weights recorded during a run (`record_bucket_weights`), summarised per model call.

The sidecar `RUN_DIR/bucket_weights/<group>/<query_id>.json` holds, per model call of the trajectory in order,
the fused distribution's bucket weights: `mean` over the call's tokens, `decided[k]` (tokens where bucket k had
the largest weight) and `per_token` (rounded). A run without sidecars is normal (the option is off by default,
and engines without buckets never write them), so every reader here returns None rather than failing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

# A step is shown as one where the buckets disagreed when the bucket that decided most of its tokens decided
# fewer than this share of them: below three quarters, a real part of the text came from other bases.
AGREEMENT_SHARE = 0.75
# Per-token strips are drawn for at most this many tokens per call, to keep a large run's report small.
MAX_STRIP_TOKENS = 256


def sidecar_path(run_dir: Path, group: str, query_id: str) -> Path:
    return Path(run_dir) / "bucket_weights" / group / f"{query_id}.json"


def _numbers(values: Any, length: int) -> list[float] | None:
    if not isinstance(values, list) or len(values) != length:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        return None
    return [float(v) for v in values]


def summarize_call(call: dict[str, Any], n_buckets: int) -> dict[str, Any] | None:
    """One model call's weights as the viewer draws them, or None when the entry is malformed."""
    mean = _numbers(call.get("mean"), n_buckets)
    decided = _numbers(call.get("decided"), n_buckets)
    if mean is None or decided is None:
        return None
    tokens = call.get("tokens")
    tokens = int(tokens) if isinstance(tokens, int) and not isinstance(tokens, bool) else int(sum(decided))
    top = max(range(n_buckets), key=lambda k: decided[k]) if n_buckets else 0
    share = decided[top] / tokens if tokens else 1.0
    strip = []
    for row in call.get("per_token") or []:
        weights = _numbers(row, n_buckets)
        if weights is None:
            continue
        strip.append(max(range(n_buckets), key=lambda k: weights[k]))
        if len(strip) >= MAX_STRIP_TOKENS:
            break
    return {"tokens": tokens, "mean": mean, "decided": [int(d) for d in decided], "top": top,
            "top_share": round(share, 3), "disagree": share < AGREEMENT_SHARE, "strip": strip}


def read_sidecar(run_dir: Path, group: str, query_id: str) -> tuple[dict[str, Any] | None, str | None]:
    """`({"bases", "fusion", "calls"}, None)` for a readable sidecar, `(None, None)` when there is none, and
    `(None, why)` for one that cannot be read (the viewer notes it and shows the query without weights)."""
    path = sidecar_path(run_dir, group, query_id)
    if not path.is_file():
        return None, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, f"{path}: not readable JSON ({error})"
    bases = data.get("bases") if isinstance(data, dict) else None
    if not isinstance(bases, list) or not bases or not isinstance(data.get("calls"), list):
        return None, f"{path}: expected {{\"bases\": [...], \"calls\": [...]}}"
    calls = [summarize_call(call, len(bases)) if isinstance(call, dict) else None for call in data["calls"]]
    return {"bases": bases, "fusion": str(data.get("fusion", "")), "calls": calls}, None


def attach_to_steps(weights: dict[str, Any], steps_in_call_order: list[dict[str, Any]]) -> bool:
    """Give each step the weights of the model call that wrote it (`step["weights"]`); True when every call
    found its step. Calls and steps pair in order: a ReAct or DFSDT model call writes exactly one step."""
    for step, call in zip(steps_in_call_order, weights["calls"]):
        if call is not None:
            step["weights"] = call
    return len(weights["calls"]) == len(steps_in_call_order)
