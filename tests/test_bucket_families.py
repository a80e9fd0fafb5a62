"""Attention Buckets on the model families and RoPE scalings people evaluate today, each proven exact.

For every (family, scaling) pair `check_bucket_model` accepts (`BUCKET_ROPE_TYPES`) a row of `CASES` builds a
tiny random fp32 model (hidden 64, 2 layers) and shows bucket k's logits equal a separate model whose config has
rope_theta = b_k, at prefill and over the decode steps, fed the fused tokens. Dynamic NTK is checked past
`max_position_embeddings` against the reference decoding step by step (its frequencies depend on the longest
sequence of each forward, so a one-shot forward would not be the same computation), in a batch and call after
call. Also: the pairs accepted are exactly the pairs tested here, the published configs of Llama-2-7B,
Llama-3.1-8B, Qwen2.5-7B (with and without YaRN) and Mistral-7B-v0.3 are accepted and get transformers' own
frequencies for any base, and what buckets cannot serve (Gemma, sliding-window Mistral as in v0.1, longrope, an
untested pair) is refused with an error naming it.
"""

import copy
import importlib

import pytest
import torch
from conftest import with_rope_theta
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, MistralConfig, Qwen2Config

from buckets.generation import BUCKET_ROPE_TYPES, BucketedGenerator, check_bucket_config, check_bucket_model
from buckets.rope import PerRowRotary, inverse_frequencies, rope_spec_from_config

BASES = (10000.0, 17500.0, 25000.0)
PROMPTS = [
    "Thought: I need to call the weather API",
    "The quick brown fox",  # shorter: left padding in the batch
    "User: find the three most popular movies of 2023 and tell me",
]
STEPS = 8
TOLERANCE = 1e-4  # fp32 rounding: the bucketed batch runs other kernel shapes than the one-row reference

YARN = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64}
# family x scaling -> (model_type, rope_scaling, max_position_embeddings, extra config fields)
CASES = {
    "llama-default": ("llama", None, 256, {}),
    "llama-linear2": ("llama", {"rope_type": "linear", "factor": 2.0}, 256, {}),
    "llama-llama3": ("llama", {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                               "original_max_position_embeddings": 64}, 512, {}),
    "llama-yarn": ("llama", YARN, 256, {}),
    "llama-dynamic": ("llama", {"rope_type": "dynamic", "factor": 2.0}, 24, {}),
    "mistral-default": ("mistral", None, 256, {"sliding_window": None}),
    "qwen2-default": ("qwen2", None, 256, {}),
    "qwen2-yarn": ("qwen2", YARN, 256, {}),
}
STATIC_CASES = [name for name in CASES if name != "llama-dynamic"]


