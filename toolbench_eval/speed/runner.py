"""`toolbench-eval bench runner`: our concurrent runner vs ToolBench's one-query-at-a-time loop.

Both sides solve the same LocalToolBench queries with the same loaded model, ReAct (or DFSDT with
`--method dfsdt`, the Attention Buckets paper's setting), greedy, in one process, one after the other:

- **sequential** (the ToolBench baseline): one query at a time, one prompt per forward
  (`HFEngine(max_batch_size=1)`), no prefix cache (cache keys dropped), so every step re-prefills
  the whole conversation, as upstream's `generate_stream` does;
- **runner**: `--concurrency` trajectories in flight, their model calls sharing the engine's decode
  steps (continuous batching), each trajectory's KV prefix reused between its steps;
- **runner + prompt lookup** (unless `--prompt-lookup 0`): the same, each decode step also verifying up to
  `--prompt-lookup` draft tokens found in the trajectory's own context (`buckets.prompt_lookup`).

With `--buckets N` (N > 1) every side decodes with N Attention Buckets (the model's base times
`RATIOS_6`/`RATIOS_3`, as `bench buckets`), and the baseline is the official pipeline's way instead:
ToolBench's sequential loop around the official-style decoder (`_official_buckets.OfficialBucketsEngine`:
buckets in sequential chunks of 2, each with its own forward and KV, cos/sin tables rebuilt in every
layer on every forward, the whole conversation prefilled again on every call). The official code attends with
transformers' eager attention everywhere; by default (`--official-prefill sdpa`) the baseline is given SDPA's
faster flash kernel for its prefills, `eager` runs it as the official code does, `both` measures both.

Writes a Markdown table to `results/benchmarks/runner.md` (trajectories/minute, speed-up, model
calls, tokens, engine steps and prompts per step) with the command line and machine facts. A tiny smoke setting:

    toolbench-eval bench runner --queries 2 --max-new-tokens 16 --out /tmp/runner.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolbench_eval.paths import RESULTS_DIR
from toolbench_eval.speed._official_buckets import PREFILL_ATTENTIONS, OfficialBucketsEngine


def register(subparsers) -> None:
    parser = subparsers.add_parser("runner", help="concurrent runner vs sequential ToolBench-style loop",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmark", default="localtoolbench")
    parser.add_argument("--groups", help="comma-separated groups (default: all groups of the benchmark)")
    parser.add_argument("--method", choices=("react", "dfsdt"), default="react",
                        help="reasoning method on every side (dfsdt: more model calls per query, each one a "
                             "conversation that shares its opening with earlier ones)")
    parser.add_argument("--max-query-count", type=int, default=None,
                        help="model calls allowed per query (the run config's max_query_count, default 200)")
    parser.add_argument("--queries", type=int, default=24, help="queries in total, taken round-robin over groups")
    parser.add_argument("--concurrency", type=int, default=8, help="trajectories in flight for the runner")
    parser.add_argument("--model-args", default="pretrained=default,device=cpu,dtype=float32")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--max-batch-size", type=int, default=16, help="the runner engine's batch limit")
    parser.add_argument("--prompt-lookup", type=int, default=2,
                        help="draft tokens per step for a third side, the runner with prompt lookup (0: skip it)")
    parser.add_argument("--buckets", type=int, default=1,
                        help="Attention Buckets per side (1: none; N > 1: the baseline is the official pipeline)")
    parser.add_argument("--official-prefill", choices=(*PREFILL_ATTENTIONS, "both"), default="sdpa",
                        help="attention of the official pipeline's prefills with --buckets: sdpa (faster than the "
                             "official code), eager (as the official code), both (two baseline sides)")
    parser.add_argument("--tool-backend", default="local")
    parser.add_argument("--out", type=Path, default=None,
                        help="Markdown path (default results/benchmarks/runner.md, runner_buckets.md with --buckets)")
    parser.set_defaults(func=run)


class _NoPrefixCache:
    """Forwards to an engine with the cache keys dropped: every call prefills its whole prompt."""

    def __init__(self, engine: Any) -> None:
        self.engine, self.name, self.bucket_spec = engine, engine.name, None
        self.tokenizer = getattr(engine, "tokenizer", None)

    async def generate(self, prompts, params, *, cache_keys=None):
        return await self.engine.generate(prompts, params, cache_keys=None)

    def count_tokens(self, text: str) -> int:
        return self.engine.count_tokens(text)

    async def close(self) -> None:
        await self.engine.close()


@dataclass
class Measurement:
    label: str
    queries: int
    seconds: float
    model_calls: int
    prompt_tokens: int
    completion_tokens: int
    batches: int  # engine steps
    mean_in_flight: float  # prompts per engine step
    answered: int
    errors: int
    drafted: int = 0  # prompt-lookup draft tokens fed
    accepted: int = 0  # of which greedy decoding confirmed

    @property
    def per_minute(self) -> float:
        return 60.0 * self.queries / self.seconds if self.seconds else 0.0


def pick_queries(groups: dict, count: int) -> list:
    """`count` work items taken round-robin over the groups (so every group is represented)."""
    from toolbench_eval.runner.driver import WorkItem

    queues = {name: list(group.queries) for name, group in groups.items()}
    items: list = []
    while len(items) < count and any(queues.values()):
        for name, queue in queues.items():
            if queue and len(items) < count:
                items.append(WorkItem(name, queue.pop(0)))
    return items


async def _measure(label: str, agent: Any, engine: Any, items: list, concurrency: int, folder: Path) -> Measurement:
    from toolbench_eval.runner.driver import Recorder, WorkPlan
    from toolbench_eval.runner.local import run_local
    from toolbench_eval.runner.rundir import RunDir

    rundir = RunDir(folder)
    totals: dict[str, int] = {}
    for item in items:
        totals[item.group] = totals.get(item.group, 0) + 1
    plan = WorkPlan(list(items), totals, {g: 0 for g in totals})
    recorder = Recorder(rundir, agent.config.method_name, plan, progress=True)
    started = time.perf_counter()
    await run_local(agent, items, recorder, concurrency=concurrency)
    seconds = time.perf_counter() - started
    summary = recorder.close()
    calls = prompt = completion = 0
    for event in rundir.read_events():
        if event["event"] == "query_finished":
            calls += int(event.get("query_count") or 0)
            prompt += int(event.get("total_tokens") or 0)
    if isinstance(engine, OfficialBucketsEngine):  # one prompt per step, one step per generated token
        return Measurement(label, len(items), seconds, calls, prompt, completion, engine.generated_tokens, 1.0,
                           summary.total("answered"), summary.total("errors"))
    sizes = list(engine.batch_sizes)
    mean_in_flight = sum(sizes) / len(sizes) if sizes else 0.0
    stats = engine.generator.stats
    return Measurement(label, len(items), seconds, calls, prompt, completion, len(sizes), mean_in_flight,
                       summary.total("answered"), summary.total("errors"), stats.drafted_tokens,
                       stats.accepted_tokens)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from buckets.generation import DecodeStats, model_base
    from toolbench_eval.engines.base import BucketSpec
    from toolbench_eval.engines.hf import HFEngine
    from toolbench_eval.errors import UserError
    from toolbench_eval.runner.build import benchmark_root, build_agent, load_groups, load_hf_model
    from toolbench_eval.runner.config import RunConfig
    from toolbench_eval.speed.buckets import RATIOS_3, RATIOS_6

    if not 1 <= args.buckets <= len(RATIOS_6):
        raise UserError(f"bench runner: --buckets must be between 1 and {len(RATIOS_6)}, got {args.buckets}")
    if args.out is None:
        args.out = RESULTS_DIR / "benchmarks" / ("runner.md" if args.buckets == 1 else "runner_buckets.md")
    config = RunConfig.from_mapping({
        "benchmark": args.benchmark, "method": args.method, "model": "hf", "model_args": args.model_args,
        "decoding": {"max_new_tokens": args.max_new_tokens, "temperature": 0.0},
        "tool_backend": {"name": args.tool_backend}, "concurrency": args.concurrency,
        **({"max_query_count": args.max_query_count} if args.max_query_count else {}),
        **({"groups": args.groups} if args.groups else {}),
    })
    root = benchmark_root(config)
    if not args.groups:
        from toolbench_eval.benchmark.loader import available_groups

        config.groups = available_groups(root)
    groups = load_groups(config, root)
    items = pick_queries(groups, args.queries)
    started = time.perf_counter()
    model, tokenizer = load_hf_model(config)
    load_seconds = time.perf_counter() - started
    ratios = RATIOS_3 if args.buckets == 3 else RATIOS_6[: args.buckets]
    bases = [model_base(model) * ratio for ratio in ratios] if args.buckets > 1 else None
    spec = BucketSpec(bases=tuple(bases)) if bases else None

    def baselines() -> tuple:
        if not bases:
            return (("sequential (ToolBench loop)", _NoPrefixCache(HFEngine(model, tokenizer, None, max_batch_size=1,
                                                                             prefix_cache_entries=1)), 1),)
        return tuple((official_label(len(bases), kind), OfficialBucketsEngine(model, tokenizer, bases,
                                                                              prefill_attention=kind), 1)
                     for kind in official_prefills(args))

    async def both() -> list[Measurement]:
        results = []
        in_flight = f"runner ({args.concurrency} in flight{f', {len(bases)} buckets' if bases else ''})"
        with tempfile.TemporaryDirectory(prefix="bench-runner-") as scratch:
            sides = (
                *baselines(),
                (in_flight, HFEngine(model, tokenizer, spec, max_batch_size=args.max_batch_size), args.concurrency),
            )
            if args.prompt_lookup > 0:
                sides += ((f"{in_flight} + prompt lookup ({args.prompt_lookup})",
                           HFEngine(model, tokenizer, spec, max_batch_size=args.max_batch_size,
                                    prompt_lookup=args.prompt_lookup), args.concurrency),)
            for index, (label, engine, concurrency) in enumerate(sides):
                agent = build_agent(config, engine, groups=groups, root=root)
                await engine.generate(["warm-up"], _params(config))  # first-call costs stay out of the timing
                inner = getattr(engine, "engine", engine)
                if isinstance(inner, OfficialBucketsEngine):
                    inner.calls = inner.generated_tokens = 0
                else:
                    inner.batch_sizes.clear()
                    inner.generator.stats = DecodeStats()  # the warm-up call is not measured
                print(f"measuring: {label}")
                results.append(await _measure(label, agent, inner, items, concurrency,
                                              Path(scratch) / f"side-{index}"))
                await engine.close()
        return results

    measurements = asyncio.run(both())
    text = report(args, measurements, load_seconds, len(items), bases, config.method_name)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    print(f"wrote {args.out}")
    return 0


def official_prefills(args: argparse.Namespace) -> tuple[str, ...]:
    """The prefill attention of each official-pipeline side, in the order they are measured."""
    return PREFILL_ATTENTIONS[::-1] if args.official_prefill == "both" else (args.official_prefill,)


def speedup_headers(prefills: tuple[str, ...]) -> list[str]:
    """The speed-up columns' titles: plain with one baseline, naming each baseline's attention with two."""
    if len(prefills) == 1:
        return ["speed-up"]
    return [f"speed-up vs {'eager' if kind == 'eager' else 'SDPA-prefill'} official" for kind in prefills]


def official_label(buckets: int, prefill_attention: str) -> str:
    """The table's name for an official-pipeline side."""
    attention = ("eager attention, as the official code" if prefill_attention == "eager"
                 else "SDPA prefill, faster than the official code")
    return (f"official pipeline (ToolBench loop, {buckets} buckets in chunks of 2, per-layer cos/sin rebuild, "
            f"{attention})")


