"""`toolbench-eval lab`: train small Llama models from scratch with RoPE, CoPE, CoPE+RoPE or DIFF attention
on synthetic tasks, and measure in- and out-of-distribution accuracy.

    toolbench-eval lab train --task flipflop --attention cope          # -> results/probe/lab/flipflop/cope/
    toolbench-eval lab eval --task flipflop --attention cope           # appends to results/probe/lab/results.jsonl
    toolbench-eval lab report                                          # -> results/probe/lab/report.md + plots

'small' models learn on one CPU thread in minutes; '--size large --device cuda' is meant for a GPU.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from toolbench_eval.errors import UserError
from toolbench_eval.paths import REPO_ROOT

LAB_ROOT = REPO_ROOT / "results" / "probe" / "lab"
ATTENTION_CHOICES = ("rope", "cope", "cope+rope", "diff")  # kept here so `--help` needs no torch import
TASK_CHOICES = ("flipflop", "selective-copy", "counting", "kv", "multi-needle")


def register(subparsers) -> None:
    parser = subparsers.add_parser("lab", help="train and evaluate small models with RoPE / CoPE / DIFF attention "
                                               "on synthetic tasks")
    lab = parser.add_subparsers(dest="lab_command", metavar="LAB_COMMAND")
    parser.set_defaults(func=lambda args: parser.print_help() or 2)

    def model_arguments(sub):
        sub.add_argument("--task", required=True, choices=TASK_CHOICES)
        sub.add_argument("--attention", required=True, choices=ATTENTION_CHOICES)
        sub.add_argument("--size", choices=("small", "large"), default="small",
                         help="small: ~0.1M parameters, trains on one CPU thread in minutes; large: for a GPU")
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--out", default=None,
                         help="run folder (default results/probe/lab/<task>/<attention>[-<size>][-s<seed>])")
        sub.add_argument("--device", default="cpu", help="cpu | cuda")
        sub.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")

    train = lab.add_parser("train", help="train one model from scratch; writes model.pt and record.json")
    model_arguments(train)
    train.add_argument("--steps", type=int, default=None, help="optimizer steps (default: 3000 small, 20000 large)")
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--learning-rate", type=float, default=None, help="peak LR (default 3e-3 small, 1e-3 large)")
    train.add_argument("--max-minutes", type=float, default=None,
                       help="stop at the first step past this much wall time (the LR schedule is not shortened)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=run_train)

    evaluate = lab.add_parser("eval", help="score a trained model on every split; appends to results.jsonl")
    model_arguments(evaluate)
    evaluate.add_argument("--n", type=int, default=1000, help="evaluation examples per split")
    evaluate.add_argument("--eval-seed", type=int, default=0)
    evaluate.add_argument("--table", default=str(LAB_ROOT / "results.jsonl"),
                          help="results table to append to; report.md is rebuilt beside it")
    evaluate.add_argument("--no-report", action="store_true", help="do not rebuild report.md afterwards")
    evaluate.set_defaults(func=run_eval)

    report = lab.add_parser("report", help="rebuild results/probe/lab/report.md and the per-task plots")
    report.add_argument("--table", default=str(LAB_ROOT / "results.jsonl"),
                        help="results table written by `lab eval`; report.md is written beside it")
    report.set_defaults(func=run_report)


def _folder(args) -> Path:
    if args.out:
        return Path(args.out)
    name = args.attention + ("" if args.size == "small" else f"-{args.size}") + \
        ("" if args.seed == 0 else f"-s{args.seed}")
    return LAB_ROOT / args.task / name


def _check_common(args) -> None:
    if args.threads < 1:
        raise UserError(f"--threads must be at least 1, got {args.threads}")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError("--device cuda was asked for but torch sees no CUDA device; use --device cpu")
    elif args.device != "cpu":
        raise UserError(f"--device must be cpu or cuda[:N], got {args.device!r}")


def _command_line(args, *, train_config=None) -> str:
    """The command that reproduces this step, spelled out in full (defaults included), for the report."""
    parts = ["toolbench-eval", "lab", "train" if train_config else "eval", "--task", args.task,
             "--attention", args.attention, "--size", args.size, "--seed", str(args.seed)]
    if train_config is not None:
        parts += ["--steps", str(train_config.steps), "--batch-size", str(train_config.batch_size),
                  "--learning-rate", f"{train_config.learning_rate:g}"]
        if train_config.max_minutes is not None:
            parts += ["--max-minutes", f"{train_config.max_minutes:g}"]
    else:
        parts += ["--n", str(args.n), "--eval-seed", str(args.eval_seed)]
    if args.out:
        parts += ["--out", args.out]
    parts += ["--threads", str(args.threads), "--device", args.device]
    return shlex.join(parts)


def run_train(args) -> int:
    from toolbench_eval.lab.train import TrainConfig, train

    _check_common(args)
    steps = args.steps if args.steps is not None else (3000 if args.size == "small" else 20000)
    if steps < 1 or args.batch_size < 1:
        raise UserError("--steps and --batch-size must be positive")
    learning_rate = args.learning_rate or (3e-3 if args.size == "small" else 1e-3)
    config = TrainConfig(task=args.task, attention=args.attention, size=args.size, steps=steps,
                         batch_size=args.batch_size, learning_rate=learning_rate, seed=args.seed,
                         threads=args.threads, device=args.device, max_minutes=args.max_minutes)
    folder = _folder(args)
    record = train(config, folder, command=_command_line(args, train_config=config), progress=not args.no_progress)
    print(f"{args.task}/{args.attention}: {record['steps']} steps, {record['wall_minutes']:.1f} min, "
          f"final loss {record['final_loss']:.4f} -> {folder}")
    return 0


def run_eval(args) -> int:
    import torch

    from toolbench_eval.lab.evaluate import evaluate
    from toolbench_eval.lab.report import build_report
    from toolbench_eval.lab.train import load_model

    _check_common(args)
    torch.set_num_threads(args.threads)
    folder = _folder(args)
    if not (folder / "model.pt").exists():
        raise UserError(f"{folder}: no model.pt; train it first with `toolbench-eval lab train --task {args.task} "
                        f"--attention {args.attention}`")
    if args.n < 1:
        raise UserError(f"--n must be positive, got {args.n}")
    record = json.loads((folder / "record.json").read_text())
    results = evaluate(load_model(folder, args.device), args.task, n=args.n, eval_seed=args.eval_seed,
                       device=args.device)
    row = {"task": args.task, "attention": args.attention, "size": args.size, "seed": args.seed,
           "eval_seed": args.eval_seed, "folder": str(folder.relative_to(REPO_ROOT) if folder.is_absolute()
                                                      and folder.is_relative_to(REPO_ROOT) else folder),
           "results": results, "train": {k: v for k, v in record.items() if k != "loss_curve"},
           "eval_command": _command_line(args)}
    (folder / "eval.json").write_text(json.dumps(row, indent=2) + "\n")
    table = Path(args.table)
    table.parent.mkdir(parents=True, exist_ok=True)
    with open(table, "a") as handle:
        handle.write(json.dumps(row) + "\n")
    for split, result in results.items():
        print(f"{args.task}/{args.attention} {split}: {100 * result['accuracy']:.1f}% "
              f"[{100 * result['ci_low']:.1f}, {100 * result['ci_high']:.1f}] (n={result['n']})")
    if not args.no_report:
        print(f"report: {build_report(table)}")
    return 0


def run_report(args) -> int:
    from toolbench_eval.lab.report import build_report

    table = Path(args.table)
    if not table.exists():
        raise UserError(f"{table}: no results table; run `toolbench-eval lab eval` first")
    print(f"report: {build_report(table)}")
    return 0
