"""Build a run's parts from its config: benchmark, tool backend, engine (with buckets), agent.

Every builder imports its subsystem lazily, so a run that does not use a piece never imports
it (Ray, sentence-transformers, vLLM stay optional).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from toolbench_eval.benchmark.model import Group, Tool
from toolbench_eval.engines.base import BucketSpec, Engine
from toolbench_eval.errors import UserError
from toolbench_eval.registry import accepted_arguments, arguments_taken, check_arguments
from toolbench_eval.runner.config import ENGINES, RUNNER_MODEL_ARGS, RunConfig, parse_bucket_request


# ---- benchmark ---------------------------------------------------------------------------------
def benchmark_root(config: RunConfig) -> Path:
    from toolbench_eval.benchmark.loader import resolve_benchmark_root

    return Path(resolve_benchmark_root(config.benchmark))


def load_groups(config: RunConfig, root: Path | None = None) -> dict[str, Group]:
    """The configured groups, in config order; an unknown group name is a user error (`load_benchmark`'s)."""
    from toolbench_eval.benchmark.loader import load_benchmark

    return load_benchmark(root or benchmark_root(config), config.groups)


def merged_tools(groups: Mapping[str, Group]) -> dict[tuple[str, str], Tool]:
    tools: dict[tuple[str, str], Tool] = {}
    for group in groups.values():
        tools.update(group.tools)
    return tools


# ---- tool backend ------------------------------------------------------------------------------
def build_backend(config: RunConfig):
    """The tool backend of `config.tool_backend` (`{name: local}` by default), with the protocol's
    `status_codes` and `on_unavailable` for backends that take them (an option set in `tool_backend` wins)."""
    from toolbench_eval.tools.registry import make_backend_from_config, protocol_options

    options = dict(config.tool_backend)
    for key, value in protocol_options(options["name"], config.eval_protocol).items():
        options.setdefault(key, value)
    return make_backend_from_config(options)


# ---- checks before anything heavy -------------------------------------------------------------
def check_writable(folder: Path, what: str, fix: str) -> None:
    """Create `folder` if needed and write a probe file in it; a `UserError` naming it and the fix if we cannot.

    A probe, not `os.access`: root passes `os.access` on a read-only mount, and only a write tells the truth."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe-"):
            pass
    except OSError as error:
        raise UserError(f"{what} {folder} is not writable ({error.strerror or error}); fix: {fix}") from None


def preflight(config: RunConfig, run_dir: Path):
    """Everything about `config` that can be checked cheaply, checked before a model loads or a run folder is
    claimed: engine arguments, the tool backend's options (it is built, and returned for reuse), and that the
    run folder and the cache folder can be written."""
    from toolbench_eval.paths import cache_dir

    if config.model != "vllm":  # vLLM's module imports vLLM (its own venv): building the engine checks it instead
        engine_arguments(config, ENGINES.lookup(config.model))  # refuses unknown model arguments
    check_writable(run_dir, "run folder", "choose another --out, or make it writable")
    try:
        cache = cache_dir()
    except OSError as error:
        raise UserError(f"cache folder {error.filename or ''} cannot be created ({error.strerror}); fix: point "
                        "TOOLBENCH_EVAL_CACHE at a writable folder") from None
    check_writable(cache, "cache folder", "point TOOLBENCH_EVAL_CACHE at a writable folder")
    return build_backend(config)  # after the cache check: LocalToolBench builds its database there


# ---- model and engine --------------------------------------------------------------------------
def load_hf_model(config: RunConfig) -> tuple[Any, Any]:
    """(model, tokenizer) for the `hf` engine; loaded once and shared by every bucket setting."""
    from toolbench_eval.models import load_model_from_args

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return load_model_from_args(config.model_args)


def engine_arguments(config: RunConfig, engine: Any) -> dict[str, Any]:
    """The model arguments to hand `engine` (a class or factory of `ENGINES`), after refusing unknown ones.

    An engine's own arguments are its keyword-only parameters; the runner fills the others (the model, and the
    bucket spec from --buckets). The runner's model arguments reach an engine that takes them too (vLLM's dtype).
    """
    runner_fills = {name for name, p in inspect.signature(engine).parameters.items()
                    if p.kind is not p.KEYWORD_ONLY} | {"bucket_spec"}
    own = [name for name in accepted_arguments(engine) if name not in runner_fills]
    check_arguments(f"--model {config.model}", config.model_args, [*own, *RUNNER_MODEL_ARGS])
    return arguments_taken(engine, config.model_args)


def engine_inputs(config: RunConfig, loaded: tuple[Any, Any] | None) -> tuple[Any, ...]:
    """What the runner hands an engine before its arguments: hf's loaded (model, tokenizer), shared by every
    bucket setting; the model's name to vllm and openai, which load it or ask a server for it."""
    if config.model == "hf":
        return loaded or load_hf_model(config)
    return () if config.model == "scripted" else (config.engine_spec,)


