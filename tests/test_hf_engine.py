"""The async engines: HFEngine batches concurrent callers; ScriptedEngine fakes replies for tests."""

import asyncio

import pytest

from buckets.generation import BucketedGenerator
from toolbench_eval.engines.base import BucketSpec, Engine, SamplingParams
from toolbench_eval.engines.hf import HFEngine, decode_params
from toolbench_eval.engines.scripted import DEFAULT_REPLY, ScriptedEngine
from toolbench_eval.errors import UserError
from toolbench_eval.registry import construct

BASES = (10000.0, 17500.0, 25000.0)
PROMPTS = [
    "Thought: I need to call the weather API",
    "The quick brown fox",
    "User: find the three most popular movies",
    "Action: get_weather_for_openweather",
    "Observation: sunny",
    "Finish: give_answer",
]
CALL_PARAMS = [
    SamplingParams(max_new_tokens=6),
    SamplingParams(max_new_tokens=4, stop=("e",)),
    SamplingParams(max_new_tokens=8, temperature=0.8, top_p=0.9, seed=11),
    SamplingParams(max_new_tokens=5, temperature=1.0, seed=3),
    SamplingParams(max_new_tokens=3),
    SamplingParams(max_new_tokens=7, stop=("\n", "a")),
]


@pytest.fixture
def engine(divergent_llama, tiny_tokenizer):
    return HFEngine(divergent_llama, tiny_tokenizer, BucketSpec(bases=BASES), max_batch_size=16,
                    return_weights=True)


def test_hf_engine_satisfies_the_engine_protocol(engine):
    assert isinstance(engine, Engine) and engine.name == "hf" and engine.bucket_spec.n == 3
    assert engine.count_tokens("The quick brown fox") > 0


def test_concurrent_callers_share_one_batched_forward_and_match_direct_calls(
    engine, divergent_llama, tiny_tokenizer
):
    async def main():
        calls = [engine.generate([p], params) for p, params in zip(PROMPTS, CALL_PARAMS)]
        results = await asyncio.gather(*calls)
        await engine.close()
        return results

    results = asyncio.run(main())
    assert engine.batch_sizes[0] == len(PROMPTS)  # all six were admitted to the first step together
    direct = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES)
    for prompt, params, [completion] in zip(PROMPTS, CALL_PARAMS, results):
        [expected] = direct.generate([prompt], [decode_params(params, 0)], return_weights=True)
        assert completion.text == expected.text
        assert completion.completion_tokens == len(expected.token_ids)
        assert completion.finish_reason == expected.finish_reason
        assert completion.prompt_tokens == expected.prompt_tokens
        assert len(completion.bucket_weights) == len(expected.bucket_weights)
        for got, want in zip(completion.bucket_weights, expected.bucket_weights):
            assert got == pytest.approx(want, abs=1e-5)


def test_batches_respect_max_batch_size(divergent_llama, tiny_tokenizer):
    engine = HFEngine(divergent_llama, tiny_tokenizer, max_batch_size=4)

    async def main():
        return await asyncio.gather(*[engine.generate([p], SamplingParams(max_new_tokens=2)) for p in PROMPTS])

    results = asyncio.run(main())
    assert engine.batch_sizes[0] == 4 and max(engine.batch_sizes) == 4 and len(results) == len(PROMPTS)
    assert all(completion.completion_tokens == 2 for [completion] in results)


def test_a_late_prompt_joins_the_batch_in_flight_and_leaves_first(engine, divergent_llama, tiny_tokenizer):
    long_params = SamplingParams(max_new_tokens=24)
    short_params = SamplingParams(max_new_tokens=3)
    order = []

    async def long_call():
        [completion] = await engine.generate([PROMPTS[0]], long_params)
        order.append("long")
        return completion

    async def late_short_call():
        while len(engine.batch_sizes) < 3:  # the long prompt is decoding
            await asyncio.sleep(0.001)
        [completion] = await engine.generate([PROMPTS[2]], short_params)
        order.append("short")
        return completion

    async def main():
        results = await asyncio.gather(long_call(), late_short_call())
        await engine.close()
        return results

    long_completion, short_completion = asyncio.run(main())
    assert order == ["short", "long"]
    assert engine.batch_sizes[:2] == [1, 1] and 2 in engine.batch_sizes  # joined mid-flight, shared steps
    direct = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES)
    for prompt, params, completion in ((PROMPTS[0], long_params, long_completion),
                                       (PROMPTS[2], short_params, short_completion)):
        [expected] = direct.generate([prompt], [decode_params(params, 0)])
        assert completion.text == expected.text and completion.completion_tokens == len(expected.token_ids)


