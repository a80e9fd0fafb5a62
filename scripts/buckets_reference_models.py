"""`auto:6` base searches for the reference model configs: sets, coverage and times, as a run would search them.

    python scripts/buckets_reference_models.py            # writes results/buckets/reference_models.{json,md}
    python scripts/buckets_reference_models.py --benchmark PATH --tokenizer default --out STEM

For each config of `toolbench_eval/reference_models.py` (Llama-2-7B, Llama-3.1-8B, Qwen2.5-7B, Mistral-7B-v0.1):

1. the window a run would search: the first-prompt token counts of the benchmark's queries
   (`toolbench_eval/runner/search_window.py`, the same code and rule as `resolve_buckets`), then
   p95 + 2,048 tokens of growth, capped at the model's context; and three fixed contexts (2k, 4k, 8k tokens);
2. the greedy search with the model's own scaled RoPE frequencies, timed from a cold extrema cache (a fresh
   run starts cold); when it stops before 6 bases, also the time to try the alternatives it reports;
3. the coverage of the set found (`buckets.coverage`).

The model's own tokenizers cannot be loaded offline here, so prompts are counted with the default model's
tokenizer (SmolLM2, a 49k-token BPE); the JSON says so. Times depend on the machine and its load: they are
measured once, recorded with the machine, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from buckets.coverage import set_coverage
from buckets.extrema import base_extrema
from buckets.search import default_search_range, search_bases, window_for_context
from buckets.search_advice import alternatives

N = 6
FIXED_CONTEXTS = (2048, 4096, 8192)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--benchmark", default=str(REPO.parent / "shared" / "toolbench" / "stabletoolbench"),
                        help="benchmark whose prompts set the window (default: ../shared StableToolBench)")
    parser.add_argument("--tokenizer", default="default", help="tokenizer counting the prompts (default: SmolLM2)")
    parser.add_argument("--out", default=str(REPO / "results" / "buckets" / "reference_models"),
                        help="output stem: STEM.json and STEM.md")
    args = parser.parse_args()

    from reasoning.eval_protocol import DEFAULT_PROTOCOL, resolve_protocol
    from toolbench_eval.benchmark.loader import load_benchmark
    from toolbench_eval.models import model_rope_info
    from toolbench_eval.reference_models import REFERENCE_CONFIGS, reference_config
    from toolbench_eval.runner.search_window import first_prompt_tokens, window_from_prompts
    from toolbench_eval.tokenizers import load_tokenizer

    groups = load_benchmark(args.benchmark)
    started = time.perf_counter()
    lengths, prompt = first_prompt_tokens(groups, load_tokenizer(args.tokenizer), resolve_protocol(DEFAULT_PROTOCOL))
    counting_s = time.perf_counter() - started

    models = []
    for name in REFERENCE_CONFIGS:
        rope = model_rope_info(reference_config(name))
        measured = window_from_prompts(lengths, max_tokens=rope.max_position_embeddings,
                                       position_scale=rope.position_scale)
        contexts = [("measured", measured.source["context_tokens"])] + [(f"{c}", c) for c in FIXED_CONTEXTS]
        rows = [search_row(rope, label, context) for label, context in contexts]
        models.append({"model": name, "rope": rope_summary(rope), "window_rule": measured.source, "searches": rows})
        print(f"{name}: " + "; ".join(f"{r['context']} -> {r['bases']} ({r['search_s']:.2f} s)" for r in rows))

    report = {
        "command": "python scripts/buckets_reference_models.py",
        "benchmark": os.path.relpath(args.benchmark, REPO),
        "groups": list(groups),
        "tokenizer": (f"{args.tokenizer!r} (SmolLM2-135M's, a stand-in for each model's own)"
                      if args.tokenizer == "default" else repr(args.tokenizer)),
        "prompt": prompt,
        "prompt_counting_s": round(counting_s, 2),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
        "n": N,
        "models": models,
    }
    stem = Path(args.out)
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_name(stem.name + ".json").write_text(json.dumps(report, indent=2) + "\n")
    stem.with_name(stem.name + ".md").write_text(markdown(report))
    print(f"wrote {stem}.json and {stem}.md")
    return 0


def search_row(rope, label: str, context: int) -> dict:
    """One cold, timed auto:6 search over the window of `context` tokens, its coverage, and advice if it stopped."""
    spec = rope.spec
    window = window_for_context(context, spec.position_scale)
    low, high, step = default_search_range(rope.rope_theta)
    base_extrema.cache_clear()  # a run starts cold
    started = time.perf_counter()
    result = search_bases(N, model_base=rope.rope_theta, rope=spec, min_base=low, max_base=high, step=step,
                          window=window, allow_partial=True)
    search_s = time.perf_counter() - started
    coverage = set_coverage(result.bases, window=window, tolerance=result.settings.tolerance, rope=spec)
    row = {
        "context": label,
        "context_tokens": context,
        "window": list(window),
        "candidates": f"range({low}, {high}+1, {step})",
        "bases": [number(b) for b in result.bases],
        "complete": result.complete,
        "search_s": round(search_s, 3),
        "coverage": coverage.to_dict(),
        "coverage_summary": coverage.summary(spec.position_scale),
    }
    if not result.complete:
        started = time.perf_counter()
        tried = alternatives(result.settings)
        row["stopped"] = result.stopped
        row["advice_s"] = round(time.perf_counter() - started, 3)
        row["alternatives"] = [{"change": a.change, "bases": [number(b) for b in a.bases], "complete": a.complete}
                               for a in tried]
    return row


def rope_summary(rope) -> dict:
    from buckets.search import rope_record

    return {"rope_theta": number(rope.rope_theta), **rope_record(rope.spec)}


def markdown(report: dict) -> str:
    lines = [
        f"# `auto:{report['n']}` for reference model configs",
        "",
        (f"Regenerate: `{report['command']}` (writes this file and `reference_models.json`, which also holds each "
        "set's troughs and the alternatives tried). Prompts: "
        f"{report['prompt']}, {len(report['groups'])} groups of `{report['benchmark']}`, counted with the "
        f"tokenizer {report['tokenizer']} in {report['prompt_counting_s']} s. Machine: {report['machine']}."),
        "",
        ("Window rule (as `--buckets auto:N` in a run): context = p95 of first-prompt tokens + 2,048 growth, capped "
        "at the model's context; window = the official fractions 1000/4096..4090/4096 of it. The other rows use "
        "fixed contexts. Search time: cold start, the model's own scaled RoPE frequencies, candidates from the "
        "model base to 3x it in 41 steps, tolerance 3, official detector."),
        "",
        ("| model | RoPE | context (tokens) | window | bases (pick order) | troughs covered | search s | "
        "if stopped: settings that complete it (tried) |"),
        "|---|---|---|---|---|---|---|---|",
    ]
    for model in report["models"]:
        rope = model["rope"]
        rope_text = f"base {rope['rope_theta']}, d {rope['head_dim']}, {rope['rope_type']}"
        if rope["rope_type"] == "llama3":
            rope_text += f" x{number(rope['factor'])} (orig. {rope['original_max_position_embeddings']})"
        for row in model["searches"]:
            context = str(row["context_tokens"])
            if row["context"] == "measured":
                p95 = model["window_rule"]["prompt_tokens"]["p95"]
                capped = ", capped" if row["context_tokens"] < p95 + 2048 else ""
                context += f" (p95 {p95} + 2048{capped})"
            bases = ", ".join(str(b) for b in row["bases"])
            if not row["complete"]:
                bases = f"stopped at {len(row['bases'])} of {report['n']}: {bases}"
            working = [f"{a['change']}" for a in row.get("alternatives", []) if a["complete"]]
            advice = "" if row["complete"] else ("; ".join(working) or "none of those tried") + \
                f" (tried in {row['advice_s']} s)"
            coverage = row["coverage"]
            lines.append(f"| {model['model']} | {rope_text} | {context} | {row['window'][0]}-{row['window'][1]} | "
                         f"{bases} | {coverage['covered']} of {coverage['troughs']} | {row['search_s']:.2f} | {advice} |")
    return "\n".join(lines) + "\n"


def number(value: float):
    value = float(value)
    return int(value) if value.is_integer() else value


if __name__ == "__main__":
    raise SystemExit(main())
