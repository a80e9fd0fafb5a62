"""The hf engine's memory budget: the estimate bounds the real cache, and it caps the batch instead of crashing."""

import asyncio

import pytest

from buckets.generation import BucketedGenerator, DecodeParams
from buckets.memory_budget import MemoryBudget, MemoryBudgetError
from toolbench_eval.engines.base import BucketSpec, SamplingParams
from toolbench_eval.engines.hf import HFEngine

BASES = (10000.0, 17500.0, 25000.0)


def _budget(model, limit_bytes=1 << 40):
    return MemoryBudget.for_config(model.config, buckets=len(BASES), dtype_bytes=4, limit_bytes=limit_bytes,
                                   device="cpu")


def test_estimate_bounds_the_kv_buffers_the_decode_loop_really_allocates(divergent_llama, tiny_tokenizer):
    generator = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES)
    decoder = generator.continuous()
    prompts = [list(range(5, 5 + length)) for length in (7, 19, 12, 30)]
    params = DecodeParams(max_new_tokens=9, ignore_eos=True)
    decoder.step([(ids, params, None, i) for i, ids in enumerate(prompts)])
    peak = 0
    while decoder.active:
        cache = decoder._batch.cache
        allocated = sum(layer._key_buffer.nbytes + layer._value_buffer.nbytes for layer in cache.layers)
        peak = max(peak, allocated)
        decoder.step()
    spans = [len(ids) + 9 for ids in prompts]
    budget = _budget(divergent_llama)
    assert peak > 0
    assert budget.batch_bytes(spans) >= peak  # never optimistic about what the loop allocates
    assert budget.batch_bytes(spans) < 8 * peak  # and not absurdly pessimistic either


def test_engine_admits_only_what_fits_and_finishes_everything(divergent_llama, tiny_tokenizer):
    params = SamplingParams(max_new_tokens=6, ignore_eos=True)
    prompt = "The quick brown fox jumps"
    span = len(tiny_tokenizer(prompt)["input_ids"]) + 6
    two = _budget(divergent_llama).batch_bytes([span, span], prefill_tokens=span)
    engine = HFEngine(divergent_llama, tiny_tokenizer, BucketSpec(bases=BASES), max_batch_size=16,
                      memory_budget_gib=(two + 1) / 2**30)

    async def main():
        results = await asyncio.gather(*[engine.generate([prompt], params) for _ in range(5)])
        await engine.close()
        return results

    results = asyncio.run(main())
    assert [r.completion_tokens for [r] in results] == [6] * 5
    assert max(engine.batch_sizes) == 2 and engine.budget_waits > 0


def test_a_prompt_too_large_even_alone_fails_its_own_call_and_the_engine_keeps_serving(
    divergent_llama, tiny_tokenizer
):
    short, long = "Hi there", " ".join(["word"] * 60)
    budget = _budget(divergent_llama)
    short_span = len(tiny_tokenizer(short)["input_ids"]) + 4
    engine = HFEngine(divergent_llama, tiny_tokenizer, BucketSpec(bases=BASES),
                      memory_budget_gib=(budget.batch_bytes([short_span], short_span) + 1) / 2**30)
    params = SamplingParams(max_new_tokens=4, ignore_eos=True)

    async def main():
        outcomes = await asyncio.gather(engine.generate([long], params), engine.generate([short], params),
                                        return_exceptions=True)
        await engine.close()
        return outcomes

    too_long, [fine] = asyncio.run(main())
    assert isinstance(too_long, MemoryBudgetError)
    assert "does not fit alone" in str(too_long) and "memory budget" in str(too_long)
    assert fine.completion_tokens == 4


def test_memory_fraction_is_checked(divergent_llama, tiny_tokenizer):
    with pytest.raises(ValueError, match="memory_fraction"):
        HFEngine(divergent_llama, tiny_tokenizer, None, memory_fraction=1.5)