def test_a_multi_prompt_call_returns_completions_in_order(engine, divergent_llama, tiny_tokenizer):
    params = SamplingParams(max_new_tokens=5, temperature=0.7, seed=5)
    completions = asyncio.run(engine.generate(PROMPTS[:3], params))
    direct = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES)
    expected = direct.generate(PROMPTS[:3], [decode_params(params, i) for i in range(3)])
    assert [c.text for c in completions] == [e.text for e in expected]


def test_cache_keys_reuse_the_prefix(engine, divergent_llama, tiny_tokenizer):
    params = SamplingParams(max_new_tokens=5)

    async def steps():
        [first] = await engine.generate([PROMPTS[0]], params, cache_keys=["traj-1"])
        follow_up = PROMPTS[0] + first.text + " Observation: ok"
        [second] = await engine.generate([follow_up], params, cache_keys=["traj-1"])
        return follow_up, second

    follow_up, second = asyncio.run(steps())
    assert engine.generator.prefix_cache.reused_tokens > 0
    cold = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=BASES)
    [expected] = cold.generate([follow_up], max_new_tokens=5)
    assert second.text == expected.text


def test_a_bad_prompt_fails_only_its_own_call(engine):
    async def main():
        return await asyncio.gather(
            engine.generate([""], SamplingParams(max_new_tokens=2)),
            engine.generate([PROMPTS[0]], SamplingParams(max_new_tokens=2)),
            return_exceptions=True,
        )

    bad, good = asyncio.run(main())
    assert isinstance(bad, ValueError) and "empty prompt" in str(bad)
    assert good[0].completion_tokens >= 1


def test_the_event_loop_stays_live_during_a_forward(engine, monkeypatch):
    """Each decoder step waits until the event loop has seen it running: if a step ran on the loop's own thread,
    the loop could never answer and the step would record a timeout instead."""
    import threading

    from buckets.generation import ContinuousDecoder

    in_step, seen = threading.Event(), threading.Event()
    answered = []
    real_step = ContinuousDecoder.step

    def watched_step(decoder, *args, **kwargs):
        in_step.set()
        answered.append(seen.wait(timeout=5))
        in_step.clear()
        seen.clear()
        return real_step(decoder, *args, **kwargs)

    monkeypatch.setattr(ContinuousDecoder, "step", watched_step)

    async def main():
        task = asyncio.ensure_future(engine.generate([PROMPTS[0]] * 4, SamplingParams(max_new_tokens=16)))
        while not task.done():
            if in_step.is_set():
                seen.set()
            await asyncio.sleep(0)
        return await task

    completions = asyncio.run(main())
    assert len(completions) == 4 and answered and all(answered)


def test_engine_survives_a_new_event_loop_after_close(engine):
    first = asyncio.run(engine.generate([PROMPTS[1]], SamplingParams(max_new_tokens=3)))
    asyncio.run(engine.close())
    second = asyncio.run(engine.generate([PROMPTS[1]], SamplingParams(max_new_tokens=3)))
    assert first[0].text == second[0].text


def test_close_ends_the_torch_thread_and_a_later_call_starts_a_new_one(engine):
    # An idle engine's thread (and its OpenMP team) left alive slowed the next engine on 2 cores by 1.7x.
    async def one_call_then_close():
        await engine.generate([PROMPTS[1]], SamplingParams(max_new_tokens=2))
        threads = list(engine._torch_thread._threads)
        assert threads and all(t.is_alive() and t.name.startswith("hf-engine-torch") for t in threads)
        await engine.close()
        return threads

    threads = asyncio.run(one_call_then_close())
    assert engine._torch_thread is None and not any(t.is_alive() for t in threads)
    assert asyncio.run(engine.generate([PROMPTS[1]], SamplingParams(max_new_tokens=2)))[0].completion_tokens == 2
    assert engine._torch_thread is not None
    asyncio.run(engine.close())


def test_unknown_model_argument_is_a_user_error(divergent_llama, tiny_tokenizer):
    with pytest.raises(UserError, match="unknown argument.*max_batch"):
        construct(HFEngine, "--model hf", divergent_llama, tiny_tokenizer, max_batch=3)
    engine = HFEngine(divergent_llama, tiny_tokenizer, max_batch_size="2", return_weights="false")
    assert engine.max_batch_size == 2 and engine.return_weights is False


# -- ScriptedEngine --------------------------------------------------------------------------------


def test_scripted_replies_in_order_with_stop_and_length():
    engine = ScriptedEngine(["Thought: a\nAction: Finish", "one two three four five"])
    assert isinstance(engine, Engine)
    [first] = asyncio.run(engine.generate(["p1"], SamplingParams(stop=("\nAction",)), cache_keys=["t"]))
    [second] = asyncio.run(engine.generate(["p2"], SamplingParams(max_new_tokens=3)))
    assert (first.text, first.finish_reason) == ("Thought: a", "stop")
    assert (second.text, second.finish_reason, second.completion_tokens) == ("one two three", "length", 3)
    assert [(c.prompt, c.cache_key) for c in engine.calls] == [("p1", "t"), ("p2", None)]
    with pytest.raises(RuntimeError, match="ran out of replies after 2"):
        asyncio.run(engine.generate(["p3"], SamplingParams()))


