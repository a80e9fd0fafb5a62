"""Exactness of the bucketed transformers forward (tiny random Llama, fp32).

- N=1 with the model's own base reproduces `model.generate` greedy tokens and logits.
- Bucket k's logits equal a separate model whose config has rope_theta = b_k, at prefill and over
  >= 8 decode steps, for a left-padded batch, with the fused tokens fed back to the references.
- Prefix-cache continuation equals a cold prefill, also in a batch mixing cached and uncached prompts,
  with new contexts prefilled alone (the CPU default) or together in one padded forward.
- Continuous decoding: prompts admitted between decode steps get what a call of their own gives.
- Stop strings, EOS, per-row early finish, seeded sampling, tables built once per base.
"""

import pytest
import torch
from conftest import build_tiny_llama, with_rope_theta

from buckets import rope
from buckets.fusion import fuse
from buckets.generation import BucketedGenerator, DecodeParams, check_bucket_model
from buckets.rope import PerRowRotary, RopeSpec, cos_sin_table
from buckets.sampling import top_p_filter

PROMPTS = [
    "Thought: I need to call the weather API",
    "The quick brown fox",  # shorter: left padding in the batch
    "User: find the three most popular movies of 2023 and tell me",
]
BASES = (10000.0, 17500.0, 25000.0)


def hf_greedy(model, tokenizer, prompts, new_tokens):
    """Plain transformers greedy decoding: (token lists, per-step logits [steps, V] per prompt)."""
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    out = model.generate(
        **batch, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
        output_logits=True, return_dict_in_generate=True,
    )
    width = batch["input_ids"].shape[1]
    tokens = [row[width:].tolist() for row in out.sequences]
    logits = [torch.stack([step[i] for step in out.logits]) for i in range(len(prompts))]
    return tokens, logits


def reference_logits(model, prompt_ids, generated):
    """Logits a plain model gives at the prompt's last token and after each fed-back token."""
    ids = torch.tensor([prompt_ids + generated[:-1]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]
    return logits[len(prompt_ids) - 1 :]


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"rope_scaling": {"rope_type": "linear", "factor": 2.0}},
        {"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                          "high_freq_factor": 4.0, "original_max_position_embeddings": 64}},
        {"model_type": "qwen2"},
    ],
    ids=["default", "linear", "llama3", "qwen2"],
)
@pytest.mark.parametrize("bases", ["none", "own"])
def test_single_bucket_reproduces_plain_generate(tiny_tokenizer, variant, bases):
    model = build_tiny_llama(tiny_tokenizer, init_range=0.3, seed=2, **variant)
    own = model.config.rope_parameters["rope_theta"]
    expected_tokens, expected_logits = hf_greedy(model, tiny_tokenizer, PROMPTS, 10)
    generator = BucketedGenerator(model, tiny_tokenizer, bases=None if bases == "none" else [own])
    results = generator.generate(PROMPTS, max_new_tokens=10, ignore_eos=True, return_bucket_logits=True)
    for result, tokens, logits in zip(results, expected_tokens, expected_logits):
        assert result.token_ids == tokens
        # fp32 rounding only: a decode step's attention runs another SDPA kernel form than transformers' own
        assert (result.bucket_logits[:, 0] - logits).abs().max() <= 2e-5


@pytest.mark.parametrize("prefill_batch", [1, 8], ids=["prefill-alone", "prefill-padded"])
def test_each_bucket_matches_a_model_with_that_base(divergent_llama, tiny_tokenizer, prefill_batch):
    generator = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES, prefill_batch=prefill_batch)
    steps = 10
    results = generator.generate(PROMPTS, max_new_tokens=steps, ignore_eos=True, return_bucket_logits=True)
    references = [with_rope_theta(divergent_llama, base) for base in BASES]
    disagreements = 0
    for prompt, result in zip(PROMPTS, results):
        assert len(result.token_ids) == steps and result.bucket_logits.shape[:2] == (steps, len(BASES))
        prompt_ids = tiny_tokenizer(prompt)["input_ids"]
        for k, reference in enumerate(references):
            expected = reference_logits(reference, prompt_ids, result.token_ids)
            assert expected.shape[0] == steps
            assert (result.bucket_logits[:, k] - expected).abs().max() <= 1e-4, f"bucket {k}"
        # The fed-back token is the fused distribution's argmax (greedy).
        fused, _ = fuse(result.bucket_logits, "max_logit")
        assert fused.argmax(-1).tolist() == result.token_ids
        top = result.bucket_logits.argmax(-1)  # [steps, N]
        disagreements += int((top != top[:, :1]).any(-1).sum())
    assert disagreements > 0, "the test model should make buckets disagree, or the test proves little"


