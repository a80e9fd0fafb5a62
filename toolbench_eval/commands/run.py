"""`toolbench-eval run`: evaluate a model on benchmark groups into a resumable run directory.

    toolbench-eval run --benchmark localtoolbench --groups G1_instruction --method react \\
        --model hf --model-args pretrained=default,dtype=float32,device=cpu --buckets auto:3 \\
        --executor local --concurrency 8 --limit 10 --out results/runs/smoke

Every flag can also come from `--config FILE.yaml` (keys = `RunConfig` fields); flags win.
Re-running the same command resumes: finished queries (those with an answer file) are skipped.

Exit codes: 0 all selected queries answered; 1 some failed (no answer file: a re-run retries them);
2 a user error (bad option, file or folder: nothing ran); 3 stopped after more than --max-infra-failures
queries failed because a tool server or the model's server was unavailable.
"""

from __future__ import annotations

import argparse
from typing import Any

from reasoning.eval_protocol import PROTOCOLS
from toolbench_eval.runner.config import (
    ENGINES,
    EXECUTORS,
    GEN_KWARGS,
    METHODS,
    PROMPT_STYLES,
    RunConfig,
    gen_kwargs_overrides,
    parse_key_values,
)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags shared by `run` (and reused by tools that wrap it). All default to None = "from config"."""
    add = parser.add_argument
    add("--config", metavar="FILE.yaml", help="YAML config; its keys are the long flag names with _ (flags win)")
    add("--benchmark", help="'localtoolbench' (bundled) or a folder in ToolBench/StableToolBench layout")
    add("--groups", help="comma-separated groups, e.g. G1_instruction,G1_category (default: all six)")
    add("--method", choices=METHODS.names, help="react = CoT@1, dfsdt = DFS_woFilter_w2, dfsdt-retriever")
    add("--model", choices=ENGINES.names, help="engine (default hf)")
    add("--model-args", "--model_args", help="key=value,... e.g. pretrained=default,dtype=float32,device=cpu")
    add("--model-name", help="short label for tables (default: derived from engine, weights and buckets)")
    add("--prompt-style", choices=PROMPT_STYLES, help="toolllama (default) or the model's chat template")
    add("--buckets", help="Attention Buckets: auto:N (base search for this model) or b1,b2,... ('none' = off)")
    add("--fusion", help="bucket fusion rule (default max_logit)")
    add("--record-bucket-weights", action="store_true", default=None,
        help="write each finished query's per-token bucket weights to <run>/bucket_weights/<group>/<qid>.json "
             "(needs --buckets; hf engine)")
    add("--executor", choices=EXECUTORS, help="local (asyncio, one process) or ray")
    add("--concurrency", type=int, help="trajectories in flight (per agent worker with ray); default 8")
    add("--limit", type=int, help="first N queries of each group (smoke runs)")
    add("--seed", type=int, help="run seed (DFSDT give-up choice, sampling); default 0")
    add("--protocol", choices=sorted(PROTOCOLS),
        help="evaluation rules (docs/protocol.md): stabletoolbench = StableToolBench's own code byte for byte "
             "(default, unless the model's training recipe records another: ToolSmol records toolbench-eval); "
             "stabletoolbench-vllm = its vLLM client; toolbench-eval = ours, with upstream's bugs fixed")
    add("--protocol-args", help="override single protocol switches, key=value,... e.g. parser=tolerant,"
                                "name_matching=exact (the table in docs/protocol.md lists them)")
    add("--single-chain-max-step", type=int,
        help="max depth in nodes, 3 per call (default: the protocol's; stabletoolbench 50, toolbench-eval 12)")
    add("--max-query-count", type=int, help="model calls per query (DFSDT budget); default 200")
    add("--width", type=int, help="DFSDT width (default 2)")
    add("--max-new-tokens", type=int, help="tokens per model call (default 1024, as StableToolBench)")
    add("--temperature", type=float, help="0 = greedy (default)")
    add("--gen-kwargs", "--gen_kwargs", help=f"lm-eval style generation settings, key=value,... with keys "
                                               f"{', '.join(GEN_KWARGS)} (the flags above win)")
    add("--constrain", choices=["off", "names", "arguments"],
        help="constrained decoding of each ReAct step (hf engine): names = only listed functions; arguments = "
             "also only their declared parameters, required ones present (default off, as upstream)")
    add("--tool-backend", help="local | stb | mirror | cache | rapidapi (options via the config file)")
    add("--retriever-model", help="dfsdt-retriever: sentence-transformers path ('default' = bundled MiniLM)")
    add("--top-k", type=int, help="dfsdt-retriever: APIs retrieved per query (default 5)")
    add("--ray-address", help="join an existing Ray cluster (e.g. auto or ray://host:10001)")
    add("--num-cpus", type=int, help="CPUs for a local Ray cluster")
    add("--num-gpus", type=int, help="GPUs for a local Ray cluster")
    add("--num-engines", type=int, help="engine actors (default: one per GPU, else 1)")
    add("--num-workers", type=int, help="agent worker actors (default 1)")
    add("--max-infra-failures", type=int,
        help="stop starting queries once more than this many failed because a tool server or the model's "
             "server was unavailable (default 3); such queries get no answer and a re-run retries them")
    add("--out", help="run directory (default results/runs/<label>-<method>)")
    add("--run-id", help="run id recorded in the manifest (default: the folder name)")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """YAML config (if any) with the command-line flags laid over it."""
    base = RunConfig.from_yaml(args.config) if getattr(args, "config", None) else RunConfig()
    overrides: dict[str, Any] = {
        name: getattr(args, name, None)
        for name in ("benchmark", "groups", "method", "model", "model_name", "prompt_style", "buckets", "fusion",
                     "record_bucket_weights", "executor", "concurrency", "limit", "seed", "single_chain_max_step",
                     "max_query_count", "width", "out", "run_id", "max_infra_failures", "protocol")
    }
    if getattr(args, "model_args", None) is not None:
        overrides["model_args"] = parse_key_values(args.model_args)
    if getattr(args, "protocol_args", None) is not None:
        overrides["protocol_args"] = parse_key_values(args.protocol_args, flag="--protocol-args")
    generation = gen_kwargs_overrides(args.gen_kwargs) if getattr(args, "gen_kwargs", None) else {}
    if overrides["seed"] is None:
        overrides["seed"] = generation.get("seed")
    decoding = {**generation.get("decoding", {}), **{
        k: v for k, v in (("max_new_tokens", args.max_new_tokens), ("temperature", args.temperature),
                          ("constrain", getattr(args, "constrain", None))) if v is not None}}
    if decoding:
        overrides["decoding"] = decoding
    if args.tool_backend is not None and base.tool_backend.get("name") != args.tool_backend:
        base.tool_backend = {"name": args.tool_backend}  # options of another backend do not carry over
    retriever = {k: v for k, v in (("model", args.retriever_model), ("top_k", args.top_k)) if v is not None}
    if retriever:
        overrides["retriever"] = retriever
    ray = {k: v for k, v in (("address", args.ray_address), ("num_cpus", args.num_cpus),
                             ("num_gpus", args.num_gpus), ("num_engines", args.num_engines),
                             ("num_workers", args.num_workers)) if v is not None}
    if ray:
        overrides["ray"] = ray
    return base.override(overrides, source=args.config or "command line")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a model on benchmark groups (resumable; writes results/runs/<run>/)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(parser)
    parser.add_argument("--force-config", action="store_true",
                        help="continue in --out even though it holds a run with a different config")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from toolbench_eval.runner import execute_run

    config = config_from_args(args)
    result = execute_run(config, force_config=args.force_config, progress=not (args.no_progress or args.quiet))
    print(f"run directory: {result.path}")
    print(f"score it with: toolbench-eval score {result.path}")
    return result.exit_code
