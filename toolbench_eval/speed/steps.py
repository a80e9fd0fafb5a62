"""`toolbench-eval bench steps`: the hf engine's host work per decode step, beside `model.generate`'s.

On a tiny model the forward costs almost nothing, so what is left of a decode step is host work:
admission and cache book-keeping, fusion, sampling, stop checks, Python. This benchmark decodes C
contexts at once (C = 16, 64, 256) with the engine's decode loop (`buckets.generation.ContinuousDecoder`)
for 1 bucket (the plain path the engine takes without buckets) and N buckets, and times

- the whole step, and inside it the model forward (`BucketedGenerator.forward`), fusion
  (`buckets.fusion.fuse`), token choice (`buckets.sampling.choose_tokens`), per-token book-keeping
  (`advance`: stop strings, EOS, lookup index), retiring/compacting and feeding;
- `model.generate` on the same C prompts for the same number of steps, its forward timed by a hook,
  so "host" means the same thing on both sides: step time minus the model's forward.

Every context gets the same stop strings (`--stop`, default ``Observation:``), as agent steps do, so the
stop check's cost is in. Tokens are random (a random model), EOS is ignored, so every context runs all
steps. Prefill is not timed (the first step admits everyone; decode steps after it are).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from toolbench_eval.paths import RESULTS_DIR
from toolbench_eval.speed.buckets import RATIOS_6, machine_description

TARGET_MS = 10.0  # issue 25: host work per engine step at 64 contexts


def register(subparsers) -> None:
    parser = subparsers.add_parser("steps", help="host work per decode step of the hf engine vs model.generate")
    parser.add_argument("--contexts", default="16,64,256", help="comma-separated context counts (default 16,64,256)")
    parser.add_argument("--buckets", default="1,6", help="comma-separated bucket counts (1 = plain path)")
    parser.add_argument("--prompt-tokens", type=int, default=64)
    parser.add_argument("--steps", type=int, default=24, help="timed decode steps per setting")
    parser.add_argument("--warmup", type=int, default=4, help="untimed decode steps before the timed ones")
    parser.add_argument("--stop", default="Observation:", help="stop string every context carries ('' for none)")
    parser.add_argument("--layers", type=int, default=2, help="tiny model: decoder layers")
    parser.add_argument("--hidden", type=int, default=64, help="tiny model: hidden size")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "benchmarks" / "steps.md")
    parser.set_defaults(func=run)


@dataclass
class StepTimes:
    """Milliseconds per decode step for one (side, contexts, buckets) setting."""

    label: str
    contexts: int
    buckets: int
    step_ms: list[float] = field(default_factory=list)
    parts_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def median(self, part: str | None = None) -> float:
        values = self.step_ms if part is None else self.parts_ms.get(part, [])
        return statistics.median(values) if values else 0.0

    @property
    def other_ms(self) -> float:
        """Median over steps of the host time no timer covers (Python between the timed calls)."""
        timed = [sum(values[i] for values in self.parts_ms.values()) for i in range(len(self.step_ms))]
        return statistics.median(total - inside for total, inside in zip(self.step_ms, timed))

    @property
    def host_ms(self) -> float:
        """Median over steps of (step - model forward)."""
        forward = self.parts_ms.get("forward", [0.0] * len(self.step_ms))
        return statistics.median(total - fwd for total, fwd in zip(self.step_ms, forward))


class _Timers:
    """Accumulates wall time of wrapped callables within one step."""

    def __init__(self) -> None:
        self.current: dict[str, float] = defaultdict(float)

    def wrap(self, name: str, fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.current[name] += time.perf_counter() - start

        return timed

    def take(self) -> dict[str, float]:
        out, self.current = dict(self.current), defaultdict(float)
        return out


@contextmanager
def _instrumented(generator, timers: _Timers) -> Iterator[None]:
    """Time the decode loop's parts by wrapping the names `buckets.generation` calls them through."""
    from buckets import generation

    patched = {"fuse": generation.fuse, "choose_tokens": generation.choose_tokens, "feed": generation.feed,
               "keep_fed": generation.keep_fed, "select": generation.select}
    for name, fn in patched.items():
        setattr(generation, name, timers.wrap(name, fn))
    generator.forward = timers.wrap("forward", generator.forward)
    generator.advance = timers.wrap("advance", generator.advance)
    try:
        yield
    finally:
        for name, fn in patched.items():
            setattr(generation, name, fn)
        del generator.forward, generator.advance  # back to the class's methods