def test_bucket_weights_are_returned_per_token(divergent_llama, tiny_tokenizer):
    generator = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES, fusion="entropy")
    [result] = generator.generate(PROMPTS[:1], max_new_tokens=5, ignore_eos=True, return_weights=True)
    assert len(result.bucket_weights) == 5
    for weights in result.bucket_weights:
        assert len(weights) == 3 and sum(weights) == pytest.approx(1.0, abs=1e-5)
    [plain] = generator.generate(PROMPTS[:1], max_new_tokens=5, ignore_eos=True)
    assert plain.bucket_weights is None and plain.token_ids == result.token_ids


@pytest.mark.parametrize("prefill_batch", [1, 8], ids=["prefill-alone", "prefill-padded"])
def test_prefix_cache_continuation_equals_cold_prefill(divergent_llama, tiny_tokenizer, prefill_batch):
    warm = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES, prefill_batch=prefill_batch)
    first = warm.generate(PROMPTS, max_new_tokens=6, ignore_eos=True, cache_keys=["a", "b", "c"])
    assert all(r.cached_tokens == 0 for r in first)
    observation = tiny_tokenizer(" Observation: sunny", add_special_tokens=False)["input_ids"]
    follow_ups = [
        tiny_tokenizer(p)["input_ids"] + r.token_ids + observation for p, r in zip(PROMPTS, first)
    ]
    # A batch mixing two cached contexts of different lengths, a cache key never seen, and no key.
    fresh = tiny_tokenizer("Action: get_weather_for_openweather")["input_ids"]
    prompts = [follow_ups[0], follow_ups[2], fresh, follow_ups[1]]
    keys = ["a", "c", "new", None]
    continued = warm.generate(prompts, max_new_tokens=8, ignore_eos=True, cache_keys=keys,
                              return_bucket_logits=True)
    assert [r.cached_tokens for r in continued] == [len(follow_ups[0]) - len(observation) - 1,
                                                    len(follow_ups[2]) - len(observation) - 1, 0, 0]
    cold = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES)
    for prompt, result in zip(prompts, continued):
        [expected] = cold.generate([prompt], max_new_tokens=8, ignore_eos=True, return_bucket_logits=True)
        assert result.token_ids == expected.token_ids
        assert (result.bucket_logits - expected.bucket_logits).abs().max() <= 1e-4


def test_prefix_cache_with_text_prompts_and_a_diverging_prefix(divergent_llama, tiny_tokenizer):
    generator = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES[:2])
    prompt = PROMPTS[0]
    [first] = generator.generate([prompt], max_new_tokens=6, cache_keys=["t"], stop=("\n",))
    follow_up = prompt + first.text + "\nObservation: {}"
    [second] = generator.generate([follow_up], max_new_tokens=6, ignore_eos=True, cache_keys=["t"])
    assert second.cached_tokens >= len(tiny_tokenizer(prompt)["input_ids"]) - 1
    # A prompt that rewrites history shares only a short prefix: only that part is reused.
    [third] = generator.generate(["Thought: something else entirely"], max_new_tokens=6, ignore_eos=True,
                                 cache_keys=["t"])
    assert third.cached_tokens < second.cached_tokens
    cold = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES[:2])
    for text, result in [(follow_up, second), ("Thought: something else entirely", third)]:
        [expected] = cold.generate([text], max_new_tokens=6, ignore_eos=True)
        assert result.token_ids == expected.token_ids


