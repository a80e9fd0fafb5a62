"""The official-pipeline baseline of `bench runner --buckets N`: the same greedy tokens as our bucketed engine,
with ToolBench's stopping (stop strings, EOS), one prompt at a time and nothing kept between calls."""

import asyncio

import pytest

from buckets.generation import BucketedGenerator
from toolbench_eval.engines.base import SamplingParams
from toolbench_eval.speed._official_buckets import OfficialBucketsEngine

BASES = (10000.0, 17500.0, 18000.0, 19000.0, 20000.0, 25000.0)
PROMPTS = ["Thought: I need to call the weather API", "The quick brown fox", "User: find three movies"]


@pytest.mark.parametrize("prefill_attention", ["sdpa", "eager"])
def test_official_style_decoding_chooses_the_tokens_our_bucketed_engine_chooses(divergent_llama, tiny_tokenizer,
                                                                                prefill_attention):
    official = OfficialBucketsEngine(divergent_llama, tiny_tokenizer, BASES, prefill_attention=prefill_attention)
    ours = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES)
    for prompt in PROMPTS:
        ids = tiny_tokenizer(prompt)["input_ids"]
        [expected] = ours.generate([prompt], max_new_tokens=10, ignore_eos=True)
        assert official.decoder.generate(ids, 10) == expected.token_ids


def test_official_engine_stops_like_toolbench_and_counts_what_it_did(divergent_llama, tiny_tokenizer):
    official = OfficialBucketsEngine(divergent_llama, tiny_tokenizer, BASES)
    ours = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES)
    [free] = ours.generate([PROMPTS[0]], max_new_tokens=12, ignore_eos=True)
    stop = free.text[len(free.text) // 2 : len(free.text) // 2 + 2]  # a stop string that occurs mid-completion
    params = SamplingParams(max_new_tokens=12, stop=(stop,))
    [expected] = ours.generate([PROMPTS[0]], params)
    [completion] = asyncio.run(official.generate([PROMPTS[0]], params))
    assert stop and completion.text == expected.text and completion.finish_reason == "stop"
    assert completion.completion_tokens == len(expected.token_ids)
    assert official.calls == 1 and official.generated_tokens == completion.completion_tokens