def tiny_model(vocab_size: int, layers: int, hidden: int, seed: int = 0):
    """A random Llama with SmolLM2's vocabulary and RoPE base and almost no layers: kernels cost ~nothing."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=8192, rope_theta=100_000.0, tie_word_embeddings=True)
    return LlamaForCausalLM(config).eval()


def prompts(count: int, length: int, vocab_size: int, seed: int = 0) -> list[list[int]]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randint(1000, vocab_size, (count, length), generator=generator).tolist()


def measure_ours(model, tokenizer, contexts: int, buckets: int, args) -> StepTimes:
    from buckets.generation import BucketedGenerator, DecodeParams, model_base

    bases = None if buckets == 1 else [model_base(model) * r for r in RATIOS_6[:buckets]]
    generator = BucketedGenerator(model, tokenizer, bases=bases)
    stop = (args.stop,) if args.stop else ()
    params = DecodeParams(max_new_tokens=args.warmup + args.steps + 4, ignore_eos=True, stop=stop)
    decoder = generator.continuous()
    timers, times = _Timers(), StepTimes("ours (hf engine loop)", contexts, buckets)
    with _instrumented(generator, timers):
        decoder.step([(ids, params, None, i) for i, ids in enumerate(prompts(contexts, args.prompt_tokens,
                                                                             model.config.vocab_size))])
        for step in range(args.warmup + args.steps):
            timers.take()
            start = time.perf_counter()
            decoder.step()
            elapsed = time.perf_counter() - start
            parts = timers.take()
            if step >= args.warmup:
                times.step_ms.append(elapsed * 1e3)
                for name, seconds in parts.items():
                    times.parts_ms[name].append(seconds * 1e3)
    if decoder.active != contexts:
        raise RuntimeError(f"bench steps: {contexts - decoder.active} contexts ended early")
    return times


def measure_generate(model, tokenizer, contexts: int, args) -> StepTimes:
    """`model.generate` on the same prompts. A decode step is the time from one forward's start to the next's
    (everything generate does between two forwards included); its forward part comes from hooks on the model."""
    import torch

    ids = torch.tensor(prompts(contexts, args.prompt_tokens, model.config.vocab_size))
    started: list[float] = []
    forward_seconds: list[float] = []
    pre = model.register_forward_pre_hook(lambda *_: started.append(time.perf_counter()))
    post = model.register_forward_hook(lambda *_: forward_seconds.append(time.perf_counter() - started[-1]))
    kwargs = {"attention_mask": torch.ones_like(ids), "do_sample": False, "pad_token_id": 0}
    if args.stop:
        kwargs.update(stop_strings=[args.stop], tokenizer=tokenizer)
    # Forward 0 is the prefill, then `warmup` untimed decode steps, then `steps` timed ones, each closed by the
    # start of the forward after it (hence two spare tokens).
    new = args.warmup + args.steps + 2
    try:
        with torch.inference_mode():
            model.generate(ids, max_new_tokens=new, min_new_tokens=new, **kwargs)
    finally:
        pre.remove()
        post.remove()
    times = StepTimes("model.generate", contexts, 1)
    for step in range(1 + args.warmup, 1 + args.warmup + args.steps):
        times.step_ms.append((started[step + 1] - started[step]) * 1e3)
        times.parts_ms["forward"].append(forward_seconds[step] * 1e3)
    return times


def run(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm
    from transformers.utils import logging as hf_logging

    from toolbench_eval.errors import UserError
    from toolbench_eval.tokenizers import load_tokenizer

    try:
        counts = [int(c) for c in args.contexts.split(",") if c.strip()]
        bucket_counts = [int(b) for b in args.buckets.split(",") if b.strip()]
    except ValueError as error:
        raise UserError(f"bench steps: --contexts and --buckets take comma-separated integers ({error})") from None
    if not counts or min(counts) < 1 or not bucket_counts or not 1 <= min(bucket_counts) <= max(bucket_counts) <= 6:
        raise UserError("bench steps: contexts must be >= 1 and bucket counts between 1 and 6")
    if args.steps < 1 or args.warmup < 1 or args.prompt_tokens < 1:
        raise UserError("bench steps: --steps, --warmup and --prompt-tokens must be >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    tokenizer = load_tokenizer("default")
    model = tiny_model(len(tokenizer), args.layers, args.hidden)
    rows: list[StepTimes] = []
    settings = [(c, b) for c in counts for b in [0, *bucket_counts]]  # 0: model.generate
    for contexts, buckets in tqdm(settings, desc="bench steps", unit="setting"):
        rows.append(measure_generate(model, tokenizer, contexts, args) if buckets == 0
                    else measure_ours(model, tokenizer, contexts, buckets, args))
    markdown = report(args, model, rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown)
    args.out.with_suffix(".json").write_text(json.dumps(
        {"machine": machine_description(torch.device("cpu")), "command": command_line(args),
         "rows": [{"side": r.label, "contexts": r.contexts, "buckets": r.buckets, "step_ms": r.median(),
                   "host_ms": r.host_ms, "parts_ms": {k: r.median(k) for k in r.parts_ms}} for r in rows]},
        indent=2) + "\n")
    print(markdown)
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")
    return 0


def command_line(args) -> str:
    return (f"toolbench-eval bench steps --contexts {args.contexts} --buckets {args.buckets} --prompt-tokens "
            f"{args.prompt_tokens} --steps {args.steps} --warmup {args.warmup} --layers {args.layers} "
            f"--hidden {args.hidden}" + (f" --threads {args.threads}" if args.threads else "")
            + (f" --stop '{args.stop}'" if args.stop != "Observation:" else ""))


PARTS = ("forward", "fuse", "choose_tokens", "advance", "feed", "keep_fed", "select")


def report(args, model, rows: list[StepTimes]) -> str:
    import torch

    machine = machine_description(torch.device("cpu"))
    config = model.config
    lines = [
        "# Host work per decode step: the hf engine's loop vs `model.generate`",
        "",
        f"Command: `{command_line(args)}`",
        "",
        (f"Tiny random Llama ({config.num_hidden_layers} layers, hidden {config.hidden_size}, vocabulary "
        f"{config.vocab_size}, float32) so kernels cost little; {args.prompt_tokens}-token random prompts, "
        f"stop string {args.stop!r} on every context, EOS ignored; {args.steps} timed decode steps after "
        f"{args.warmup} untimed ones (medians). Machine: {machine['cpu']}, {machine['cpu_count']} CPUs, "
        f"torch {torch.__version__}, {machine['torch_threads']} threads."),
        "",
        ("**host** = step - model forward. Ours: medians of per-step timers around `BucketedGenerator.forward`, "
        "`fuse`, `choose_tokens`, `advance` (per token: EOS, stop strings), `feed`/`keep_fed` and `select` "
        "(compaction). `model.generate`: from one forward's start to the next's, forward from hooks on the "
        "model."),
        "",
        ("| side | contexts | buckets | step ms | forward ms | host ms | fuse | choose | advance | feed+keep | "
        "select | other |"),
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cells = [f"{row.median(p):.2f}" if p in row.parts_ms else "-" for p in ("fuse", "choose_tokens", "advance")]
        feed = (f"{row.median('feed') + row.median('keep_fed'):.2f}" if "feed" in row.parts_ms else "-")
        select = f"{row.median('select'):.2f}" if "select" in row.parts_ms else "-"
        other = f"{row.other_ms:.2f}" if "fuse" in row.parts_ms else "-"
        bold = "**" if row.contexts == 64 and row.label.startswith("ours") else ""
        lines.append(f"| {row.label} | {row.contexts} | {row.buckets} | {row.median():.2f} | "
                     f"{row.median('forward'):.2f} | {bold}{row.host_ms:.2f}{bold} | {' | '.join(cells)} | {feed} | "
                     f"{select} | {other} |")
    at_64 = [r for r in rows if r.contexts == 64 and r.label.startswith("ours")]
    if at_64:
        worst = max(r.host_ms for r in at_64)
        verdict = "met" if worst <= TARGET_MS else "not met"
        lines += ["", (f"Target (host <= {TARGET_MS:.0f} ms per step at 64 contexts): **{verdict}** "
                  f"(worst of bucket counts: {worst:.2f} ms).")]
    return "\n".join(lines) + "\n"