def test_a_continuation_is_stored_when_it_finishes_not_after_its_prefill(divergent_llama, tiny_tokenizer):
    generator = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES[:2])
    stored, store = [], generator.prefix_cache.store
    generator.prefix_cache.store = lambda key, ids, kv: (stored.append((key, len(ids))), store(key, ids, kv))
    ids = tiny_tokenizer(PROMPTS[0])["input_ids"]
    [first] = generator.generate([ids], max_new_tokens=4, ignore_eos=True, cache_keys=["t"])
    # A first call is stored after its prefill (others may borrow its opening) and when it finishes.
    assert stored == [("t", len(ids)), ("t", len(ids) + 3)]
    stored.clear()
    follow_up = ids + first.token_ids + tiny_tokenizer(" Observation: sunny", add_special_tokens=False)["input_ids"]
    [second] = generator.generate([follow_up], max_new_tokens=4, ignore_eos=True, cache_keys=["t"])
    # Its next call continues its own entry, which already offers the opening: stored only when it finishes.
    assert second.cached_tokens == len(ids) + 3 and stored == [("t", len(follow_up) + 3)]


def test_prefix_cache_is_bounded(divergent_llama, tiny_tokenizer):
    from buckets.prefix_cache import PrefixCache

    generator = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES,
                                  prefix_cache=PrefixCache(max_entries=2))
    generator.generate(PROMPTS, max_new_tokens=2, ignore_eos=True, cache_keys=["a", "b", "c"])
    assert len(generator.prefix_cache) == 2 and "a" not in generator.prefix_cache


def test_stop_string_trims_and_ends_only_that_row(divergent_llama, tiny_tokenizer):
    generator = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES)
    [free] = generator.generate(PROMPTS[:1], max_new_tokens=12, ignore_eos=True)
    stop = free.text[len(free.text) // 2 : len(free.text) // 2 + 2]
    assert stop.strip(), f"need a visible stop string, got {stop!r} from {free.text!r}"
    cut = free.text.find(stop)
    batch = generator.generate(
        [PROMPTS[0], PROMPTS[1]],
        [DecodeParams(max_new_tokens=12, stop=(stop,), ignore_eos=True), DecodeParams(max_new_tokens=12,
                                                                                      ignore_eos=True)],
    )
    stopped, other = batch
    assert stopped.finish_reason == "stop" and stopped.text == free.text[:cut]
    assert len(stopped.token_ids) < 12 and free.token_ids[: len(stopped.token_ids)] == stopped.token_ids
    [alone] = generator.generate(PROMPTS[1:2], max_new_tokens=12, ignore_eos=True)
    assert other.finish_reason == "length" and other.token_ids == alone.token_ids


def test_eos_ends_generation_and_is_not_in_the_text(tiny_tokenizer):
    model = build_tiny_llama(tiny_tokenizer, init_range=0.3, seed=1)
    [free] = BucketedGenerator(model, tiny_tokenizer, bases=BASES).generate(
        PROMPTS[:1], max_new_tokens=8, ignore_eos=True)
    eos = free.token_ids[3]
    first = free.token_ids.index(eos)
    model.generation_config.eos_token_id = eos
    [result] = BucketedGenerator(model, tiny_tokenizer, bases=BASES).generate(PROMPTS[:1], max_new_tokens=8)
    assert result.finish_reason == "stop" and result.token_ids == free.token_ids[: first + 1]
    assert result.text == tiny_tokenizer.decode(free.token_ids[:first], skip_special_tokens=True)


def test_max_new_tokens_gives_length_and_zero_is_allowed(divergent_llama, tiny_tokenizer):
    generator = BucketedGenerator(divergent_llama, tiny_tokenizer)
    [result, empty] = generator.generate(
        PROMPTS[:2], [DecodeParams(max_new_tokens=3, ignore_eos=True), DecodeParams(max_new_tokens=0)])
    assert result.finish_reason == "length" and len(result.token_ids) == 3
    assert empty.token_ids == [] and empty.text == ""


def test_seeded_sampling_is_deterministic_and_batch_independent(divergent_llama, tiny_tokenizer):
    generator = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES)
    params = DecodeParams(max_new_tokens=10, temperature=1.0, top_p=0.9, seed=7, ignore_eos=True)
    [a] = generator.generate(PROMPTS[:1], [params])
    [b] = generator.generate(PROMPTS[:1], [params])
    assert a.token_ids == b.token_ids
    _, c = generator.generate([PROMPTS[2], PROMPTS[0]], [DecodeParams(max_new_tokens=4), params])
    assert c.token_ids == a.token_ids
    others = {tuple(generator.generate(PROMPTS[:1], [DecodeParams(max_new_tokens=10, temperature=1.0,
                                                                  seed=s, ignore_eos=True)])[0].token_ids)
              for s in range(4)}
    assert len(others) > 1, "different seeds should sample different continuations"
    # A shared seed gives each prompt its own stream: two identical prompts differ.
    twins = generator.generate([PROMPTS[0]] * 2, max_new_tokens=10, temperature=1.0, seed=3, ignore_eos=True)
    assert twins[0].token_ids != twins[1].token_ids


