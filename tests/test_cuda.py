"""The bucketed forward, continuous decoding and training on a CUDA device (skipped without one).

CI has no GPU, so these run where one is lent (results/benchmarks/gpu_checks.md says when they last ran and
on what). `TOOLBENCH_TEST_DEVICE=cpu` runs the same checks on the CPU, to try them without a GPU.

- Every bucket's logits equal a plain model with that RoPE base, both on the device, for a left-padded batch
  prefilled together (the GPU default) and over 10 decode steps.
- The device's bucket logits equal the CPU's (fp32, TF32 off).
- Prompts admitted between decode steps of a `ContinuousDecoder` get what a call of their own gives.
- bfloat16 buckets track bfloat16 references on the device.
- A few training steps on the device lower the loss, in bf16 autocast as the recipe uses there.
"""

import os

import pytest
import torch
from conftest import build_tiny_llama, with_rope_theta
from test_bucketed_generation import BASES, PROMPTS, STAGGERED_PARAMS, reference_logits, run_staggered

from buckets.generation import BucketedGenerator

DEVICE = os.environ.get("TOOLBENCH_TEST_DEVICE") or ("cuda" if torch.cuda.is_available() else None)
pytestmark = pytest.mark.skipif(DEVICE is None, reason="no CUDA device (TOOLBENCH_TEST_DEVICE=cpu runs these on CPU)")


@pytest.fixture(autouse=True)
def exact_float32_matmuls():
    """TF32 would round fp32 products to 10 mantissa bits and make 1e-4 comparisons meaningless."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


@pytest.fixture(scope="module")
def model_on_device(tiny_tokenizer):
    return build_tiny_llama(tiny_tokenizer, init_range=0.3, seed=1).to(DEVICE)


def _close(actual: torch.Tensor, expected: torch.Tensor, tolerance: float = 1e-4) -> float:
    """Largest difference relative to the logits' scale (>= 1), asserted <= tolerance."""
    difference = float((actual.float().cpu() - expected.float().cpu()).abs().max())
    scale = max(1.0, float(expected.abs().max()))
    assert difference <= tolerance * scale, f"differs by {difference} (scale {scale})"
    return difference


def test_generator_runs_on_the_models_device_and_prefills_together(model_on_device, tiny_tokenizer):
    generator = BucketedGenerator(model_on_device, tiny_tokenizer, bases=BASES)
    assert generator.device.type == torch.device(DEVICE).type
    if DEVICE != "cpu":
        assert generator.prefill_group_size(len(PROMPTS)) == len(PROMPTS)  # one padded forward on a GPU


def test_each_bucket_matches_a_model_with_that_base_on_the_device(model_on_device, tiny_tokenizer):
    generator = BucketedGenerator(model_on_device, tiny_tokenizer, bases=BASES)
    steps = 10
    results = generator.generate(PROMPTS, max_new_tokens=steps, ignore_eos=True, return_bucket_logits=True)
    references = [with_rope_theta(model_on_device, base).to(DEVICE) for base in BASES]
    for prompt, result in zip(PROMPTS, results):
        assert len(result.token_ids) == steps
        prompt_ids = tiny_tokenizer(prompt)["input_ids"]
        for k, reference in enumerate(references):
            with torch.device(DEVICE):
                expected = reference_logits(reference, prompt_ids, result.token_ids)
            _close(result.bucket_logits[:, k], expected)


def test_device_bucket_logits_equal_the_cpus(model_on_device, tiny_tokenizer):
    on_device = BucketedGenerator(model_on_device, tiny_tokenizer, bases=BASES)
    on_cpu = BucketedGenerator(build_tiny_llama(tiny_tokenizer, init_range=0.3, seed=1), tiny_tokenizer, bases=BASES)
    device_results = on_device.generate(PROMPTS, max_new_tokens=8, ignore_eos=True, return_bucket_logits=True)
    cpu_results = on_cpu.generate(PROMPTS, max_new_tokens=8, ignore_eos=True, return_bucket_logits=True)
    for device_result, cpu_result in zip(device_results, cpu_results):
        assert device_result.token_ids == cpu_result.token_ids
        _close(device_result.bucket_logits, cpu_result.bucket_logits)


def test_continuous_decoder_on_the_device_matches_separate_calls(model_on_device, tiny_tokenizer):
    results, _, ids = run_staggered(BucketedGenerator(model_on_device, tiny_tokenizer, bases=BASES), tiny_tokenizer)
    assert sorted(results) == [0, 1, 2]
    cold = BucketedGenerator(model_on_device, tiny_tokenizer, bases=BASES)
    for i in range(3):
        [expected] = cold.generate([ids[i]], [STAGGERED_PARAMS[i]], return_bucket_logits=True)
        assert results[i].token_ids == expected.token_ids
        _close(results[i].bucket_logits, expected.bucket_logits)


def test_bfloat16_buckets_track_bfloat16_references_on_the_device(tiny_tokenizer):
    model = build_tiny_llama(tiny_tokenizer, init_range=0.3, seed=1).to(DEVICE, torch.bfloat16)
    generator = BucketedGenerator(model, tiny_tokenizer, bases=BASES)
    [result] = generator.generate(PROMPTS[:1], max_new_tokens=4, ignore_eos=True, return_bucket_logits=True)
    prompt_ids = tiny_tokenizer(PROMPTS[0])["input_ids"]
    for k, base in enumerate(BASES):
        with torch.device(DEVICE):
            expected = reference_logits(with_rope_theta(model, base).to(DEVICE), prompt_ids, result.token_ids)
        _close(result.bucket_logits[:, k], expected, tolerance=0.05)


def test_training_steps_on_the_device_lower_the_loss(tmp_path):
    from test_training import _write_data, make_model, make_tokenizer

    from toolbench_eval.training.sft import Recipe, train

    tokenizer = make_tokenizer()
    recipe = Recipe(data=str(_write_data(tmp_path)), out=str(tmp_path / "out"), method="full", learning_rate=5e-3,
                    max_steps=8, grad_accum=1, logging_steps=1, save_steps=100, warmup_ratio=0.0, device=DEVICE)
    manifest = train(recipe, model=make_model(len(tokenizer)), tokenizer=tokenizer)
    assert manifest["hardware"]["device"] == DEVICE
    assert manifest["hardware"]["bf16"] == (DEVICE == "cuda" and torch.cuda.is_bf16_supported())
    result = manifest["result"]
    assert result["final_logged_loss"] < result["first_logged_loss"] - 0.5
