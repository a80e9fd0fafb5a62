"""Prompt-lookup decoding: drafts are verified in the same forward as the current token, and the output is what
plain greedy decoding gives (tiny random Llama, fp32: same tokens, logits within float rounding).

A random tiny model rarely repeats itself, so its own prompt-lookup drafts are almost always rejected. To
exercise acceptance, most tests swap in an oracle that drafts the known greedy continuation with every third
draft corrupted at its second token: full acceptances, partial ones and rejections all occur.
"""

import pytest
import torch
from test_bucketed_generation import BASES, PROMPTS, STAGGERED_PARAMS, run_staggered

from buckets.generation import BucketedGenerator, DecodeParams
from buckets.prompt_lookup import NgramIndex, accepted_tokens


def test_ngram_index_proposes_what_followed_the_latest_longest_match():
    index = NgramIndex([2, 3, 9, 2, 3, 4, 5, 2, 3], max_ngram=3)
    assert index.propose(2) == [4, 5]  # (5, 2, 3) is new; (2, 3) was last continued by 4, 5 (earlier by 9)
    index = NgramIndex([1, 2, 3, 9, 7, 2, 3, 4, 5, 1, 2, 3], max_ngram=3)
    assert index.propose(2) == [9, 7]  # the 3-gram match wins over the more recent 2-gram one
    assert index.propose(0) == []
    assert NgramIndex([4, 5, 6]).propose(3) == []  # the tail never occurred before
    index = NgramIndex([7, 8, 7], max_ngram=2)
    assert index.propose(5) == [8, 7]  # a draft runs at most to the end of the sequence
    index.extend([8])
    assert index.propose(1) == [7]
    with pytest.raises(ValueError, match="max_ngram"):
        NgramIndex([1], max_ngram=0)


def test_accepted_tokens_keep_the_confirmed_draft_prefix_then_the_models_own_token():
    # greedy[j] is the model's choice after fed column j (column 0: the context's current token)
    assert accepted_tokens([4, 5, 6], [4, 5, 6, 7]) == [4, 5, 6, 7]  # all confirmed: one bonus token
    assert accepted_tokens([4, 5, 6], [4, 9, 6, 7]) == [4, 9]  # stops at the first disagreement, takes the model's
    assert accepted_tokens([4, 5], [8, 5, 3]) == [8]  # a rejected draft still yields one token
    assert accepted_tokens([], [2]) == [2]  # no draft: the plain greedy step
    assert accepted_tokens([4], [4, 1, 1, 1]) == [4, 1]  # columns past the draft (pads) are ignored


def oracle_drafts(generator, continuations: dict[tuple, list[int]], vocab_size: int) -> None:
    """Replace `generator.draft`: draft the known continuation of each greedy prompt (keyed by prompt ids),
    corrupting the second token of every third draft."""
    calls = [0]

    def draft(ctx):
        if ctx.lookup is None:  # sampled prompts are never drafted
            return []
        done = len(ctx.generated)
        room = min(generator.prompt_lookup, ctx.params.max_new_tokens - done - 1)
        proposal = list(continuations[tuple(ctx.prompt_ids)][done : done + max(0, room)])
        calls[0] += 1
        if calls[0] % 3 == 0 and len(proposal) > 1:
            proposal[1] = (proposal[1] + 1) % vocab_size
        return proposal

    generator.draft = draft


def _compare(plain, drafted):
    for expected, got in zip(plain, drafted):
        assert (got.token_ids, got.text, got.finish_reason) == (expected.token_ids, expected.text,
                                                                expected.finish_reason)
        assert (got.bucket_logits - expected.bucket_logits).abs().max() <= 1e-4  # one row per emitted token
        assert len(got.bucket_weights) == len(got.token_ids)
        assert torch.allclose(torch.tensor(got.bucket_weights), torch.tensor(expected.bucket_weights), atol=1e-4)


@pytest.mark.parametrize("bases", [None, BASES], ids=["plain", "3-buckets"])
def test_accepted_drafts_give_the_greedy_tokens_in_fewer_steps(divergent_llama, tiny_tokenizer, bases):
    ids = [tiny_tokenizer(p)["input_ids"] for p in PROMPTS]
    reference = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=bases)
    plain = reference.generate(ids, max_new_tokens=40, ignore_eos=True, return_weights=True,
                               return_bucket_logits=True)
    generator = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=bases, prompt_lookup=4)
    oracle_drafts(generator, {tuple(i): r.token_ids for i, r in zip(ids, plain)}, len(tiny_tokenizer))
    drafted = generator.generate(ids, max_new_tokens=40, ignore_eos=True, return_weights=True,
                                 return_bucket_logits=True)
    _compare(plain, drafted)
    assert all(len(r.token_ids) == 40 for r in drafted)
    stats = generator.stats
    assert reference.stats.decode_steps == 39 and reference.stats.drafted_tokens == 0
    assert 0 < stats.accepted_tokens < stats.drafted_tokens  # some drafts were (partly) rejected
    # all three prompts emit the same number of tokens per step here: each accepted token saved a step
    assert stats.decode_steps < 39