def test_top_p_keeps_the_smallest_set_reaching_the_mass():
    scores = torch.log(torch.tensor([0.1, 0.6, 0.3]))
    assert top_p_filter(scores, 0.6).isinf().tolist() == [True, False, True]
    assert top_p_filter(scores, 0.65).isinf().tolist() == [True, False, False]
    assert not top_p_filter(scores, 1.0).isinf().any()


def test_cos_sin_tables_are_built_once_per_base(divergent_llama, tiny_tokenizer, monkeypatch):
    rope.clear_table_cache()
    calls = []
    original = rope.inverse_frequencies
    monkeypatch.setattr(rope, "inverse_frequencies", lambda base, spec: calls.append(base) or original(base, spec))
    generator = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES)
    generator.generate(PROMPTS, max_new_tokens=10, ignore_eos=True)
    generator.generate(PROMPTS, max_new_tokens=10, ignore_eos=True)
    assert sorted(calls) == sorted(BASES)


def test_table_matches_transformers_rotary_and_grows_when_needed(divergent_llama):
    spec = RopeSpec(head_dim=16, max_position_embeddings=32)
    cos, _ = cos_sin_table(12345.0, spec, 40)
    assert cos.shape[0] >= 40
    rotary = PerRowRotary([10000.0, 12345.0], spec, dtype=torch.float32, device="cpu")
    rotary.set_rows(torch.tensor([1, 0]))
    positions = torch.tensor([[0, 1, 70], [3, 4, 5]])
    got_cos, got_sin = rotary(torch.zeros(1), positions)
    assert torch.equal(got_cos[0], cos_sin_table(12345.0, spec, 71)[0][[0, 1, 70]])
    reference = with_rope_theta(divergent_llama, 10000.0).model.rotary_emb
    ref_cos, ref_sin = reference(torch.zeros(1, dtype=torch.float32), positions[1:])
    assert torch.equal(got_cos[1], ref_cos[0]) and torch.equal(got_sin[1], ref_sin[0])


def test_model_rotary_is_restored_even_after_an_error(divergent_llama, tiny_tokenizer):
    original = divergent_llama.model.rotary_emb
    generator = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES)
    with pytest.raises(ValueError, match="empty prompt"):
        generator.generate([""], max_new_tokens=2)
    generator.generate([[10, 11, 12]], max_new_tokens=2)
    assert divergent_llama.model.rotary_emb is original


def test_bfloat16_buckets_track_bfloat16_references(tiny_tokenizer):
    model = build_tiny_llama(tiny_tokenizer, init_range=0.3, seed=1).to(torch.bfloat16)
    generator = BucketedGenerator(model, tiny_tokenizer, bases=BASES)
    [result] = generator.generate(PROMPTS[:1], max_new_tokens=4, ignore_eos=True, return_bucket_logits=True)
    prompt_ids = tiny_tokenizer(PROMPTS[0])["input_ids"]
    for k, base in enumerate(BASES):
        expected = reference_logits(with_rope_theta(model, base), prompt_ids, result.token_ids).float()
        scale = expected.abs().max()
        assert (result.bucket_logits[:, k] - expected).abs().max() <= 0.05 * scale


