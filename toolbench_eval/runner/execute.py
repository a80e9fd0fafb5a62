"""Run one configured evaluation into its run directory, resuming whatever is already there.

Order matters for resume: the config is checked against an existing manifest *before* anything
heavy happens, and a run with nothing left to do returns without loading the model.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolbench_eval.models import MODEL_ARG_KEYS
from toolbench_eval.paths import RESULTS_DIR
from toolbench_eval.runner.config import RunConfig
from toolbench_eval.runner.driver import INFRASTRUCTURE, Recorder, RunSummary, plan_work
from toolbench_eval.runner.manifest import Manifest
from toolbench_eval.runner.rundir import RunDir, git_revision, now_iso, package_versions


def run_directory(config: RunConfig) -> Path:
    """`config.out`, else `results/runs/<run_id or label-method>`."""
    if config.out:
        return Path(config.out)
    return RESULTS_DIR / "runs" / (config.run_id or f"{config.label()}-{config.method}")


@dataclass
class ModelCache:
    """Loaded (model, tokenizer) pairs by engine + weights, shared across runs of an ablation grid."""

    loaded: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    @staticmethod
    def key(config: RunConfig) -> str:
        args = {k: v for k, v in config.model_args.items() if k in MODEL_ARG_KEYS}  # all that changes the load
        return json.dumps([config.model, args], sort_keys=True, default=str)

    def get(self, config: RunConfig) -> tuple[Any, Any] | None:
        if config.model != "hf":
            return None
        key = self.key(config)
        if key not in self.loaded:
            from toolbench_eval.runner.build import load_hf_model

            self.loaded[key] = load_hf_model(config)
        return self.loaded[key]


def model_config_only(config: RunConfig) -> tuple[Any, Any]:
    """`(transformers config, tokenizer)` of a local `hf` or `vllm` model without loading weights, for the base
    search of `--buckets auto:N` (its RoPE and the prompt lengths); `(None, None)` when there is nothing to read."""
    if config.model not in ("hf", "vllm") or config.buckets is None or not config.buckets.startswith("auto:"):
        return None, None
    from transformers import AutoConfig, AutoTokenizer

    from toolbench_eval.models import resolve_model_dir

    folder = resolve_model_dir(config.engine_spec)
    return AutoConfig.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


@dataclass
class RunResult:
    path: Path
    manifest: Manifest
    summary: RunSummary | None  # None when nothing was left to do
    todo: int
    skipped: int

    @property
    def exit_code(self) -> int:
        """0: all done; 1: some queries failed (a re-run retries them); 3: stopped on infrastructure failures."""
        if self.summary is None:
            return 0
        if self.summary.abort_reason:
            return 3
        return 1 if self.summary.total("errors") or self.summary.total(INFRASTRUCTURE) else 0


def build_manifest(config: RunConfig, run_dir: Path, root: Path, buckets: dict[str, Any] | None,
                   query_ids: dict[str, list[str]]) -> Manifest:
    """The manifest of the run-directory contract (scoring/export read it)."""
    return Manifest(
        run_id=config.run_id or run_dir.name,
        created=now_iso(),
        method=config.method_name,
        method_label=config.method,
        model={"engine": config.model, "spec": config.engine_spec, "args": dict(config.model_args),
               "weights": weights_id(config)},
        model_name=config.label(),
        buckets=buckets,
        benchmark={"name": config.benchmark if config.benchmark == "localtoolbench" else Path(config.benchmark).name,
                   "root": str(root)},
        groups=list(config.groups),
        query_ids=query_ids,
        decoding=dict(config.decoding),
        prompt_style=config.prompt_style,
        tool_format=config.tool_format,
        protocol=config.eval_protocol.manifest(),
        single_chain_max_step=config.max_step,
        max_query_count=config.max_query_count,
        width=config.width if config.method != "react" else None,
        seed=config.seed,
        tool_backend=dict(config.tool_backend),
        retriever=dict(config.retriever) if config.method == "dfsdt-retriever" else None,
        config=config.as_dict(),
        versions=package_versions(),
        git_revision=git_revision(),
    )


def weights_id(config: RunConfig) -> str | None:
    """The fingerprint of the local weights a run loads (see `toolbench_eval.models.model_weights_id`)."""
    from toolbench_eval.models import model_weights_id

    return model_weights_id(config.engine_spec) if config.model in ("hf", "vllm") else None


def check_same_weights(manifest: Manifest, current: str | None, manifest_path: Path) -> None:
    """Refuse to resume a run whose answers came from other weights behind the same model spec."""
    from toolbench_eval.errors import UserError

    before = manifest.weights
    if before and current and before != current:
        raise UserError(f"{manifest_path}: this run's answers come from the weights {before}, but its model spec "
                        f"now loads {current}; fix: choose a new --out (or pass --force-config to continue here "
                        "anyway: answers would mix models)")


def check_same_protocol(manifest: Manifest, config: RunConfig, manifest_path: Path) -> None:
    """Refuse to resume a run whose answers were made under other protocol rules (e.g. the protocol was left
    to the model's recipe, and the recipe now records another one)."""
    from toolbench_eval.errors import UserError

    switches = manifest.protocol_switches
    if switches is None:
        return  # runs made before manifests recorded a protocol
    recorded, current = manifest.protocol, config.eval_protocol
    # Switches added since the run was made are not in its record; they are not held against it.
    changed = sorted(key for key, value in current.switches().items() if key in switches and switches[key] != value)
    if changed:
        raise UserError(f"{manifest_path}: this run's answers were made under protocol {recorded.get('label')!r}, "
                        f"now {current.label!r} (switches {changed} differ); fix: choose a new --out, or pass "
                        f"--protocol {recorded.get('name')} (and its overrides) to continue it")


def execute_run(config: RunConfig, *, force_config: bool = False, progress: bool = True,
                models: ModelCache | None = None, log=print) -> RunResult:
    """Run (or resume) `config`; returns where it wrote and what happened.

    A run folder this call creates is removed again when the run fails before any query is answered, so
    the corrected command finds no manifest of a config that never ran."""
    path = run_directory(config)
    fresh = not path.exists()
    try:
        return _execute(config, path, force_config=force_config, progress=progress, models=models, log=log)
    except BaseException:
        if fresh:
            RunDir(path).remove_if_unanswered()
        raise


def _execute(config: RunConfig, path: Path, *, force_config: bool, progress: bool, models: ModelCache | None,
             log) -> RunResult:
    from toolbench_eval.runner.build import (
        benchmark_root,
        load_groups,
        preflight,
        resolve_buckets,
    )

    rundir = RunDir(path)
    existing = rundir.read_manifest()
    if existing is not None and not force_config:
        rundir.check_same_config(existing, config.as_dict(), force_config=False)
        check_same_weights(existing, weights_id(config), rundir.manifest_path)
        check_same_protocol(existing, config, rundir.manifest_path)
    root = benchmark_root(config)
    groups = load_groups(config, root)
    plan = plan_work(groups, config.groups, rundir, config.method_name, config.limit)
    query_ids = {name: [q.query_id for q in list(groups[name].queries)[: config.limit]] for name in groups}
    skipped = sum(plan.already_done.values())
    if not plan.todo and existing is not None and not force_config:
        manifest = rundir.write_manifest(existing.replace(query_ids=query_ids))
        log(f"{path}: all {skipped} selected queries already have answers; nothing to do")
        return RunResult(path, manifest, None, 0, skipped)
    backend = preflight(config, path)
    if config.executor == "ray":  # checked here; each agent worker builds its own
        asyncio.run(backend.close())

    # With Ray the engine actors load the weights; the driver only needs the model config (for auto:N).
    loaded = (models or ModelCache()).get(config) if config.executor == "local" else None
    reuse = existing is not None and not force_config and existing.buckets and config.buckets
    if reuse:
        from toolbench_eval.engines.base import BucketSpec

        block = existing.buckets
        bucket_spec = BucketSpec(existing.bases, block.get("fusion", config.fusion))
    else:
        model, tokenizer = loaded or model_config_only(config)
        bucket_spec, block = resolve_buckets(config, model, groups=groups, tokenizer=tokenizer)
    manifest = rundir.prepare(build_manifest(config, path, root, block, query_ids), force_config=force_config)
    manifest = manifest.replace(query_ids=query_ids)
    if config.record_bucket_weights and not manifest.config.get("record_bucket_weights"):
        # A resumed run that starts recording: the manifest says this folder holds weight sidecars (for the
        # queries answered while recording was on; the option leaves answers unchanged, so resuming is allowed).
        manifest = manifest.replace(config={**manifest.config, "record_bucket_weights": True})
    if force_config and manifest.weights != weights_id(config):
        manifest = manifest.with_weights(weights_id(config))
    rundir.write_manifest(manifest)
    if block and not reuse:
        log(f"Attention Buckets: bases {block['bases']} ({block['source']}, fusion {block['fusion']})")

    retriever = None
    if config.method == "dfsdt-retriever":
        from toolbench_eval.runner.build import build_retriever

        retriever = build_retriever(config, groups)
        report_retrieval(config, groups, rundir, retriever, log=log)
    rundir.log("run_started", executor=config.executor, concurrency=config.concurrency, todo=len(plan.todo),
               skipped=skipped, limit=config.limit, record_bucket_weights=config.record_bucket_weights,
               argv=sys.argv[1:])
    if skipped:
        log(f"{path}: resuming; {skipped} queries already answered, {len(plan.todo)} to go")
    recorder = Recorder(rundir, config.method_name, plan, progress=progress,
                        max_infra_failures=config.max_infra_failures,
                        bucket_spec=bucket_spec if config.record_bucket_weights else None)
    facts: dict[str, Any] = {}
    try:
        if config.executor == "ray":
            from toolbench_eval.runner.ray_executor import run_ray

            facts = asyncio.run(run_ray(config, bucket_spec, plan.todo, recorder))
        else:
            facts = asyncio.run(_run_local(config, bucket_spec, loaded, groups, root, plan.todo, recorder,
                                           retriever, backend))
    finally:
        summary = recorder.close()
    rundir.log("run_finished", **summary.as_dict(), executor_facts=facts)
    report_summary(summary, path, rundir, recorder.last_infrastructure_error, log=log)
    return RunResult(path, manifest, summary, len(plan.todo), skipped)


def report_summary(summary: RunSummary, path: Path, rundir: RunDir, last_infrastructure_error: str | None, *,
                   log=print) -> None:
    """The lines a person reads at the end of a run: what finished, what failed and what a re-run does."""
    answered, gave_up, errors = summary.total("answered"), summary.total("gave_up"), summary.total("errors")
    infrastructure = summary.total(INFRASTRUCTURE)
    log(f"{path}: {summary.total('done')} finished ({answered} answered, {gave_up} gave up), {errors} errors, "
        f"{infrastructure} infrastructure failures, {summary.seconds:.1f} s")
    if errors:
        log(f"  errors are in {rundir.events_path} (event query_failed); a re-run retries them")
    if infrastructure:
        log(f"  infrastructure failures (a tool server or the model's server was unavailable): those queries have "
            f"no answer and a re-run retries them; last: {last_infrastructure_error}")
    if summary.abort_reason:
        log(f"  stopped starting queries: {summary.abort_reason}")


async def _run_local(config, bucket_spec, loaded, groups, root, items, recorder, retriever, backend
                     ) -> dict[str, Any]:
    from toolbench_eval.runner.build import build_agent, build_engine
    from toolbench_eval.runner.local import MeteredEngine, batch_stats, recorded_batch_sizes, run_local

    engine = build_engine(config, bucket_spec, loaded=loaded)
    agent = build_agent(config, MeteredEngine(engine, recorder.progress), groups=groups, root=root,
                        retriever=retriever, backend=backend)
    try:
        await run_local(agent, items, recorder, concurrency=config.concurrency)
    finally:
        await engine.close()
        await agent.backend.close()
    return batch_stats(recorded_batch_sizes(engine))


def report_retrieval(config: RunConfig, groups, rundir: RunDir, retriever, *, log=print) -> dict[str, Any]:
    """recall@k of the retriever per group: printed and written to `<run>/retrieval.json`."""
    from toolbench_eval.runner.retriever import retrieval_report

    k = int(config.retriever.get("top_k", 5))
    report = retrieval_report(retriever, groups, k, config.limit)
    (rundir.root / "retrieval.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    for name, entry in report.items():
        recall = "n/a" if entry["recall"] is None else f"{entry['recall']:.3f}"
        log(f"retrieval recall@{k} {name}: {recall} over {entry['queries']} queries")
    return report
