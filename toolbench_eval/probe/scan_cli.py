"""`toolbench-eval probe scan`: argument checks, model loading, the resumable run, then the report."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from toolbench_eval.errors import UserError
from toolbench_eval.probe.scan import ScanConfig

log = logging.getLogger("toolbench_eval.probe")


def parse_bucket_sets(text: str | None) -> list[tuple[float, ...]]:
    """``"100000,125000,255000;100000,140000"`` -> tuples of bases; ``none`` or empty -> no sets.

    >>> parse_bucket_sets("1e5,125000; 100000,140000,165000")
    [(100000.0, 125000.0), (100000.0, 140000.0, 165000.0)]
    """
    sets = []
    for part in filter(None, (p.strip() for p in (text or "").split(";"))):
        if part.lower() == "none":
            continue
        try:
            bases = tuple(float(b) for b in part.split(",") if b.strip())
        except ValueError:
            raise UserError(f"--buckets: {part!r}: expected comma-separated numbers, e.g. 100000,125000,255000") from None
        if len(bases) < 2 or len(set(bases)) != len(bases) or any(not b > 1 for b in bases):
            raise UserError(f"--buckets: {part!r}: a set is at least two distinct bases > 1")
        sets.append(bases)
    return sets


def check_args(args: argparse.Namespace) -> None:
    """Refuse bad arguments before a model is loaded."""
    from buckets.fusion import FUSION_RULES

    if args.samples < 1:
        raise UserError(f"--samples must be >= 1, got {args.samples}")
    if args.chunk < 1:
        raise UserError(f"--chunk must be >= 1, got {args.chunk}")
    if args.num_pairs < 1 or not 0 <= args.target_index < args.num_pairs:
        raise UserError(f"--target-index: {args.target_index} is outside 0..{args.num_pairs - 1} for K={args.num_pairs}")
    if args.fusion not in FUSION_RULES:
        raise UserError(f"--fusion: unknown rule {args.fusion!r}; choose one of {', '.join(sorted(FUSION_RULES))}")
    if args.max_minutes is not None and not args.max_minutes > 0:
        raise UserError(f"--max-minutes must be > 0, got {args.max_minutes}")


def resolve_configs(own_base: float, bucket_sets, scalings, fusion: str) -> list[ScanConfig]:
    """Own base then each bucket set, repeated for each RoPE scaling."""
    return [ScanConfig(bases, scaling, fusion) for scaling in scalings
            for bases in [(float(own_base),), *bucket_sets]]


def scan_main(args: argparse.Namespace, command: str) -> int:
    from toolbench_eval.models import (
        MODEL_ARG_KEYS,
        load_model_from_args,
        model_display_name,
        model_rope_info,
    )
    from toolbench_eval.probe import scan
    from toolbench_eval.probe.scaling import RopeScaling, parse_rope_scaling, scaled_config, trained_context
    from toolbench_eval.registry import check_arguments
    from toolbench_eval.runner.config import parse_key_values

    check_args(args)
    grid = scan.parse_grid(args.grid)
    bucket_sets = parse_bucket_sets(args.buckets)
    scalings: list[RopeScaling] = parse_rope_scaling(args.rope_scaling)
    window = None
    if args.extrema_window:
        from toolbench_eval.commands.buckets import parse_window

        window = parse_window(args.extrema_window, "--extrema-window", "160:16384")
    model_args = parse_key_values(args.model_args)
    check_arguments("--model-args", model_args, MODEL_ARG_KEYS)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model, tokenizer = load_model_from_args(model_args)
    rope = model_rope_info(model)
    prompts = scan.build_prompts(tokenizer, range(args.samples), args.num_pairs, args.target_index, args.seed,
                                 args.prompt_style)
    native = max(p.target_distance for p in prompts)
    low, high = window or (native + 1, max(grid))
    extrema = scan.waveform_extrema(rope.rope_theta, rope.head_dim, low, high)
    distances = scan.scan_distances(grid, extrema)
    configs = resolve_configs(rope.rope_theta, bucket_sets, [s.name for s in scalings], args.fusion)
    scaled = {s.name: scaled_config(model.config, s) for s in scalings if s.kind != "none"}
    settings = {
        "model": str(model_args.get("pretrained", "default")),
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "num_pairs": args.num_pairs, "target_index": args.target_index, "seed": args.seed,
        "prompt_style": args.prompt_style, "distances": distances, "configs": [c.key for c in configs],
    }
    scan.check_settings(args.out, settings)
    if not args.report_only:
        deadline = time.time() + 60 * args.max_minutes if args.max_minutes else None
        done, seconds = scan.run_scan(model, prompts, configs, distances, args.out, scaled_configs=scaled,
                                      chunk=args.chunk, deadline=deadline)
        _log_run(args.out, {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "prompts": done,
                            "seconds": round(seconds, 1), "threads": _threads(), "command": command})
    from toolbench_eval.probe import scan_report

    runs = json.loads((args.out / scan.SETTINGS_FILE).read_text()).get("runs", [])
    # The commands that computed the records (a --report-only rewrite is not what produced the numbers).
    computed = "`; `".join(dict.fromkeys(r["command"] for r in runs if r.get("command"))) or command
    info = {
        "model": f"{model_display_name(str(model_args.get('pretrained', 'default')))} ({settings['model']}, "
                 f"{settings['dtype']})",
        "rope": f"base {rope.rope_theta:g}, head_dim {rope.head_dim}, trained context {trained_context(model.config)}",
        "trained_context": trained_context(model.config), "head_dim": rope.head_dim, "command": computed,
        "native_distances": sorted({p.target_distance for p in prompts}),
        "runs": runs,
    }
    paths = scan_report.write_report(args.out, scan.load_records(args.out), configs, distances, extrema,
                                     settings, info)
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _log_run(out_dir: Path, info: dict) -> None:
    from toolbench_eval.probe.scan import SETTINGS_FILE

    path = Path(out_dir) / SETTINGS_FILE
    data = json.loads(path.read_text())
    data.setdefault("runs", []).append(info)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _threads() -> int:
    import torch

    return torch.get_num_threads()
