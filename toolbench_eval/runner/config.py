"""Run configuration: one dataclass, loadable from YAML, overridable from the command line.

Keys in a YAML file are the field names of `RunConfig`; flags given on the command line win.
Fields that only change *how* a run executes (executor, concurrency, limit, Ray options, output
folder) are left out of the config identity, so a run can be resumed with more workers or a
larger `--limit` without being refused as "a different config".

>>> config = RunConfig.from_mapping({"method": "dfsdt", "groups": "G1_instruction"})
>>> config.method_name, config.groups
('DFS_woFilter_w2', ['G1_instruction'])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reasoning.action_grammar import CONSTRAIN_LEVELS
from toolbench_eval.benchmark.model import GROUPS
from toolbench_eval.errors import UserError, located
from toolbench_eval.models import MODEL_ARG_KEYS
from toolbench_eval.registry import Registry

# What a config may name as `method` and `model`, and where each lives (imported when a run builds it).
METHODS = Registry("method", {"react": "reasoning.react:solve_react", "dfsdt": "reasoning.dfsdt:solve_dfsdt",
                              "dfsdt-retriever": "reasoning.dfsdt:solve_dfsdt"})
ENGINES = Registry("engine", {"hf": "toolbench_eval.engines.hf:HFEngine",
                              "vllm": "toolbench_eval.engines.vllm:VLLMEngine",
                              "openai": "toolbench_eval.engines.openai:OpenAIEngine",
                              "scripted": "toolbench_eval.runner.build:scripted_engine"})
# Model arguments the runner reads itself (to load the hf model; `tool_format`: react text or native function
# calling; `device_map`: accelerate's layer placement for the hf model, e.g. `auto` to spread it over several GPUs).
# Every other model argument is an engine's parameter; an engine that takes one of these gets it too.
RUNNER_MODEL_ARGS = (*MODEL_ARG_KEYS, "tool_format")
EXECUTORS = ("local", "ray")
PROMPT_STYLES = ("toolllama", "chat_template")
TOOL_FORMATS = ("react", "native")  # model_args tool_format: ReAct text, or the model's own function calling

# Keys of the `ray` block: ray.init options, then the actor layout (docs/multinode.md).
RAY_OPTIONS = ("address", "num_cpus", "num_gpus", "object_store_memory", "temp_dir", "runtime_env", "num_engines",
               "num_workers", "cpus_per_engine", "gpus_per_engine", "cpus_per_worker", "max_restarts",
               "max_task_retries")

# Fields that do not change what a query's answer is; resuming with other values is allowed. Recording bucket
# weights leaves answer files byte-identical, and runs made before the option existed must stay resumable.
EXECUTION_ONLY_FIELDS = frozenset({"executor", "concurrency", "limit", "ray", "out", "run_id",
                                   "max_infra_failures", "record_bucket_weights"})


def check_runtime_env_secrets(runtime_env: Any, source: str | Path) -> None:
    """Refuse credentials in `ray.runtime_env.env_vars`: the config is recorded in manifest.json, in the clear."""
    from toolbench_eval.redaction import CREDENTIAL_NAME

    env_vars = runtime_env.get("env_vars") if isinstance(runtime_env, Mapping) else None
    secrets = sorted(name for name in (env_vars or {}) if CREDENTIAL_NAME.search(str(name)))
    if secrets:
        raise located(source, f"ray.runtime_env.env_vars {secrets} look like credentials, and the config is written "
                      "into the run's manifest.json; fix: export them in the shell on each node before `ray start` "
                      "(actors inherit the node's environment) instead", field="ray")


def parse_key_values(text: str | Mapping[str, Any] | None, *, flag: str = "--model-args") -> dict[str, Any]:
    """Parse lm-eval style `key=value,key=value` into a dict; values are YAML scalars (data, never code).

    >>> parse_key_values("pretrained=default,dtype=float32,max_length=4096,trust=true")
    {'pretrained': 'default', 'dtype': 'float32', 'max_length': 4096, 'trust': True}
    """
    if text is None:
        return {}
    if isinstance(text, Mapping):
        return dict(text)
    result: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in str(text).split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{flag}: {item!r} is not key=value; write key=value pairs joined by commas")
        try:
            parsed = yaml.safe_load(value.strip())
        except yaml.YAMLError:
            parsed = value.strip()
        # Paths and names stay text even when YAML would read them as something else.
        result[key.strip()] = parsed if isinstance(parsed, (int, float, bool)) and parsed is not None else value.strip()
    return result


# lm-eval-harness generation keys (`--gen-kwargs`) -> our `decoding` entries; `do_sample` and `seed` apart.
_GEN_DECODING = {"temperature": "temperature", "top_p": "top_p", "max_gen_toks": "max_new_tokens",
                 "max_new_tokens": "max_new_tokens", "until": "stop"}
GEN_KWARGS = (*_GEN_DECODING, "do_sample", "seed")


def gen_kwargs_overrides(text: str) -> dict[str, Any]:
    """RunConfig overrides from lm-eval style `--gen-kwargs`: `decoding` settings, and `seed` as the run seed.

    `until` adds a stop string to the protocol's; `do_sample=false` is greedy decoding (temperature 0).

    >>> gen_kwargs_overrides("max_gen_toks=256,do_sample=false,until=Observation:")
    {'decoding': {'max_new_tokens': 256, 'stop': ['Observation:'], 'temperature': 0.0}}
    """
    given = parse_key_values(text, flag="--gen-kwargs")
    unknown = sorted(set(given) - set(GEN_KWARGS))
    if unknown:
        raise UserError(f"--gen-kwargs: unknown key(s) {unknown}; known: {', '.join(GEN_KWARGS)}")
    for key, value in given.items():
        whole = key in ("max_gen_toks", "max_new_tokens", "seed")
        if key not in ("until", "do_sample") and (isinstance(value, bool) or not isinstance(value, (int, float))
                                                  or whole and not isinstance(value, int)):
            raise UserError(f"--gen-kwargs: {key}={value!r} is not {'an integer' if whole else 'a number'}")
    decoding = {_GEN_DECODING[key]: value for key, value in given.items() if key in _GEN_DECODING}
    if "stop" in decoding:
        decoding["stop"] = [str(decoding["stop"])]
    if "do_sample" in given:
        temperature = decoding.get("temperature")
        if given["do_sample"] is False and temperature in (None, 0):
            decoding["temperature"] = 0.0
        elif given["do_sample"] is not True or not temperature:
            raise UserError(f"--gen-kwargs: do_sample={given['do_sample']!r} with temperature={temperature!r}: "
                            "write do_sample=false for greedy decoding, or do_sample=true,temperature=T with T > 0")
    overrides: dict[str, Any] = {"decoding": decoding} if decoding else {}
    if "seed" in given:
        overrides["seed"] = given["seed"]
    return overrides


@dataclass
class RunConfig:
    """Everything that defines a run. See `configs/*.yaml` for annotated examples."""

    benchmark: str = "localtoolbench"  # "localtoolbench" or a folder in ToolBench layout
    groups: list[str] = field(default_factory=lambda: list(GROUPS))
    method: str = "react"  # react (CoT@1) | dfsdt (DFS_woFilter_w2) | dfsdt-retriever
    model: str = "hf"  # engine: hf | vllm | openai | scripted
    model_args: dict[str, Any] = field(default_factory=lambda: {"pretrained": "default"})
    model_name: str | None = None  # short label for tables; derived when empty
    prompt_style: str = "toolllama"  # toolllama (System:/User:/Function:/Assistant:) | chat_template
    buckets: str | None = None  # None | "auto:N" | "b1,b2,..."
    fusion: str = "max_logit"
    bucket_search: dict[str, Any] = field(default_factory=dict)  # extra arguments for `auto:N` base search
    # Write each finished query's fused bucket weights to `<run>/bucket_weights/<group>/<qid>.json`
    # (`runner.bucket_weights`); needs buckets and an engine that reports weights (hf, scripted).
    record_bucket_weights: bool = False
    executor: str = "local"
    concurrency: int = 8  # trajectories in flight (per agent worker with Ray)
    limit: int | None = None  # first N queries of each group
    seed: int = 0
    # The evaluation protocol (`reasoning.eval_protocol`): stabletoolbench | stabletoolbench-vllm |
    # toolbench-eval; None: the one the model's training recipe records, else stabletoolbench.
    protocol: str | None = None
    protocol_args: dict[str, Any] = field(default_factory=dict)  # switch overrides, e.g. {parser: tolerant}
    single_chain_max_step: int | None = None  # None: the protocol's (stabletoolbench 50, toolbench-eval 12)
    max_query_count: int = 200
    width: int = 2
    decoding: dict[str, Any] = field(
        default_factory=lambda: {"max_new_tokens": 1024, "temperature": 0.0, "top_p": 1.0}
    )
    tool_backend: dict[str, Any] = field(default_factory=lambda: {"name": "local"})
    retriever: dict[str, Any] = field(default_factory=lambda: {"model": "default", "top_k": 5})
    ray: dict[str, Any] = field(default_factory=dict)  # address, num_cpus, num_gpus, num_engines, num_workers
    out: str | None = None
    run_id: str | None = None
    # Queries that may fail because a tool server or the model's server is unavailable before the run stops
    # starting new ones (they get no answer file and are retried by the next run).
    max_infra_failures: int = 3

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str | Path = "config") -> RunConfig:
        """Build from a dict (YAML content); unknown keys are an error that names the key."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise located(source, f"unknown key(s) {unknown}; known keys: {sorted(known)}", field=unknown[0])
        config = cls()
        for key, value in data.items():
            setattr(config, key, value)
        config.normalize(source=source)
        return config

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        return cls.from_mapping(load_yaml_mapping(path), source=path)

    def override(self, values: Mapping[str, Any], *, source: str = "command line") -> RunConfig:
        """A copy with `values` (those not None) replacing fields; nested dicts are merged key by key."""
        merged = dataclasses.asdict(self)
        for key, value in values.items():
            if value is None:
                continue
            if isinstance(merged.get(key), dict) and isinstance(value, Mapping):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
        return RunConfig.from_mapping(merged, source=source)

    def normalize(self, *, source: str | Path = "config") -> None:
        """Coerce shorthand forms and validate choices, naming the field at fault."""
        if isinstance(self.groups, str):
            self.groups = [g.strip() for g in self.groups.split(",") if g.strip()]
        self.groups = list(self.groups or [])
        if not self.groups:
            raise located(source, "no groups given; e.g. groups: [G1_instruction]", field="groups")
        self.model_args = parse_key_values(self.model_args)
        self.protocol_args = parse_key_values(self.protocol_args)
        if self.model_args.get("tool_format", "react") not in TOOL_FORMATS:
            raise located(source, f"tool_format={self.model_args['tool_format']!r} is not one of {list(TOOL_FORMATS)}",
                          field="model_args")
        if self.protocol is not None or self.protocol_args:
            from reasoning.eval_protocol import ProtocolError, resolve_protocol

            try:
                resolve_protocol(self.protocol, self.protocol_args)
            except ProtocolError as error:
                raise located(source, str(error), field="protocol" if "switch" not in str(error) else "protocol_args")
        if isinstance(self.buckets, (list, tuple)):
            self.buckets = ",".join(str(b) for b in self.buckets)
        elif self.buckets is not None:
            self.buckets = str(self.buckets)
        if self.buckets in ("", "none", "None", "off"):
            self.buckets = None
        for name, choices in (
            ("method", METHODS.names),
            ("model", ENGINES.names),
            ("executor", EXECUTORS),
            ("prompt_style", PROMPT_STYLES),
        ):
            value = getattr(self, name)
            if value not in choices:
                raise located(source, f"{value!r} is not one of {list(choices)}", field=name)
        if self.single_chain_max_step is not None and (
                not isinstance(self.single_chain_max_step, int) or self.single_chain_max_step < 1):
            raise located(source, f"must be an integer >= 1, got {self.single_chain_max_step!r}",
                          field="single_chain_max_step")
        for name, minimum in (
            ("concurrency", 1),
            ("max_query_count", 1),
            ("width", 1),
            ("max_infra_failures", 0),
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < minimum:
                raise located(source, f"must be an integer >= {minimum}, got {value!r}", field=name)
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 0):
            raise located(source, f"must be a non-negative integer, got {self.limit!r}", field="limit")
        unknown_ray = sorted(set(self.ray or {}) - set(RAY_OPTIONS))
        if unknown_ray:
            raise located(source, f"unknown ray option(s) {unknown_ray}; known: {list(RAY_OPTIONS)}", field="ray")
        check_runtime_env_secrets((self.ray or {}).get("runtime_env"), source)
        if isinstance(self.tool_backend, str):
            self.tool_backend = {"name": self.tool_backend}
        if "name" not in self.tool_backend:
            raise located(source, "needs a 'name', e.g. tool_backend: {name: local}", field="tool_backend")
        if self.buckets is not None:
            parse_bucket_request(self.buckets, source=source)
        self.check_record_bucket_weights(source)
        from buckets.fusion import FUSION_RULES  # checked with or without buckets: the manifest records it

        if self.fusion not in FUSION_RULES:
            raise located(source, f"{self.fusion!r} is not a fusion rule; choose one of {sorted(FUSION_RULES)}",
                          field="fusion")
        constrain = (self.decoding or {}).get("constrain", "off")
        if constrain is False:  # YAML reads a bare `off` as false
            constrain = self.decoding["constrain"] = "off"
        if constrain not in CONSTRAIN_LEVELS:
            raise located(source, f"decoding.constrain: {constrain!r} is not one of {list(CONSTRAIN_LEVELS)}",
                          field="decoding")

    def check_record_bucket_weights(self, source: str | Path) -> None:
        """`record_bucket_weights` is a flag, and only asked of a bucketed run on an engine that reports weights."""
        from toolbench_eval.runner.bucket_weights import ENGINES_WITH_WEIGHTS

        value = self.record_bucket_weights
        if not isinstance(value, bool):
            raise located(source, f"must be true or false, got {value!r}", field="record_bucket_weights")
        if not value:
            return
        if self.buckets is None:
            raise located(source, "recording bucket weights needs Attention Buckets: add --buckets auto:N "
                                  "(or b1,b2,...), or drop --record-bucket-weights", field="record_bucket_weights")
        if self.model not in ENGINES_WITH_WEIGHTS:
            why = {"vllm": "vLLM fuses the buckets inside the model's forward and hands back tokens only",
                   "openai": "an API model runs no Attention Buckets"}.get(self.model, "it returns none")
            raise located(source, f"the {self.model} engine cannot report bucket weights ({why}); use --model hf, "
                                  "or drop --record-bucket-weights", field="record_bucket_weights")

    # ---- derived values -----------------------------------------------------------------------
    @property
    def method_name(self) -> str:
        """The StableToolBench method string used in answer file names."""
        return "CoT@1" if self.method == "react" else f"DFS_woFilter_w{self.width}"

    @property
    def engine_spec(self) -> str:
        return str(self.model_args.get("pretrained", "default"))

    @property
    def eval_protocol(self):
        """The resolved `reasoning.eval_protocol.EvalProtocol`: the configured name, else the protocol the
        model's training recipe records (ToolSmol: toolbench-eval), else stabletoolbench; then overrides."""
        from reasoning.eval_protocol import resolve_protocol
        from toolbench_eval.models import recipe_protocol

        name = self.protocol
        if name is None and self.model in ("hf", "vllm"):
            name = recipe_protocol(self.engine_spec)
        return resolve_protocol(name, self.protocol_args)

    @property
    def tool_format(self) -> str:
        """`react` (ReAct text the reasoner parses) or `native` (the model's own function calling), from
        `--model-args tool_format=...`: a property of the model."""
        return str(self.model_args.get("tool_format", "react"))

    @property
    def max_step(self) -> int:
        """`single_chain_max_step`, or the protocol's default when the config leaves it unset."""
        if self.single_chain_max_step is not None:
            return self.single_chain_max_step
        return self.eval_protocol.single_chain_max_step

    def label(self) -> str:
        """Short model label for tables: the configured name, else engine + spec (+ bucket tag)."""
        if self.model_name:
            return self.model_name
        stem = Path(self.engine_spec).name or self.engine_spec
        tag = f"-buckets-{self.buckets.replace(':', '').replace(',', '_')}" if self.buckets else ""
        return f"{self.model}-{stem}{tag}"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """The part of the config that decides answers; two runs may share a folder iff these match."""
        return {k: v for k, v in self.as_dict().items() if k not in EXECUTION_ONLY_FIELDS}


def parse_bucket_request(text: str, *, source: str | Path = "config") -> tuple[str, Any]:
    """`auto:N` -> ("auto", N); `b1,b2,...` -> ("explicit", (b1, b2, ...)).

    >>> parse_bucket_request("auto:3")
    ('auto', 3)
    >>> parse_bucket_request("10000,17500,30000")
    ('explicit', (10000.0, 17500.0, 30000.0))
    """
    text = text.strip()
    if text.startswith("auto:"):
        count = text[len("auto:"):]
        if not count.isdigit() or int(count) < 1:
            raise located(source, f"{text!r}: write auto:N with N >= 1, e.g. auto:3", field="buckets")
        return "auto", int(count)
    try:
        bases = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise located(source, f"{text!r}: write auto:N or comma-separated bases, e.g. 10000,30000",
                      field="buckets") from None
    if not bases or any(b <= 1.0 for b in bases):
        raise located(source, f"{text!r}: RoPE bases must be numbers > 1", field="buckets")
    return "explicit", bases


def load_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """Read a YAML file that must hold a mapping; errors name the file and the fix."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: config file not found; check the path")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise located(path, f"not valid YAML: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise located(path, f"must hold a mapping of keys to values, got {type(data).__name__}")
    return data