def tiny_model(tokenizer, model_type, rope_scaling=None, max_position_embeddings=256, seed=3, **extra):
    """A tiny random fp32 causal LM; large weights (init 0.3) so buckets disagree. Qwen2's q/k/v biases are
    drawn at random too (transformers initialises them to zero, which would prove nothing about them)."""
    config = AutoConfig.for_model(
        model_type, vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_position_embeddings,
        rope_parameters={"rope_theta": 10000.0, "rope_type": "default", **(rope_scaling or {})},
        initializer_range=0.3, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False, **extra,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                if proj.bias is not None:
                    proj.bias.normal_(0.0, 0.3)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def case_model(tokenizer, name):
    model_type, scaling, max_positions, extra = CASES[name]
    return tiny_model(tokenizer, model_type, scaling, max_positions, **extra)


def full_forward_logits(model, prompt_ids, generated):
    """Logits a plain model gives at the prompt's last token and after each fed-back token (one forward)."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt_ids + generated[:-1]])).logits[0]
    return logits[len(prompt_ids) - 1 :]


def stepwise_logits(model, prompts_ids, generated, pad_id):
    """`[B, steps, V]`: a plain model prefilling the left-padded batch in one forward, then decoding one token per
    step from its KV cache, fed `generated[i]`. Positions come from the mask (pads at 1), as transformers'
    generate makes them, so its rotary module sees the batch's longest sequence each forward."""
    width = max(map(len, prompts_ids))
    ids = torch.full((len(prompts_ids), width), pad_id)
    mask = torch.zeros(len(prompts_ids), width, dtype=torch.long)
    for i, prompt in enumerate(prompts_ids):
        ids[i, width - len(prompt) :] = torch.tensor(prompt)
        mask[i, width - len(prompt) :] = 1
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
        logits, cache, last = [out.logits[:, -1]], out.past_key_values, positions[:, -1]
        for step in range(len(generated[0]) - 1):
            mask = torch.cat([mask, mask.new_ones(len(prompts_ids), 1)], dim=1)
            last = last + 1
            tokens = torch.tensor([[tokens[step]] for tokens in generated])
            out = model(input_ids=tokens, attention_mask=mask, position_ids=last[:, None], cache=cache, use_cache=True)
            logits.append(out.logits[:, -1])
    return torch.stack(logits, dim=1)


def test_the_accepted_pairs_are_exactly_the_tested_ones():
    tested = {(model_type, (scaling or {}).get("rope_type", "default")) for model_type, scaling, _, _ in CASES.values()}
    accepted = {(model_type, rope_type) for model_type, types in BUCKET_ROPE_TYPES.items() for rope_type in types}
    assert accepted == tested


@pytest.mark.parametrize("name", STATIC_CASES)
def test_each_bucket_equals_a_separate_model_with_that_base(tiny_tokenizer, name):
    model = case_model(tiny_tokenizer, name)
    check_bucket_model(model)
    generator = BucketedGenerator(model, tiny_tokenizer, bases=BASES)
    results = generator.generate(PROMPTS, max_new_tokens=STEPS, ignore_eos=True, return_bucket_logits=True)
    references = [with_rope_theta(model, base) for base in BASES]
    unscaled = tiny_model(tiny_tokenizer, CASES[name][0], None, CASES[name][2], **CASES[name][3])
    scaled = CASES[name][1] is not None
    for prompt, result in zip(PROMPTS, results):
        prompt_ids = tiny_tokenizer(prompt)["input_ids"]
        assert result.bucket_logits.shape[:2] == (STEPS, len(BASES))
        for k, reference in enumerate(references):
            expected = full_forward_logits(reference, prompt_ids, result.token_ids)
            assert (result.bucket_logits[:, k] - expected).abs().max() <= TOLERANCE, f"{name}: bucket {k}"
        # The bases matter, and so does the scaling: the same weights without it give other logits.
        assert (result.bucket_logits[:, 0] - result.bucket_logits[:, 2]).abs().max() > 100 * TOLERANCE
        if scaled:
            plain = full_forward_logits(with_rope_theta(unscaled, BASES[0]), prompt_ids, result.token_ids)
            assert (result.bucket_logits[:, 0] - plain).abs().max() > 100 * TOLERANCE, f"{name}: scaling ignored"


def test_qwen2_buckets_use_the_qkv_bias(tiny_tokenizer):
    model = case_model(tiny_tokenizer, "qwen2-default")
    assert all(layer.self_attn.q_proj.bias.abs().max() > 0 for layer in model.model.layers)
    generator = BucketedGenerator(model, tiny_tokenizer, bases=BASES[:1])
    [with_bias] = generator.generate(PROMPTS[:1], max_new_tokens=1, return_bucket_logits=True)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.k_proj.bias.zero_()
    [without_bias] = generator.generate(PROMPTS[:1], max_new_tokens=1, return_bucket_logits=True)
    assert (with_bias.bucket_logits - without_bias.bucket_logits).abs().max() > 100 * TOLERANCE


# -- dynamic NTK: frequencies enlarged once a forward's longest sequence passes max_position_embeddings ------

LONG_PROMPTS = [  # 40-51 tokens with the test tokenizer, past the dynamic case's 24 positions; one within them
    "The quick brown fox jumps over the lazy dog. A journey of a thousand miles begins with one step.",
    "Finish: give_answer. The weather in Paris is sunny with a temperature of 21.5 degrees.",
    "The quick brown fox",
]


def test_dynamic_ntk_batch_past_the_original_length_equals_separate_models(tiny_tokenizer):
    model = case_model(tiny_tokenizer, "llama-dynamic")
    original = model.config.max_position_embeddings
    prompts_ids = [tiny_tokenizer(p)["input_ids"] for p in LONG_PROMPTS]
    assert max(map(len, prompts_ids)) > original > min(map(len, prompts_ids))
    # Prefilled together, as a separate model's generate would: every forward's longest sequence is the same.
    generator = BucketedGenerator(model, tiny_tokenizer, bases=BASES, prefill_batch=8)
    results = generator.generate(prompts_ids, max_new_tokens=STEPS, ignore_eos=True, return_bucket_logits=True)
    generated = [r.token_ids for r in results]
    for k, base in enumerate(BASES):
        expected = stepwise_logits(with_rope_theta(model, base), prompts_ids, generated, tiny_tokenizer.pad_token_id)
        for i, result in enumerate(results):
            assert (result.bucket_logits[:, k] - expected[i]).abs().max() <= TOLERANCE, f"prompt {i}, bucket {k}"
    # Past the original length the frequencies really are enlarged: the same weights with plain RoPE differ,
    # also for the short prompt, which shares its forwards with the long ones.
    plain = tiny_model(tiny_tokenizer, "llama", None, original)
    unscaled = stepwise_logits(with_rope_theta(plain, BASES[0]), prompts_ids, generated, tiny_tokenizer.pad_token_id)
    for i, result in enumerate(results):
        assert (result.bucket_logits[:, 0] - unscaled[i]).abs().max() > 100 * TOLERANCE, f"prompt {i}"


def test_dynamic_ntk_call_after_call_grows_and_resets_like_transformers(tiny_tokenizer):
    """One prompt per call (prefilled alone): long, short (transformers resets to the plain frequencies), long
    again; the separate models live through the same calls, so their rotary modules carry the same state."""
    model = case_model(tiny_tokenizer, "llama-dynamic")
    generator = BucketedGenerator(model, tiny_tokenizer, bases=BASES)
    references = [with_rope_theta(model, base) for base in BASES]
    for prompt in (LONG_PROMPTS[1], LONG_PROMPTS[2], LONG_PROMPTS[0]):
        prompt_ids = tiny_tokenizer(prompt)["input_ids"]
        [result] = generator.generate([prompt_ids], max_new_tokens=STEPS, ignore_eos=True, return_bucket_logits=True)
        for k, reference in enumerate(references):
            expected = stepwise_logits(reference, [prompt_ids], [result.token_ids], tiny_tokenizer.pad_token_id)[0]
            assert (result.bucket_logits[:, k] - expected).abs().max() <= TOLERANCE, f"{len(prompt_ids)} tokens, {k}"


def test_dynamic_per_row_rotary_is_transformers_rotary_forward_by_forward(tiny_tokenizer):
    """cos/sin bit for bit against each base's own rotary module over forwards that grow, hold, reset and grow."""
    model = case_model(tiny_tokenizer, "llama-dynamic")
    spec = rope_spec_from_config(model.config)
    rotary = PerRowRotary(BASES, spec, dtype=torch.float32, device="cpu")
    rotary.set_rows(torch.tensor([0, 1, 2, 1]))
    originals = [with_rope_theta(model, base).model.rotary_emb for base in BASES]
    x = torch.zeros(1)
    for last in (10, 30, 27, 40, 24, 12, 23, 33):  # 24 = max_position_embeddings
        positions = torch.stack([torch.arange(last - 5, last + 1) - shift for shift in (0, 3, 5, 1)])
        cos, sin = rotary(x, positions)
        for row, bucket in enumerate((0, 1, 2, 1)):
            ref_cos, ref_sin = originals[bucket](x, positions)  # each module sees the whole batch, as in a model
            assert torch.equal(cos[row], ref_cos[row]) and torch.equal(sin[row], ref_sin[row]), (last, row)


# -- the published configs (no weights): accepted or refused, and transformers' frequencies for any base ------

def _published(kind, **fields):
    return kind(vocab_size=32000, rms_norm_eps=1e-5, **fields)


PUBLISHED = {  # config.json fields of the released checkpoints that matter here
    "Llama-2-7B": _published(LlamaConfig, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                             num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096,
                             rope_theta=10000.0),
    "Llama-3.1-8B": _published(LlamaConfig, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                               num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=131072,
                               rope_theta=500000.0,
                               rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                             "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}),
    "Qwen2.5-7B": _published(Qwen2Config, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                             num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768,
                             rope_theta=1000000.0, sliding_window=131072, use_sliding_window=False,
                             max_window_layers=28),
    # Qwen2.5's model card: add this rope_scaling for contexts past 32,768 tokens
    "Qwen2.5-7B-YaRN": _published(Qwen2Config, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                                  num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768,
                                  rope_theta=1000000.0, sliding_window=131072, use_sliding_window=False,
                                  max_window_layers=28,
                                  rope_scaling={"type": "yarn", "factor": 4.0,
                                                "original_max_position_embeddings": 32768}),
    "Mistral-7B-v0.3": _published(MistralConfig, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                  num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=32768,
                                  rope_theta=1000000.0, sliding_window=None),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_configs_are_accepted_with_transformers_frequencies(name):
    config = PUBLISHED[name]
    check_bucket_config(config)
    spec = rope_spec_from_config(config)
    family = config.model_type
    module = importlib.import_module(f"transformers.models.{family}.modeling_{family}")
    rotary_class = getattr(module, f"{type(config).__name__.removesuffix('Config')}RotaryEmbedding")
    for base in (config.rope_parameters["rope_theta"], 1.75 * config.rope_parameters["rope_theta"]):
        inv_freq, scaling = inverse_frequencies(base, spec)
        separate = copy.deepcopy(config)
        separate.rope_parameters = {**config.rope_parameters, "rope_theta": float(base)}
        own = rotary_class(separate)
        assert torch.equal(inv_freq, own.inv_freq) and scaling == own.attention_scaling, (name, base)


# -- refusals -----------------------------------------------------------------------------------------------

def test_refuses_a_non_llama_layout_by_model_type(tiny_tokenizer):
    gemma = tiny_model(tiny_tokenizer, "gemma", head_dim=16)
    with pytest.raises(ValueError, match=r"Llama-architecture model \(llama, mistral, qwen2\).*model_type='gemma'"):
        BucketedGenerator(gemma, tiny_tokenizer, bases=BASES)


def test_refuses_sliding_window_mistral_naming_the_field(tiny_tokenizer):
    mistral = tiny_model(tiny_tokenizer, "mistral", sliding_window=4096)  # Mistral-7B-v0.1's setting
    with pytest.raises(ValueError, match="sliding-window attention is not supported.*sliding_window=4096"):
        BucketedGenerator(mistral, tiny_tokenizer, bases=BASES)
    qwen = tiny_model(tiny_tokenizer, "qwen2", use_sliding_window=True, sliding_window=32, max_window_layers=1)
    with pytest.raises(ValueError, match="sliding-window attention is not supported"):
        check_bucket_model(qwen)


def test_refuses_longrope_naming_the_supported_types(tiny_tokenizer):
    longrope = {"rope_type": "longrope", "short_factor": [1.0] * 8, "long_factor": [2.0] * 8,
                "original_max_position_embeddings": 64}
    model = tiny_model(tiny_tokenizer, "llama", longrope)
    with pytest.raises(ValueError, match="rope_type 'longrope' is not supported for Attention Buckets; "
                                         "supported: default, linear, llama3, yarn, dynamic"):
        BucketedGenerator(model, tiny_tokenizer, bases=BASES)


def test_refuses_a_family_with_a_scaling_it_was_not_tested_with(tiny_tokenizer):
    model = tiny_model(tiny_tokenizer, "mistral", YARN, sliding_window=None)
    with pytest.raises(ValueError, match="not verified for mistral with rope_type 'yarn'; verified for mistral: "
                                         "default"):
        BucketedGenerator(model, tiny_tokenizer, bases=BASES)
