"""Which checkpoints the vLLM bucket plugin serves, and with which of its two model classes.

The plugin (`buckets.vllm_plugin`) runs N buckets inside one vLLM model. It is exact only for the
decoders its parity tests cover (tests/test_vllm_plugin.py, tests/test_vllm_architectures.py):

===================  ==========  =========================  ===================================
checkpoint           model_type  bucket model               RoPE types
===================  ==========  =========================  ===================================
LlamaForCausalLM     llama       BucketLlamaForCausalLM     default, linear, llama3, yarn
MistralForCausalLM   mistral     BucketLlamaForCausalLM     default (full attention only)
Qwen2ForCausalLM     qwen2       BucketQwen2ForCausalLM     default, yarn (q/k/v carry a bias)
===================  ==========  =========================  ===================================

Mistral runs through the Llama class because vLLM's own `MistralForCausalLM` is its Llama with
extras (Mistral-format weight names, Llama-4 attention scaling) that Hugging Face Mistral
checkpoints do not use. Qwen2 needs its own class: vLLM's Llama loader would silently skip the
q/k/v biases. A RoPE type is listed only where vLLM's cos/sin cache for each base equals the
table of the transformers bucketed path (`buckets.rope`); ``dynamic`` is not, because vLLM's table
is static while transformers enlarges the base with the sequence.

Everything else is refused by name, before vLLM starts, with a ValueError (callers in the pipeline
turn it into a user error). This module imports no vLLM, so the choice is testable anywhere.

>>> from transformers import Qwen2Config
>>> bucket_architecture(Qwen2Config(architectures=["Qwen2ForCausalLM"]))
'BucketQwen2ForCausalLM'
"""

from __future__ import annotations

from dataclasses import dataclass

from buckets.rope import rope_parameters

LLAMA = "BucketLlamaForCausalLM"
QWEN2 = "BucketQwen2ForCausalLM"


@dataclass(frozen=True)
class Family:
    """A checkpoint family the plugin serves: its `architectures` entry, `model_type` and bucket class."""

    architecture: str
    model_type: str
    bucket_architecture: str
    rope_types: tuple[str, ...]
    label: str  # how the refusal message names it


FAMILIES = (
    Family("LlamaForCausalLM", "llama", LLAMA, ("default", "linear", "llama3", "yarn"), "LlamaForCausalLM"),
    Family("MistralForCausalLM", "mistral", LLAMA, ("default",), "MistralForCausalLM (full attention)"),
    Family("Qwen2ForCausalLM", "qwen2", QWEN2, ("default", "yarn"), "Qwen2ForCausalLM"),
)
BUCKET_ARCHITECTURES = tuple(dict.fromkeys(f.bucket_architecture for f in FAMILIES))
SUPPORTED = ", ".join(f.label for f in FAMILIES)

# Config switches of vLLM's Llama/Qwen2/Mistral classes that change the forward in ways the bucket
# classes do not reproduce (Qwen2.5-1M chunked attention, QK norms, Llama-4 scaling, AdaRMSNorm).
_UNMODELLED_FIELDS = ("dual_chunk_attention_config", "qk_norm", "llama_4_scaling", "ada_rms_norm_t_cond")


def bucket_architecture(config) -> str:
    """The bucket model class name for a checkpoint's transformers config; ValueError for anything else.

    `config` is the checkpoint's own config (``AutoConfig.from_pretrained``), whose `architectures`
    still names the checkpoint's class.
    """
    family = _family_of_checkpoint(config)
    check_served(config, family.bucket_architecture)
    return family.bucket_architecture


def check_served(config, bucket_arch: str) -> Family:
    """Raise ValueError unless the bucket class `bucket_arch` reproduces this config's model exactly.

    The plugin calls this on vLLM's config, whose `architectures` hf_overrides has replaced, so the
    family is read from `model_type` here.
    """
    model_type = getattr(config, "model_type", None)
    family = next((f for f in FAMILIES if f.model_type == model_type), None)
    if family is None:
        raise ValueError(f"Attention Buckets on vLLM supports {SUPPORTED}; this checkpoint is "
                         f"model_type {model_type!r}. Run it without buckets")
    if family.bucket_architecture != bucket_arch:
        raise ValueError(f"{bucket_arch} cannot run a {model_type} checkpoint (it would load the wrong attention); "
                         f"use {family.bucket_architecture}")
    _check_full_attention(config, family)
    _check_rope(config, family)
    for name in _UNMODELLED_FIELDS:
        if getattr(config, name, None):
            raise ValueError(f"Attention Buckets on vLLM does not model the config field {name!r} of this "
                             f"{family.architecture} checkpoint; run it without buckets")
    if not getattr(config, "is_causal", True):
        raise ValueError(f"Attention Buckets on vLLM needs a causal decoder; this {family.architecture} config "
                         "has is_causal=false")
    return family


def _family_of_checkpoint(config) -> Family:
    architectures = list(getattr(config, "architectures", None) or [])
    model_type = getattr(config, "model_type", None)
    named = f"{', '.join(architectures) or 'without architectures'} (model_type {model_type!r})"
    family = next((f for f in FAMILIES if f.model_type == model_type), None)
    # A checkpoint is served only when both names agree: vLLM picks its class by `architectures`,
    # transformers (our reference) by `model_type`.
    if family is None or architectures[:1] not in ([], [family.architecture]) or len(architectures) > 1:
        raise ValueError(f"Attention Buckets on vLLM supports {SUPPORTED}; this checkpoint is {named}. "
                         "Run it without buckets")
    return family


def _check_full_attention(config, family: Family) -> None:
    window = getattr(config, "sliding_window", None)
    windowed = getattr(config, "use_sliding_window", False) or (family.model_type == "mistral" and window)
    layer_types = set(getattr(config, "layer_types", None) or ())
    if windowed or layer_types - {"full_attention"}:
        settings = {"sliding_window": window, "use_sliding_window": getattr(config, "use_sliding_window", None),
                    "layer_types": sorted(layer_types) or None}
        shown = ", ".join(f"{k}={v}" for k, v in settings.items() if v is not None)
        raise ValueError(f"Attention Buckets on vLLM needs full attention in every layer; this {family.architecture} "
                         f"checkpoint uses sliding-window attention ({shown}). Use a full-attention checkpoint "
                         "(sliding_window: null, use_sliding_window: false) or run it without buckets")


def _check_rope(config, family: Family) -> None:
    params = rope_parameters(config)
    rope_type = params["rope_type"]
    if rope_type not in family.rope_types:
        raise ValueError(f"rope_type {rope_type!r} is not supported by the vLLM bucket plugin for "
                         f"{family.architecture}: its cos/sin tables reproduce the transformers bucketed path "
                         f"exactly for {', '.join(family.rope_types)} only")
    if float(params.get("partial_rotary_factor", 1.0)) != 1.0:
        raise ValueError("partial rotary embeddings (partial_rotary_factor != 1) are not supported by the vLLM "
                         "bucket plugin")