def test_scripted_function_replies_and_defaults():
    async def reply(prompt, params):
        return prompt.upper()

    engine = ScriptedEngine(reply, bucket_spec=BucketSpec(bases=(1.0, 2.0)))
    completions = asyncio.run(engine.generate(["ab", "cd e"], SamplingParams()))
    assert [c.text for c in completions] == ["AB", "CD E"]
    assert completions[1].bucket_weights == [[0.5, 0.5], [0.5, 0.5]]
    default = ScriptedEngine()
    texts = [asyncio.run(default.generate(["x"], SamplingParams()))[0].text for _ in range(2)]
    assert texts == [DEFAULT_REPLY, DEFAULT_REPLY]


def test_buckets_on_a_non_llama_model_is_a_user_error(tiny_tokenizer):
    from transformers import AutoConfig, AutoModelForCausalLM

    gpt2 = AutoModelForCausalLM.from_config(AutoConfig.for_model("gpt2", n_layer=1, n_embd=32, n_head=2,
                                                                 vocab_size=len(tiny_tokenizer)))
    with pytest.raises(UserError, match="--buckets: .*Llama-architecture"):
        HFEngine(gpt2, tiny_tokenizer, BucketSpec(bases=BASES))
    assert HFEngine(gpt2, tiny_tokenizer).generator.plain


def test_a_failing_step_fails_every_caller_in_flight_and_the_engine_keeps_serving(engine, monkeypatch):
    real_forward = engine.generator.forward
    calls = {"n": 0}

    def flaky_forward(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("device lost")
        return real_forward(*args, **kwargs)

    monkeypatch.setattr(engine.generator, "forward", flaky_forward)

    async def main():
        failed = await asyncio.gather(
            engine.generate([PROMPTS[0]], SamplingParams(max_new_tokens=12)),
            engine.generate([PROMPTS[1]], SamplingParams(max_new_tokens=12)),
            return_exceptions=True,
        )
        after = await engine.generate([PROMPTS[2]], SamplingParams(max_new_tokens=2))
        await engine.close()
        return failed, after

    failed, after = asyncio.run(main())
    assert all(isinstance(error, RuntimeError) and "device lost" in str(error) for error in failed)
    assert after[0].completion_tokens == 2


def test_prompt_truncation_keeps_the_last_tokens_as_stabletoolbench_does(divergent_llama, tiny_tokenizer):
    """`truncate_prompt_tokens` (upstream's HF client: 7160): the model sees only the prompt's last N ids."""
    engine = HFEngine(divergent_llama, tiny_tokenizer)
    prompt = PROMPTS[2]
    ids = engine.generator.encode(prompt)
    assert len(ids) > 4

    async def main():
        [cut] = await engine.generate([prompt], SamplingParams(max_new_tokens=5, truncate_prompt_tokens=4))
        [tail] = await engine.generate([ids[-4:]], SamplingParams(max_new_tokens=5))
        [whole] = await engine.generate([prompt], SamplingParams(max_new_tokens=5, truncate_prompt_tokens=len(ids)))
        await engine.close()
        return cut, tail, whole

    cut, tail, whole = asyncio.run(main())
    assert cut.prompt_tokens == 4 and (cut.text, cut.completion_tokens) == (tail.text, tail.completion_tokens)
    assert whole.prompt_tokens == len(ids)


def test_an_eos_first_token_continues_when_asked_as_upstreams_force_generate(divergent_llama, tiny_tokenizer):
    """Upstream's HF client ignores an EOS as the first generated token (`force_generate`): it stays in the
    context, is not shown in the text, and generation goes on. Here the model's greedy first token plays EOS."""
    generator = BucketedGenerator(divergent_llama, tiny_tokenizer)
    [first] = generator.generate([PROMPTS[1]], [decode_params(SamplingParams(max_new_tokens=6), 0)])
    generator.eos_ids = {first.token_ids[0]}
    [stops] = generator.generate([PROMPTS[1]], [decode_params(SamplingParams(max_new_tokens=6), 0)])
    [goes_on] = generator.generate([PROMPTS[1]], [decode_params(SamplingParams(max_new_tokens=6, min_new_tokens=1), 0)])
    assert (stops.finish_reason, stops.text, len(stops.token_ids)) == ("stop", "", 1)
    assert goes_on.token_ids[:2] == first.token_ids[:2] and len(goes_on.token_ids) >= 2
    assert goes_on.text == generator.decode(goes_on.token_ids)
