"""Shared test fixtures: a tiny random Llama and a real (tiny) tokenizer, both built offline in memory.

`tiny_tokenizer` (session): a byte-level BPE with a ~400-token vocabulary trained in memory on a
fixed English/ToolBench-flavoured corpus with the `tokenizers` library, wrapped in a
`PreTrainedTokenizerFast` with ``<s>``/``</s>``/``<pad>`` specials. Training takes milliseconds and
needs no download, so every test machine gets the same tokenizer (we do not reuse the default
model's 49k-token tokenizer: it would need the converted default model in the cache, and a small
vocabulary keeps the tiny model's logits cheap).

`tiny_llama` (session): a factory ``tiny_llama(rope_theta=10000.0, init_range=0.02, seed=0, ...)``
returning an fp32 `LlamaForCausalLM` in eval mode (2 layers, hidden 64, 4 heads, 2 KV heads,
head_dim 16). The same `seed` gives the same weights, so ``tiny_llama(rope_theta=b)`` is the
separate reference model for bucket b. `init_range=0.3` (fixture `divergent_llama`) makes the
buckets disagree on the top token.

`with_rope_theta(model, theta)` copies a model's weights into a model whose config has another base.
"""

from __future__ import annotations

import copy
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
torch.set_num_threads(1)

_CORPUS = [
    "Thought: I need to call the weather API to get the forecast for Paris.",
    'Action: get_weather_for_openweather\nAction Input: {"city": "Paris", "units": "metric"}',
    'Observation: {"error": "", "response": {"temp": 21.5, "condition": "sunny"}}',
    "Finish: give_answer. The weather in Paris is sunny with a temperature of 21.5 degrees.",
    "You are AutoGPT, you can use many tools (functions) to do the following task.",
    "The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with one step.",
    "Attention buckets run one model under several rotary bases and fuse the next-token distributions.",
    "User: find the three most popular movies of 2023 and tell me their directors, please!",
    "0 1 2 3 4 5 6 7 8 9 10 11 12 100 1000 2024 3.14 {}[](),.;:'\"?!-_/\\@#$%&*+=<>",
]


def build_tiny_tokenizer(vocab_size: int = 400):
    """Train a byte-level BPE tokenizer in memory and wrap it for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>", padding_side="left"
    )


def build_tiny_llama(
    tokenizer,
    *,
    rope_theta: float = 10000.0,
    init_range: float = 0.02,
    seed: int = 0,
    num_layers: int = 2,
    rope_scaling: dict | None = None,
    max_position_embeddings: int = 512,
    model_type: str = "llama",
):
    """A tiny random causal LM (fp32, eval mode) whose weights depend only on `seed` and `init_range`."""
    from transformers import AutoConfig, AutoModelForCausalLM

    rope_parameters = {"rope_type": "default", "rope_theta": float(rope_theta)}
    if rope_scaling:
        rope_parameters.update(rope_scaling)
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_position_embeddings,
        rope_parameters=rope_parameters,
        initializer_range=init_range,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval()


def with_rope_theta(model, theta: float):
    """A separate copy of `model` (same weights) whose config's RoPE base is `theta`."""
    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(model.config)
    config.rope_parameters = {**config.rope_parameters, "rope_theta": float(theta)}
    reference = AutoModelForCausalLM.from_config(config, dtype=next(model.parameters()).dtype)
    reference.load_state_dict(model.state_dict())
    reference.generation_config.pad_token_id = model.generation_config.pad_token_id
    return reference.eval()


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture(scope="session")
def tiny_llama(tiny_tokenizer):
    """Factory: ``tiny_llama(rope_theta=..., init_range=..., seed=...)`` -> a fresh tiny fp32 Llama."""

    def make(**kwargs):
        return build_tiny_llama(tiny_tokenizer, **kwargs)

    return make


@pytest.fixture(scope="session")
def divergent_llama(tiny_llama):
    """A tiny Llama with large initial weights, so different bases disagree on the next token."""
    return tiny_llama(init_range=0.3, seed=1)