def build_engine(config: RunConfig, bucket_spec: BucketSpec | None, *, loaded: tuple[Any, Any] | None = None
                 ) -> Engine:
    """The engine named by `config.model`. `loaded` reuses an already loaded (model, tokenizer)."""
    if config.model == "openai" and bucket_spec is not None:
        raise UserError("--model openai: an API model cannot run Attention Buckets; drop --buckets")
    engine = ENGINES.lookup(config.model)
    arguments = engine_arguments(config, engine)  # before a model loads
    if config.record_bucket_weights and config.model == "hf":
        arguments["return_weights"] = True  # the scripted engine reports its uniform weights unasked
    return engine(*engine_inputs(config, loaded), bucket_spec=bucket_spec, **arguments)


def scripted_engine(bucket_spec: BucketSpec | None = None, *, script: str | None = None, delay_s: float = 0.0
                    ) -> Engine:
    """`--model scripted`: the test engine, driven from the command line by a rule file.

    `script=FILE.json` holds `{"rules": [{"contains": [text, ...], "reply": text}, ...], "default": text}`:
    the first rule whose texts all occur in the prompt gives the reply (so a reply depends only on its
    prompt, never on call order); `delay_s=X` makes each call take X seconds (kill/resume tests).
    Without a script every call gives up (the engine's default reply).
    """
    import asyncio
    import json

    from toolbench_eval.engines.scripted import ScriptedEngine

    if script is None:
        return ScriptedEngine(bucket_spec=bucket_spec)
    path = Path(str(script))
    try:
        written = json.loads(path.read_text(encoding="utf-8"))
        rules = [(tuple(rule["contains"]), str(rule["reply"])) for rule in written.get("rules", [])]
        default = str(written["default"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"{path}: not a scripted-engine rule file ({error}); expected "
                        '{"rules": [{"contains": [...], "reply": "..."}], "default": "..."}') from None

    async def reply(prompt: str, params: Any) -> str:
        if delay_s:
            await asyncio.sleep(float(delay_s))
        for needles, text in rules:
            if all(needle in prompt for needle in needles):
                return text
        return default

    return ScriptedEngine(reply, bucket_spec=bucket_spec)


# ---- Attention Buckets -------------------------------------------------------------------------
# Keys `bucket_search` takes: the model's RoPE facts (for engines that cannot tell them), search settings, and
# how the window is measured (toolbench_eval/runner/search_window.py).
ROPE_FACT_KEYS = ("model_base", "head_dim", "max_tokens", "position_scale")
SEARCH_KEYS = ("min_base", "max_base", "step", "tolerance", "initial", "detector", "window")
WINDOW_KEYS = ("prompt_percentile", "growth_tokens", "tokenizer")


def rope_facts(config: RunConfig, model: Any | None) -> dict[str, Any]:
    """The model's RoPE base, head dim, context length and position scale (and its scaling type and parameters
    when it has any); config `bucket_search` wins."""
    facts: dict[str, Any] = {}
    if model is not None:
        from buckets.search import rope_record
        from toolbench_eval.models import model_rope_info

        rope = model_rope_info(model)
        facts = {"model_base": rope.rope_theta, "head_dim": rope.head_dim, "max_tokens": rope.max_position_embeddings,
                 "position_scale": rope.position_scale}
        if rope.rope_type != "default":
            scaling = {k: v for k, v in rope_record(rope.spec).items() if k not in ("head_dim", "max_position_embeddings")}
            facts["rope_scaling"] = scaling
    facts.update({k: v for k, v in config.bucket_search.items() if k in ROPE_FACT_KEYS})
    missing = [k for k in ("model_base", "head_dim", "max_tokens") if k not in facts]
    if missing:
        raise UserError(f"buckets auto:N needs the model's {missing}; engine {config.model!r} cannot tell them: "
                        f"set them under bucket_search in the config (e.g. bucket_search: {{model_base: 10000, "
                        f"head_dim: 64, max_tokens: 8192}}) or pass explicit bases")
    facts.setdefault("position_scale", 1.0)
    return facts


def resolve_buckets(config: RunConfig, model: Any | None = None, *, groups: Mapping[str, Group] | None = None,
                    tokenizer: Any = None) -> tuple[BucketSpec | None, dict[str, Any] | None]:
    """The BucketSpec to run and the manifest's `buckets` block (bases, fusion, source, search settings).

    `auto:N` searches with the model's own scaled RoPE frequencies (when `model`, a model or its config, is
    given and `bucket_search` does not override its head dim or scale) over a window measured from the
    first prompts of `groups` with `tokenizer` (runner/search_window.py; the rule and the numbers go into
    `search.window_from`). A search that cannot find N bases is a UserError saying what the bases found cover
    and which settings were tried and would work.
    """
    if config.buckets is None:
        return None, None
    kind, value = parse_bucket_request(config.buckets)
    if kind == "explicit":
        bases = tuple(value)
        return BucketSpec(bases, config.fusion), {"bases": list(bases), "fusion": config.fusion, "source": "explicit"}
    from buckets.search import NoCoverageError, default_search_range, search_bases
    from toolbench_eval.runner.search_window import run_search_window

    unknown = sorted(set(config.bucket_search) - {*ROPE_FACT_KEYS, *SEARCH_KEYS, *WINDOW_KEYS})
    if unknown:
        raise UserError(f"bucket_search: unknown key(s) {unknown}; known: "
                        f"{', '.join((*ROPE_FACT_KEYS, *SEARCH_KEYS, *WINDOW_KEYS))}")
    facts = rope_facts(config, model)
    rope = None
    if model is not None and not {"head_dim", "position_scale"} & set(config.bucket_search):
        from toolbench_eval.models import model_rope_info

        rope = model_rope_info(model).spec
    min_base, max_base, step = default_search_range(float(facts["model_base"]))
    found_window = run_search_window(config, facts, groups, tokenizer)
    options = {"min_base": min_base, "max_base": max_base, "step": step, "window": found_window.window}
    options.update({k: v for k, v in config.bucket_search.items() if k in SEARCH_KEYS and k != "window"})
    axis = {"rope": rope} if rope is not None else {"head_dim": int(facts["head_dim"]),
                                                    "position_scale": float(facts["position_scale"])}
    try:
        result = search_bases(int(value), model_base=float(facts["model_base"]), **axis, **options)
    except NoCoverageError as error:
        from buckets.search_advice import explain_stop

        raise UserError(f"--buckets {config.buckets}: {explain_stop(error.partial, spell=_config_spelling)}") from None
    except ValueError as error:
        raise UserError(f"--buckets {config.buckets}: bucket_search: {error}") from None
    bases = tuple(float(b) for b in result.bases)
    search = {**result.settings_dict(), "window_from": found_window.source}
    block = {"bases": list(bases), "fusion": config.fusion, "source": config.buckets, "search": search,
             "model_rope": facts}
    return BucketSpec(bases, config.fusion), block


def _config_spelling(name: str, value: Any) -> str:
    """A search setting as a run gives it: explicit bases as --buckets, the rest under bucket_search."""
    from buckets.search_advice import number_text as number

    if name == "bases":
        return "--buckets " + ",".join(number(b) for b in value)
    if name == "n":
        return f"--buckets auto:{value}"
    shown = "[" + ", ".join(number(v) for v in value) + "]" if isinstance(value, (tuple, list)) else number(value)
    return f"bucket_search: {{{name}: {shown}}}"


# ---- agent -------------------------------------------------------------------------------------
def build_retriever(config: RunConfig, groups: Mapping[str, Group]):
    """The DFSDT-Retriever's retriever over the benchmark's API corpus (None for other methods)."""
    if config.method != "dfsdt-retriever":
        return None
    from toolbench_eval.runner.retriever import ToolRetriever

    return ToolRetriever.from_config(config.retriever, merged_tools(groups), groups)


def build_agent(config: RunConfig, engine: Engine, *, groups: Mapping[str, Group] | None = None,
                root: Path | None = None, backend: Any = None, retriever: Any = None):
    """An `Agent` for this config over `engine` (a local engine, or a router to engine actors)."""
    from toolbench_eval.runner.agent import Agent

    root = root or benchmark_root(config)
    groups = groups if groups is not None else load_groups(config, root)
    if retriever is None:
        retriever = build_retriever(config, groups)
    return Agent(config=config, engine=engine, backend=backend or build_backend(config),
                 tools=merged_tools(groups), retriever=retriever)