def test_stop_strings_and_length_end_drafted_rows_exactly(divergent_llama, tiny_tokenizer):
    ids = [tiny_tokenizer(p)["input_ids"] for p in PROMPTS]
    [reference] = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES).generate([ids[0]], max_new_tokens=30)
    stop_text = reference.text[len(reference.text) // 2 :][:3]  # fires mid-way, likely inside an accepted draft
    params = [DecodeParams(max_new_tokens=30, stop=(stop_text,)), DecodeParams(max_new_tokens=7),
              DecodeParams(max_new_tokens=30)]
    plain = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES).generate(
        ids, params, return_weights=True, return_bucket_logits=True)
    generator = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES, prompt_lookup=6)
    oracle_drafts(generator, {tuple(i): r.token_ids + [0] * 30 for i, r in zip(ids, plain)}, len(tiny_tokenizer))
    drafted = generator.generate(ids, params, return_weights=True, return_bucket_logits=True)
    _compare(plain, drafted)
    assert drafted[0].finish_reason == "stop" and len(drafted[1].token_ids) == 7
    assert generator.stats.accepted_tokens > 0


def test_drafted_contexts_leave_exact_kv_in_the_prefix_cache(divergent_llama, tiny_tokenizer):
    # The decoder refuses to cache KV whose real columns do not match the tokens: rejected draft columns must be masked out.
    first = [tiny_tokenizer(p)["input_ids"] for p in PROMPTS]
    plain = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES).generate(
        first, max_new_tokens=20, ignore_eos=True)
    generator = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES, prompt_lookup=4)
    oracle_drafts(generator, {tuple(i): r.token_ids for i, r in zip(first, plain)}, len(tiny_tokenizer))
    out = generator.generate(first, max_new_tokens=20, ignore_eos=True, cache_keys=["a", "b", "c"])
    assert [r.token_ids for r in out] == [r.token_ids for r in plain] and generator.stats.accepted_tokens > 0
    follow = [ids + r.token_ids + ids[:5] for ids, r in zip(first, out)]
    generator.draft = lambda ctx: []
    warm = generator.generate(follow, max_new_tokens=12, ignore_eos=True, cache_keys=["a", "b", "c"],
                              return_bucket_logits=True)
    assert all(r.cached_tokens == len(ids) + 19 for ids, r in zip(first, warm))  # all but the unfed last token
    cold = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES).generate(
        follow, max_new_tokens=12, ignore_eos=True, return_bucket_logits=True)
    for got, expected in zip(warm, cold):
        assert got.token_ids == expected.token_ids
        assert (got.bucket_logits - expected.bucket_logits).abs().max() <= 1e-4


def test_continuous_decoding_with_drafts_matches_separate_calls(divergent_llama, tiny_tokenizer):
    # STAGGERED_PARAMS mixes greedy prompts (drafted) with a seeded sampled one (never drafted).
    cold = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES)
    ids = [tiny_tokenizer(p)["input_ids"] for p in PROMPTS]
    expected = [cold.generate([ids[i]], [STAGGERED_PARAMS[i]], return_bucket_logits=True)[0] for i in range(3)]
    generator = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES, prompt_lookup=3)
    oracle_drafts(generator, {tuple(i): r.token_ids for i, r in zip(ids, expected)}, len(tiny_tokenizer))
    results, _, _ = run_staggered(generator, tiny_tokenizer)
    for i in range(3):
        assert results[i].token_ids == expected[i].token_ids
        assert (results[i].bucket_logits - expected[i].bucket_logits).abs().max() <= 1e-4
    assert generator.stats.accepted_tokens > 0


def test_real_prompt_lookup_drafts_keep_greedy_output(divergent_llama, tiny_tokenizer):
    prompts = [p + " " + p for p in PROMPTS]  # repeated text: the lookup finds matches and drafts
    plain = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES).generate(
        prompts, max_new_tokens=24, ignore_eos=True, return_weights=True, return_bucket_logits=True)
    generator = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES, prompt_lookup=4)
    drafted = generator.generate(prompts, max_new_tokens=24, ignore_eos=True, return_weights=True,
                                 return_bucket_logits=True)
    _compare(plain, drafted)
    assert generator.stats.drafted_tokens > 0


def test_negative_lookup_is_refused(divergent_llama, tiny_tokenizer):
    with pytest.raises(ValueError, match="prompt_lookup"):
        BucketedGenerator(divergent_llama, tiny_tokenizer, prompt_lookup=-1)
