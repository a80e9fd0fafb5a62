"""`toolbench-eval bench buckets`: Attention Buckets decoding speed, side by side in one run.

On the default model (ToolSmol-135M, a SmolLM2-135M-Instruct fine-tune), one prompt of `--prompt-tokens` tokens and
`--new-tokens` greedy tokens (EOS ignored, so every method produces the same amount), it times:

- plain transformers `model.generate`;
- ours (`buckets.generation.BucketedGenerator`) at N=1, N=3 and N=6;
- an official-style baseline at N=6 (sequential chunks of 2 buckets, cos/sin rebuilt per layer
  per step: `toolbench_eval.speed._official_buckets`).

Each method runs twice per repeat: with 1 new token (prefill + first token) and with all new
tokens; decode speed is ``(new - 1) / (t_all - t_first)``. The best of `--repeats` is kept. The
table goes to stdout and to ``results/benchmarks/buckets.md`` plus a JSON twin (``--quick`` and
non-CPU runs get their own file names so they never overwrite the reference CPU table).

    toolbench-eval bench buckets                      # the full CPU benchmark (minutes; idle machine!)
    toolbench-eval bench buckets --quick              # a small smoke setting
    toolbench-eval bench buckets --device cuda --dtype bfloat16
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from toolbench_eval.paths import RESULTS_DIR

# Ratios of the published ToolBench set [10000, 17500, 18000, 19000, 20000, 25000] to its base,
# applied to the benchmarked model's own base.
RATIOS_6 = (1.0, 1.75, 1.8, 1.9, 2.0, 2.5)
RATIOS_3 = (1.0, 1.8, 2.5)
FILLER = (
    "You are AutoGPT, you can use many tools (functions) to do the following task. First I will give you "
    "the task description, and your task start. At each step, you need to give your thought to analyze the "
    "status now and what to do next, with a function call to actually execute your step. After the call, "
    "you will get the call result, and you are now in a new state. Then you will analyze your status now, "
    "then decide what to do next. After many (Thought-call) pairs, you finally perform the task, then you "
    "can give your final answer. "
)


@dataclass
class Timing:
    method: str
    buckets: int
    first_token_s: float  # prefill + first token
    total_s: float  # all new tokens
    new_tokens: int
    tokens: list[int]

    @property
    def decode_tok_s(self) -> float:
        return (self.new_tokens - 1) / max(self.total_s - self.first_token_s, 1e-9)

    @property
    def end_to_end_tok_s(self) -> float:
        return self.new_tokens / self.total_s

    @property
    def decode_ms_per_token(self) -> float:
        return 1000.0 / self.decode_tok_s


def register(subparsers) -> None:
    parser = subparsers.add_parser("buckets", help="Attention Buckets decoding speed vs plain HF and official-style")
    parser.add_argument("--model", default="default", help="model spec: 'default' (ToolSmol-135M), 'smollm2' or a local checkpoint path")
    parser.add_argument("--prompt-tokens", type=int, default=1024)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--repeats", type=int, default=1, help="runs per method; the fastest is kept")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--quick", action="store_true", help="small smoke setting: 128 prompt, 8 new tokens")
    parser.add_argument("--skip-official", action="store_true", help="leave out the (slow) official-style row")
    parser.add_argument("--output", type=Path, default=None, help="Markdown path (JSON written beside it)")
    parser.set_defaults(func=run)


def run(args) -> int:
    import torch
    from tqdm import tqdm
    from transformers.utils import logging as hf_logging

    from buckets.generation import BucketedGenerator, model_base
    from toolbench_eval.errors import UserError
    from toolbench_eval.models import load_model
    from toolbench_eval.speed._official_buckets import OfficialStyleBuckets

    if args.quick:
        args.prompt_tokens, args.new_tokens = min(args.prompt_tokens, 128), min(args.new_tokens, 8)
    if args.prompt_tokens < 1 or args.new_tokens < 2:
        raise UserError("bench buckets: --prompt-tokens must be >= 1 and --new-tokens >= 2")
    if args.threads:
        torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    model, tokenizer = load_model(args.model, device=args.device, dtype=args.dtype)
    device = next(model.parameters()).device
    prompt_ids = benchmark_prompt(tokenizer, args.prompt_tokens)
    base = model_base(model)
    bases6 = [base * r for r in RATIOS_6]
    bases3 = [base * r for r in RATIOS_3]
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.pad_token_id

    def hf_generate(new: int) -> list[int]:
        ids = torch.tensor([prompt_ids], device=device)
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new,
                             min_new_tokens=new, do_sample=False, pad_token_id=eos)
        return out[0, ids.shape[1] :].tolist()

    def ours(bases) -> Callable[[int], list[int]]:
        generator = BucketedGenerator(model, tokenizer, bases=bases)
        return lambda new: generator.generate([prompt_ids], max_new_tokens=new, ignore_eos=True)[0].token_ids

    official = OfficialStyleBuckets(model, bases6, chunk_size=2)
    methods: list[tuple[str, int, Callable[[int], list[int]]]] = [
        ("plain HF generate", 1, hf_generate),
        ("ours N=1", 1, ours(None)),
        ("ours N=3", 3, ours(bases3)),
        ("ours N=6", 6, ours(bases6)),
    ]
    if not args.skip_official:
        methods.append(("official-style N=6 (chunks of 2, per-layer rebuild)", 6,
                        lambda new: official.generate(prompt_ids, new)))

    timings = []
    with torch.inference_mode():
        for _, _, fn in methods:  # warm-up: allocator, kernels, cached RoPE tables, lazy imports
            fn(2)
        for name, n, fn in tqdm(methods, desc="bench buckets", unit="method"):
            timings.append(_time_method(name, n, fn, args.new_tokens, args.repeats, device))

    report = build_report(args, model, timings, base, bases3, bases6)
    md_path = args.output or default_output(args, device)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text(report["markdown"])
    md_path.with_suffix(".json").write_text(json.dumps(report["json"], indent=2) + "\n")
    print(report["markdown"])
    print(f"wrote {md_path} and {md_path.with_suffix('.json')}")
    return 0


def benchmark_prompt(tokenizer, length: int) -> list[int]:
    """Exactly `length` token ids of deterministic ToolBench-like text."""
    text = FILLER
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    while len(ids) < length:
        text += FILLER
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids[:length]


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time_method(name: str, n: int, fn, new_tokens: int, repeats: int, device) -> Timing:
    best_first = best_total = float("inf")
    tokens: list[int] = []
    for _ in range(max(1, repeats)):
        _sync(device)
        start = time.perf_counter()
        fn(1)
        _sync(device)
        best_first = min(best_first, time.perf_counter() - start)
        start = time.perf_counter()
        tokens = fn(new_tokens)
        _sync(device)
        best_total = min(best_total, time.perf_counter() - start)
    return Timing(name, n, best_first, best_total, new_tokens, tokens)


def default_output(args, device) -> Path:
    stem = "buckets"
    if device.type != "cpu":
        stem += f"-{device.type}"
    if args.quick:
        stem += "-quick"
    return RESULTS_DIR / "benchmarks" / f"{stem}.md"


def machine_description(device) -> dict:
    import torch

    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu": _cpu_name(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def build_report(args, model, timings: list[Timing], base: float, bases3, bases6) -> dict:
    import torch
    import transformers

    from toolbench_eval import __version__

    device = next(model.parameters()).device
    by_name = {t.method.split(" (")[0]: t for t in timings}
    plain, one, six = by_name["plain HF generate"], by_name["ours N=1"], by_name["ours N=6"]
    official = by_name.get("official-style N=6")
    checks = {
        "ours N=1 within 10% of plain HF generate (end-to-end)": one.total_s <= 1.10 * plain.total_s,
        "ours N=6 decode time per token <= 4x ours N=1": six.decode_ms_per_token <= 4 * one.decode_ms_per_token,
    }
    if official is not None:
        checks["ours N=6 >= 2x official-style (end-to-end)"] = official.total_s >= 2 * six.total_s
    versions = {"toolbench-eval": __version__, "torch": torch.__version__, "transformers": transformers.__version__}
    machine = machine_description(device)
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Attention Buckets decoding speed",
        "",
        f"- date: {date}",
        f"- machine: {machine['cpu']} ({machine['cpu_count']} CPUs, torch threads {machine['torch_threads']}), "
        f"{machine['platform']}" + (f"; GPU: {machine['gpu']}" if "gpu" in machine else ""),
        f"- device: {device}, dtype: {args.dtype}",
        (f"- model: {args.model} ({model.config.num_hidden_layers} layers, hidden {model.config.hidden_size}, "
         f"RoPE base {base:g})"),
        (f"- prompt: {args.prompt_tokens} tokens, {args.new_tokens} new tokens (greedy, EOS ignored), "
         f"batch 1, best of {args.repeats}"),
        f"- bases: N=3 {[round(b) for b in bases3]}, N=6 {[round(b) for b in bases6]}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()),
        f"- command: `toolbench-eval bench buckets --prompt-tokens {args.prompt_tokens} --new-tokens "
        f"{args.new_tokens} --dtype {args.dtype} --device {args.device} --repeats {args.repeats}"
        + (" --quick" if args.quick else "") + "`",
        "",
        ("| method | N | prefill + 1st token (s) | total (s) | end-to-end tok/s | decode tok/s | decode ms/token "
         "| same tokens as ours |"),
        "|---|---|---|---|---|---|---|---|",
    ]
    reference = {1: one.tokens, 6: six.tokens}
    for t in timings:
        same = "-" if t.buckets not in reference or t.method.startswith("ours") else (
            "yes" if t.tokens == reference[t.buckets] else "no")
        lines.append(f"| {t.method} | {t.buckets} | {t.first_token_s:.3f} | {t.total_s:.3f} | "
                     f"{t.end_to_end_tok_s:.2f} | {t.decode_tok_s:.2f} | {t.decode_ms_per_token:.1f} | {same} |")
    lines += ["", "Targets:", ""]
    lines += [f"- {'PASS' if ok else 'FAIL'}: {name}" for name, ok in checks.items()]
    lines += [
        "",
        f"Ratios: ours N=1 / plain HF total time = {one.total_s / plain.total_s:.2f}; "
        f"ours N=6 / N=1 decode time per token = {six.decode_ms_per_token / one.decode_ms_per_token:.2f}"
        + (f"; official-style / ours N=6 total time = {official.total_s / six.total_s:.2f}" if official else ""),
        "",
    ]
    payload = {
        "date": date,
        "machine": machine,
        "versions": versions,
        "settings": {"model": args.model, "prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens,
                     "dtype": args.dtype, "device": str(device), "repeats": args.repeats, "quick": args.quick,
                     "bases3": list(bases3), "bases6": list(bases6)},
        "timings": [{**{k: v for k, v in asdict(t).items() if k != "tokens"},
                     "decode_tok_s": t.decode_tok_s, "end_to_end_tok_s": t.end_to_end_tok_s} for t in timings],
        "checks": checks,
    }
    return {"markdown": "\n".join(lines), "json": payload}