def test_rejects_models_and_ropes_buckets_cannot_serve(tiny_tokenizer):
    from transformers import AutoConfig, AutoModelForCausalLM

    gpt2 = AutoModelForCausalLM.from_config(AutoConfig.for_model("gpt2", n_layer=1, n_embd=32, n_head=2,
                                                                 vocab_size=64))
    with pytest.raises(ValueError, match="Llama-architecture.*model_type='gpt2'"):
        check_bucket_model(gpt2)
    longrope = build_tiny_llama(tiny_tokenizer, rope_scaling={
        "rope_type": "longrope", "short_factor": [1.0] * 8, "long_factor": [2.0] * 8,
        "original_max_position_embeddings": 64})
    with pytest.raises(ValueError, match="rope_type 'longrope' is not supported"):
        BucketedGenerator(longrope, tiny_tokenizer, bases=BASES)
    with pytest.raises(ValueError, match="unknown fusion rule"):
        BucketedGenerator(build_tiny_llama(tiny_tokenizer), tiny_tokenizer, bases=BASES, fusion="vote")


def test_plain_mode_serves_any_causal_lm(tiny_tokenizer):
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    config = AutoConfig.for_model("gpt2", n_layer=2, n_embd=32, n_head=2, vocab_size=len(tiny_tokenizer),
                                  n_positions=128, pad_token_id=tiny_tokenizer.pad_token_id,
                                  eos_token_id=tiny_tokenizer.eos_token_id, initializer_range=0.3)
    gpt2 = AutoModelForCausalLM.from_config(config).eval()
    gpt2.generation_config.pad_token_id = tiny_tokenizer.pad_token_id
    expected, _ = hf_greedy(gpt2, tiny_tokenizer, PROMPTS, 6)
    results = BucketedGenerator(gpt2, tiny_tokenizer).generate(PROMPTS, max_new_tokens=6, ignore_eos=True)
    assert [r.token_ids for r in results] == expected


@pytest.mark.parametrize("prefill_batch", [1, 8], ids=["prefill-alone-then-stacked", "prefill-together"])
def test_plain_mode_handles_cache_layers_of_other_kinds(tiny_tokenizer, prefill_batch):
    model = build_tiny_llama(tiny_tokenizer, init_range=0.3, seed=4, model_type="mistral")
    model.config.sliding_window = 256  # longer than any prompt here: the same attention as full layers
    expected, _ = hf_greedy(model, tiny_tokenizer, PROMPTS, 6)
    generator = BucketedGenerator(model, tiny_tokenizer, prefill_batch=prefill_batch)
    lengths = [6, 6, 2]  # the longest prompt leaves first: its rows go and the leading columns with them
    params = [DecodeParams(max_new_tokens=k, ignore_eos=True) for k in lengths]
    results = generator.generate(PROMPTS, params)
    assert [r.token_ids for r in results] == [tokens[:k] for tokens, k in zip(expected, lengths)]


STAGGERED_PARAMS = [DecodeParams(max_new_tokens=9, stop=()), DecodeParams(max_new_tokens=3),
                    DecodeParams(max_new_tokens=6, temperature=0.9, seed=7)]


def run_staggered(generator, tokenizer, reserve_contexts=0, buffers=None):
    """Prompt 0 joins a `ContinuousDecoder` first, 1 and 2 at the third step; returns `(results by prompt index,
    prompts in flight after each step, the prompts' ids)`. `buffers` collects the first layer's key buffer
    after each step."""
    decoder = generator.continuous(return_bucket_logits=True, reserve_contexts=reserve_contexts)
    ids = [tokenizer(p)["input_ids"] for p in PROMPTS]
    schedule = {0: [0], 2: [1, 2]}
    results, in_flight = {}, []
    for step in range(40):
        admit = [(ids[i], STAGGERED_PARAMS[i], f"t{i}", i) for i in schedule.get(step, [])]
        results.update(decoder.step(admit))
        in_flight.append(decoder.active)
        if buffers is not None and decoder._batch is not None:
            buffers.append(decoder._batch.cache.layers[0]._key_buffer)
        if len(results) == 3:
            break
    return results, in_flight, ids


