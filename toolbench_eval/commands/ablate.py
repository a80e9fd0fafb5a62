"""`toolbench-eval ablate GRID.yaml`: a grid of runs (base sets, fusion rules, methods, groups), then one table.

    toolbench-eval ablate configs/quickstart.yaml           # the README's main job
    toolbench-eval ablate configs/ablation_bases.yaml --limit 5

Each grid point is an ordinary run directory under the grid's `out` folder (resumable like `run`);
runs with the same weights share one loaded model. At the end every run is scored (`score`) and
all of them are exported into one leaderboard with plots (`export`) under `<out>/leaderboard/`.
See `toolbench_eval/runner/grid.py` for the grid file format.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from reasoning.eval_protocol import PROTOCOLS
from toolbench_eval.errors import UserError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "ablate",
        help="run an ablation grid (e.g. configs/quickstart.yaml) and export one comparison table",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("grid", type=Path, help="grid YAML (see configs/ablation_bases.yaml)")
    parser.add_argument("--limit", type=int, help="override every run's per-group query limit")
    parser.add_argument("--concurrency", type=int, help="override trajectories in flight")
    parser.add_argument("--executor", choices=["local", "ray"], help="override the executor")
    parser.add_argument("--max-infra-failures", type=int, help="as for `run` (default 3 per run)")
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), help="as for `run`: every run's protocol")
    parser.add_argument("--protocol-args", help="as for `run`: switch overrides, key=value,...")
    parser.add_argument("--out", type=Path, help="override the grid's output root")
    parser.add_argument("--only", help="comma-separated run names to run (see --list)")
    parser.add_argument("--list", action="store_true", help="print the expanded runs and exit")
    parser.add_argument("--no-score", action="store_true", help="skip scoring and export")
    parser.add_argument("--force-config", action="store_true", help="as for `run`")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from toolbench_eval.runner.config import load_yaml_mapping, parse_key_values
    from toolbench_eval.runner.execute import ModelCache, execute_run
    from toolbench_eval.runner.grid import expand_grid

    spec = load_yaml_mapping(args.grid)
    if args.out is not None:
        spec = {**spec, "out": str(args.out)}
    runs = expand_grid(spec, source=args.grid)
    if args.only:
        wanted = {name.strip() for name in args.only.split(",") if name.strip()}
        unknown = wanted - {r.name for r in runs}
        if unknown:
            raise UserError(f"--only: no run(s) {sorted(unknown)} in {args.grid}; see --list")
        runs = [r for r in runs if r.name in wanted]
    overrides = {"limit": args.limit, "concurrency": args.concurrency, "executor": args.executor,
                 "max_infra_failures": args.max_infra_failures, "protocol": args.protocol,
                 "protocol_args": parse_key_values(args.protocol_args) if args.protocol_args else None}
    runs = [type(r)(r.name, r.config.override(overrides)) for r in runs]
    if args.list:
        for r in runs:
            print(f"{r.name}: method={r.config.method} protocol={r.config.eval_protocol.label} "
                  f"buckets={r.config.buckets or 'none'} "
                  f"fusion={r.config.fusion} groups={','.join(r.config.groups)} -> {r.config.out}")
        return 0
    if not runs:
        raise UserError(f"{args.grid}: the grid expands to no runs")

    started = time.perf_counter()
    models = ModelCache()
    failed = 0
    for number, grid_run in enumerate(runs, 1):
        print(f"[{number}/{len(runs)}] {grid_run.name}")
        result = execute_run(grid_run.config, force_config=args.force_config,
                             progress=not (args.no_progress or args.quiet), models=models)
        if result.exit_code == 3:  # a server is down: the next grid points would fail the same way
            print(f"ablation stopped at {grid_run.name}: re-run the same command once the server is back; "
                  "finished answers are kept")
            return 3
        failed += result.exit_code != 0
    root = Path(runs[0].config.out).parent
    if not args.no_score:
        export_table(spec, [Path(r.config.out) for r in runs], root / "leaderboard")
    print(f"ablation finished in {time.perf_counter() - started:.0f} s: {len(runs)} runs under {root}")
    return 1 if failed else 0


def export_table(spec: dict, run_dirs: list[Path], out: Path) -> None:
    """Score every run and export one leaderboard (CSV, Markdown, JSON, plots) into `out`."""
    from toolbench_eval.scoring.cli_options import build_judge
    from toolbench_eval.scoring.export import export_leaderboard
    from toolbench_eval.scoring.passrate import format_report, score_run

    score = dict(spec.get("score") or {})
    judge = build_judge(str(score.get("judge", "rule")))
    evaluate_times = int(score.get("evaluate_times") or 3)
    for run_dir in run_dirs:
        print(format_report(score_run(run_dir, judge, evaluate_times=evaluate_times)))
    plots = dict(spec.get("export") or {}).get("plots") is not False
    grid = spec.get("grid") or {}
    written = export_leaderboard(run_dirs, out, judge, evaluate_times=evaluate_times, plots=plots,
                                 mix_protocols="protocol" in grid or "protocol_args" in grid)  # compared on purpose
    print(written["markdown"].read_text(encoding="utf-8"))
    print(f"leaderboard: {out}/ (Markdown, CSV, JSON){' and plots (PNG)' if plots else ''}")
