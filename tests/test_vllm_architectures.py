"""Which checkpoints the vLLM bucket plugin serves (`buckets.vllm_architectures`), in the main venv: no vLLM.

The published configs are the config.json fields of the released checkpoints (no weights), written as
transformers configs; the vLLM venv's tests (tests/test_vllm_plugin.py) prove the accepted ones exact.
"""

from __future__ import annotations

import pytest
from transformers import GemmaConfig, LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config

from buckets.vllm_architectures import FAMILIES, LLAMA, QWEN2, bucket_architecture, check_served

LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 8192}
QWEN_YARN = {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}  # Qwen2.5's model card


def llama_2_7b(**changes):
    return LlamaConfig(**{
        "architectures": ["LlamaForCausalLM"], "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008,
        "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 32,
        "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": False,
        **changes})


def llama_3_1_8b(**changes):
    return LlamaConfig(**{
        "architectures": ["LlamaForCausalLM"], "vocab_size": 128256, "hidden_size": 4096, "intermediate_size": 14336,
        "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
        "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "rope_scaling": LLAMA3_SCALING, "tie_word_embeddings": False, **changes})


def qwen2_5_7b(**changes):
    return Qwen2Config(**{
        "architectures": ["Qwen2ForCausalLM"], "vocab_size": 152064, "hidden_size": 3584, "intermediate_size": 18944,
        "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
        "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "sliding_window": 131072,
        "use_sliding_window": False, "max_window_layers": 28, "tie_word_embeddings": False, **changes})


def mistral_7b(version: str, **changes):
    """v0.1 has a 4,096-token sliding window; v0.3 (like v0.2) has full attention and base 1e6."""
    window, theta, vocab = {"v0.1": (4096, 10000.0, 32000), "v0.3": (None, 1000000.0, 32768)}[version]
    return MistralConfig(**{
        "architectures": ["MistralForCausalLM"], "vocab_size": vocab, "hidden_size": 4096, "intermediate_size": 14336,
        "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
        "max_position_embeddings": 32768, "rms_norm_eps": 1e-5, "rope_theta": theta, "sliding_window": window,
        "tie_word_embeddings": False, **changes})


ACCEPTED = {
    "Llama-2-7B": (llama_2_7b(), LLAMA),
    "Llama-3.1-8B (llama3 scaling)": (llama_3_1_8b(), LLAMA),
    "Llama-2-7B linear x2": (llama_2_7b(rope_scaling={"rope_type": "linear", "factor": 2.0}), LLAMA),
    "Mistral-7B-v0.3": (mistral_7b("v0.3"), LLAMA),
    "Qwen2.5-7B": (qwen2_5_7b(), QWEN2),
    "Qwen2.5-7B YaRN": (qwen2_5_7b(rope_scaling=QWEN_YARN), QWEN2),
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_published_checkpoints_get_their_bucket_model(name):
    config, expected = ACCEPTED[name]
    assert bucket_architecture(config) == expected


def test_qwen2_never_runs_on_the_llama_bucket_model():
    """vLLM's Llama loader skips the q/k/v biases it has no parameter for: Qwen2 under the Llama class would
    run without them, silently wrong. The plugin's own check (on vLLM's overridden config) refuses it."""
    with pytest.raises(ValueError, match="BucketLlamaForCausalLM cannot run a qwen2 checkpoint.*use BucketQwen2"):
        check_served(qwen2_5_7b(), LLAMA)
    with pytest.raises(ValueError, match="BucketQwen2ForCausalLM cannot run a llama checkpoint"):
        check_served(llama_2_7b(), QWEN2)
    assert check_served(mistral_7b("v0.3"), LLAMA).architecture == "MistralForCausalLM"


REFUSED_ARCHITECTURES = {
    "Gemma": GemmaConfig(architectures=["GemmaForCausalLM"]),
    "Qwen3 (QK norm)": Qwen3Config(architectures=["Qwen3ForCausalLM"]),
    # vLLM maps InternLM3 to its Llama class, transformers reads it as llama: both names must agree.
    "Llama model_type, other class": llama_2_7b(architectures=["InternLM3ForCausalLM"]),
    "two architectures": llama_2_7b(architectures=["LlamaForCausalLM", "MistralForCausalLM"]),
}


@pytest.mark.parametrize("name", sorted(REFUSED_ARCHITECTURES))
def test_other_architectures_are_refused_by_name(name):
    config = REFUSED_ARCHITECTURES[name]
    message = ("Attention Buckets on vLLM supports LlamaForCausalLM, MistralForCausalLM (full attention), "
               "Qwen2ForCausalLM; this checkpoint is ")
    with pytest.raises(ValueError) as raised:
        bucket_architecture(config)
    assert str(raised.value).startswith(message)
    assert ", ".join(config.architectures) in str(raised.value)
    assert repr(config.model_type) in str(raised.value)


def test_sliding_window_checkpoints_are_refused_naming_the_setting():
    windowed = r"needs full attention in every layer; this MistralForCausalLM .*\(sliding_window=4096\)"
    with pytest.raises(ValueError, match=windowed):
        bucket_architecture(mistral_7b("v0.1"))
    windowed_qwen = qwen2_5_7b(use_sliding_window=True, sliding_window=4096, max_window_layers=14)
    with pytest.raises(ValueError, match=r"this Qwen2ForCausalLM checkpoint uses sliding-window .*use_sliding_window=True"):
        bucket_architecture(windowed_qwen)


@pytest.mark.parametrize(
    ("config", "rope_type"),
    [
        (llama_2_7b(rope_scaling={"rope_type": "dynamic", "factor": 2.0}), "dynamic"),  # vLLM's table is static
        (mistral_7b("v0.3", rope_scaling={"rope_type": "linear", "factor": 2.0}), "linear"),  # untested pair
        (qwen2_5_7b(rope_scaling={"rope_type": "llama3", **{k: v for k, v in LLAMA3_SCALING.items()
                                                             if k != "rope_type"}}), "llama3"),
    ],
    ids=["llama-dynamic", "mistral-linear", "qwen2-llama3"],
)
def test_rope_types_the_plugin_does_not_reproduce_are_refused(config, rope_type):
    with pytest.raises(ValueError, match=f"rope_type '{rope_type}' is not supported by the vLLM bucket plugin"):
        bucket_architecture(config)


def test_partial_rotary_and_unmodelled_switches_are_refused():
    partial = llama_2_7b(rope_scaling={"rope_type": "default", "partial_rotary_factor": 0.5})
    with pytest.raises(ValueError, match="partial_rotary_factor"):
        bucket_architecture(partial)
    million = qwen2_5_7b(dual_chunk_attention_config={"chunk_size": 262144, "local_size": 8192})  # Qwen2.5-1M
    with pytest.raises(ValueError, match="dual_chunk_attention_config"):
        bucket_architecture(million)
    with pytest.raises(ValueError, match="is_causal=false"):
        bucket_architecture(qwen2_5_7b(is_causal=False))  # e.g. gte-Qwen2 embedding models


def test_vllm_never_claims_a_pair_the_transformers_reference_refuses():
    """Every (family, rope type) the plugin accepts is one the transformers bucketed path accepts, so each has a
    reference to be compared with."""
    from buckets.generation import check_bucket_config

    extra = {"linear": {"factor": 2.0}, "llama3": {k: v for k, v in LLAMA3_SCALING.items() if k != "rope_type"},
             "yarn": {"factor": 4.0, "original_max_position_embeddings": 8192}}
    build = {"llama": llama_2_7b, "mistral": lambda **kw: mistral_7b("v0.3", **kw), "qwen2": qwen2_5_7b}
    for family in FAMILIES:
        for rope_type in family.rope_types:
            scaling = {"rope_type": rope_type, **extra.get(rope_type, {})}
            config = build[family.model_type](rope_scaling=scaling, max_position_embeddings=32768)
            assert bucket_architecture(config) == family.bucket_architecture
            check_bucket_config(config)  # raises if the transformers path refuses the pair


def test_docstring_examples_run():
    """The overrides helper and the architecture choice import without vLLM; their examples hold."""
    import doctest

    import buckets.vllm_architectures
    import buckets.vllm_plugin

    for module in (buckets.vllm_architectures, buckets.vllm_plugin):
        outcome = doctest.testmod(module)
        assert outcome.attempted > 0 and outcome.failed == 0, module.__name__