def _params(config):
    from toolbench_eval.engines.base import SamplingParams

    return SamplingParams(max_new_tokens=4)


def report(args: argparse.Namespace, measurements: list[Measurement], load_seconds: float, queries: int,
           bases: list[float] | None = None, method_name: str = "CoT@1") -> str:
    import torch

    prefills = official_prefills(args) if bases else ("sequential",)
    baselines = measurements[: len(prefills)]  # the baseline sides are measured first
    title = ("the official Attention Buckets pipeline" if bases else "the sequential ToolBench loop")
    buckets = f" --buckets {args.buckets}" if bases else ""
    method = f"{'DFSDT' if args.method == 'dfsdt' else 'ReAct'} ({method_name})"  # e.g. ReAct (CoT@1)
    lines = [
        f"# Runner benchmark: concurrent trajectories vs {title}",
        "",
        (f"Command: `toolbench-eval bench runner --method {args.method} --queries {args.queries} "
        + (f"--max-query-count {args.max_query_count} " if args.max_query_count else "")
        + f"--concurrency {args.concurrency} "
        f"--max-new-tokens {args.max_new_tokens} --prompt-lookup {args.prompt_lookup}{buckets} "
        + (f"--official-prefill {args.official_prefill} " if bases and args.official_prefill != "sdpa" else "")
        + f"--model-args {args.model_args}`"),
        "",
        (f"{queries} LocalToolBench queries (round-robin over the groups), {method}, greedy, same loaded model "
        f"on every side, measured one after the other in one process. "
        + (f"Buckets: bases {', '.join(f'{b:,.0f}' for b in bases)} (max-logit fusion) on every side. " if bases
           else "")
        + 
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads. Model load (not timed below): {load_seconds:.1f} s."),
        "",
        ("| loop | queries | wall s | trajectories/min | "
         + " | ".join(speedup_headers(prefills))
         + " | model calls | tokens (prompt+completion) | engine steps |"
         " mean prompts per step | draft tokens accepted | answered | errors |"),
        "|---|---|---|---|" + "---|" * len(baselines) + "---|---|---|---|---|---|---|",
    ]
    for m in measurements:
        speedups = " | ".join(f"{m.per_minute / b.per_minute:.2f}x" if b.per_minute else "nan" for b in baselines)
        drafts = f"{m.accepted} of {m.drafted}" if m.drafted else "-"
        lines.append(f"| {m.label} | {m.queries} | {m.seconds:.1f} | {m.per_minute:.2f} | {speedups} | "
                     f"{m.model_calls} | {m.prompt_tokens} | {m.batches} | {m.mean_in_flight:.2f} | {drafts} | "
                     f"{m.answered} | {m.errors} |")
    if bases:
        lines += ["", ("Official pipeline: ToolBench's loop (one query at a time) around a decoder with the official "
                       "code's cost structure (`toolbench_eval/speed/_official_buckets.py`): the buckets run in "
                       "sequential chunks of 2, each chunk its own forward and KV cache, every attention layer "
                       "rebuilding its chunk's full cos/sin tables on every forward, every call prefilling the whole "
                       "conversation again, stop strings checked on the decoded text after each token. An engine "
                       "step there is one generated token (3 chunk forwards at N=6). Its attention: transformers' "
                       "eager attention in every forward, as the official code (pinned to transformers 4.28.1, "
                       "which has no other), or, on an SDPA-prefill side, SDPA's flash kernel for each call's "
                       "prefill and eager for its one-token steps (the faster kernel of each phase here). "
                       "Fusion and greedy choice are "
                       "the same rule on both sides; their float arithmetic differs (batched vs not), so paths may "
                       "differ: compare trajectories/minute with the model calls and tokens.")]
    sequential = ("" if bases else "Sequential: one query at a time, `max_batch_size=1`, cache keys dropped (every "
                  "step re-prefills the whole conversation). ")
    lines += [
        "",
        (sequential + "Runner: trajectories in flight share decode steps (continuous batching: a finished call "
        "leaves and a waiting one joins between two steps; each new prompt is prefilled on its own), and each "
        "keeps its KV prefix between its calls. An engine step is one decode forward plus the prefill of "
        "the prompts that joined before it. Tokens are prompt + completion tokens as the answer files count them "
        "(`total_tokens`); the two sides may take different paths where batched and unbatched float arithmetic "
        "differ, so compare trajectories/minute together with the model calls. Prompt lookup: each decode step "
        "also feeds up to K tokens that followed the latest earlier occurrence of the context's last 1-3 tokens and "
        "keeps those greedy decoding confirms; exact in exact arithmetic, in bfloat16 a multi-column step rounds "
        "differently from a one-column step, so a near-tie can flip and a trajectory take another path."),
        "",
    ]
    return "\n".join(lines)