@pytest.mark.parametrize("reserve_contexts", [0, 3])
def test_continuous_decoder_admits_between_steps_and_matches_separate_calls(divergent_llama, tiny_tokenizer,
                                                                            reserve_contexts, monkeypatch):
    from buckets.growing_cache import GrowingLayer

    adopted, adopt = [], GrowingLayer._adopt
    monkeypatch.setattr(GrowingLayer, "_adopt", lambda layer, other: (adopted.append(other), adopt(layer, other)))
    generator = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES)
    buffers = []
    results, in_flight, ids = run_staggered(generator, tiny_tokenizer, reserve_contexts, buffers)
    if reserve_contexts:  # rows for all three from the first prefill: the two newcomers joined without a regrowth,
        assert buffers[0].shape[0] == 3 * len(BASES) and buffers[2] is buffers[0]
        # each prefilled straight into them (every layer adopted its rows instead of copying them)
        assert len(adopted) == 2 * divergent_llama.config.num_hidden_layers
    else:
        assert buffers[0].shape[0] == len(BASES) and buffers[2] is not buffers[0]
    assert sorted(results) == [0, 1, 2]
    assert in_flight[2] == 3 and results[1].finish_reason == "length"
    assert max(in_flight) == 3 and in_flight[-1] == 0
    cold = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES)
    for i in range(3):
        [expected] = cold.generate([ids[i]], [STAGGERED_PARAMS[i]], return_bucket_logits=True)
        assert results[i].token_ids == expected.token_ids
        assert (results[i].bucket_logits - expected.bucket_logits).abs().max() <= 1e-4
    # finished contexts went to the prefix cache under their keys
    assert all(f"t{i}" in generator.prefix_cache for i in range(3))


def test_continuous_decoder_forgets_everything_after_an_error(divergent_llama, tiny_tokenizer, monkeypatch):
    from buckets.generation import DecodeParams

    generator = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES)
    decoder = generator.continuous()
    ids = tiny_tokenizer(PROMPTS[0])["input_ids"]
    decoder.step([(ids, DecodeParams(max_new_tokens=20, ignore_eos=True), None, "a")])
    assert decoder.handles() == ["a"]

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(generator, "forward", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        decoder.step([(ids, DecodeParams(max_new_tokens=2), None, "b")])
    assert decoder.active == 0 and decoder.abandon() == ["a"] and decoder.abandon() == []
    monkeypatch.undo()
    [(handle, result)] = decoder.step([(ids, DecodeParams(max_new_tokens=1), None, "c")])
    assert handle == "c" and len(result.token_ids) == 1


SYSTEM = ("System: You are AutoGPT, you can use many tools (functions) to do the following task. First I will "
          "give you the task description, and your task start. At each step, you need to give your thought. ")


@pytest.mark.parametrize("share", [True, False], ids=["shared", "per-key"])
def test_a_new_key_borrows_another_keys_opening_and_decodes_as_cold(divergent_llama, tiny_tokenizer, share):
    from buckets.prefix_cache import PrefixCache

    opening = len(tiny_tokenizer(SYSTEM)["input_ids"])
    assert opening > 32  # above min_shared_tokens
    prompts = [SYSTEM + "User: weather in Oslo?", SYSTEM + "Query: movies of 2023", SYSTEM + "Hotels in Rome"]
    generator = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES,
                                  prefix_cache=PrefixCache(share_across_keys=share))
    # the first two arrive together: the second borrows from the first's prefill; the third comes later
    results = generator.generate(prompts[:2], max_new_tokens=6, ignore_eos=True, cache_keys=["t1", "t2"],
                                 return_bucket_logits=True)
    results += generator.generate(prompts[2:], max_new_tokens=6, ignore_eos=True, cache_keys=["t3"],
                                  return_bucket_logits=True)
    cached = [r.cached_tokens for r in results]
    if share:
        assert cached[0] == 0 and all(opening - 2 <= c < opening + 4 for c in cached[1:])
    else:
        assert cached == [0, 0, 0]
    cold = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES)
    for prompt, result in zip(prompts, results):
        [expected] = cold.generate([prompt], max_new_tokens=6, ignore_eos=True, return_bucket_logits=True)
        assert result.token_ids == expected.token_ids
        assert (result.bucket_logits - expected.bucket_logits).abs().max() <= 1e-4
