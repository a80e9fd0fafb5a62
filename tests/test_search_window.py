"""`auto:N` in a run: the search window measured from the benchmark's prompts, the model's own RoPE, and the
manifest block that records both; a search that stops is a user error that says what would work."""

import json

import pytest

from buckets.search import window_for_context
from toolbench_eval.errors import UserError
from toolbench_eval.reference_models import REFERENCE_CONFIGS, model_config, reference_config
from toolbench_eval.runner.build import load_groups, resolve_buckets
from toolbench_eval.runner.config import RunConfig
from toolbench_eval.runner.search_window import first_prompt_tokens, percentile, window_from_prompts
from toolbench_eval.tokenizers import load_tokenizer


def test_percentile_is_an_observed_value():
    lengths = list(range(1, 101))
    assert percentile(lengths, 95) == 95 and percentile(lengths, 100) == 100 and percentile(lengths, 50) == 50
    assert percentile([5, 1, 3], 95) == 5
    with pytest.raises(ValueError):
        percentile([], 95)


def test_window_rule_p95_plus_growth_capped_at_the_context():
    lengths = [1000] * 19 + [3000]  # p95 is the 19th of 20: 1000
    found = window_from_prompts(lengths, max_tokens=32768)
    assert found.source["context_tokens"] == 1000 + 2048
    assert found.window == window_for_context(3048)
    assert found.source["prompt_tokens"] == {"queries": 20, "median": 1000, "p95": 1000, "max": 3000}
    capped = window_from_prompts(lengths, max_tokens=2048)
    assert capped.source["context_tokens"] == 2048 and capped.window == window_for_context(2048)
    longer = window_from_prompts([5000], max_tokens=4096, growth_tokens=0)  # prompts past the context count
    assert longer.source["context_tokens"] == 5000
    assert window_from_prompts(lengths, max_tokens=8192, prompt_percentile=100, growth_tokens=0).window == \
        window_for_context(3000)
    assert window_from_prompts(lengths, max_tokens=8192, position_scale=2).window == window_for_context(3048, 2)
    for bad in ({"prompt_percentile": 0}, {"growth_tokens": -1}, {"growth_tokens": 1.5}):
        with pytest.raises(UserError):
            window_from_prompts(lengths, max_tokens=4096, **bad)
    with pytest.raises(UserError, match="no queries"):
        window_from_prompts([], max_tokens=4096)


def run_config(**bucket_search):
    return RunConfig.from_mapping({"buckets": "auto:6", "benchmark": "localtoolbench", "groups": ["G1_instruction"],
                                   "bucket_search": bucket_search})


@pytest.fixture(scope="module")
def prompts(tiny_tokenizer):
    """The G1_instruction queries of LocalToolBench and their first-prompt token counts (tiny tokenizer)."""
    config = run_config()
    groups = load_groups(config)
    lengths, _ = first_prompt_tokens(groups, tiny_tokenizer, config.eval_protocol)
    return groups, lengths


def test_auto_searches_the_window_of_the_runs_prompts_with_the_models_rope(prompts, tiny_tokenizer):
    groups, lengths = prompts
    spec, block = resolve_buckets(run_config(), reference_config("llama-3.1-8b"), groups=groups,
                                  tokenizer=tiny_tokenizer)
    block = json.loads(json.dumps(block))  # what the manifest stores
    source = block["search"]["window_from"]
    p95 = percentile(lengths, 95)
    assert source["prompt_tokens"] == {"queries": 60, "median": percentile(lengths, 50), "p95": p95,
                                       "max": max(lengths)}
    assert source["context_tokens"] == p95 + 2048 and "p95" in source["rule"]
    assert block["search"]["window"] == list(window_for_context(p95 + 2048))
    assert block["search"]["rope"]["rope_type"] == "llama3"
    assert block["model_rope"]["rope_scaling"]["factor"] == 8.0 and block["model_rope"]["max_tokens"] == 131072
    assert spec.n == 6 and spec.bases[0] == 500000 and block["bases"] == list(spec.bases)


def test_bucket_search_settings_change_the_rule_or_replace_it(prompts, tiny_tokenizer):
    groups, lengths = prompts
    qwen = reference_config("qwen2.5-7b")
    _, block = resolve_buckets(run_config(growth_tokens=0, prompt_percentile=50), qwen, groups=groups,
                               tokenizer=tiny_tokenizer)
    assert block["search"]["window_from"]["context_tokens"] == percentile(lengths, 50)
    _, block = resolve_buckets(run_config(window=[1000, 4090]), qwen, groups=groups, tokenizer=tiny_tokenizer)
    assert tuple(block["search"]["window"]) == (1000, 4090) and "config" in block["search"]["window_from"]["rule"]
    with pytest.raises(UserError, match=r"unknown key\(s\) \['windows'\]"):
        resolve_buckets(run_config(windows=[1, 2]), qwen, groups=groups, tokenizer=tiny_tokenizer)


def test_a_named_tokenizer_counts_prompts_for_an_engine_without_one(prompts, tiny_tokenizer, tmp_path):
    groups, _ = prompts
    tiny_tokenizer.save_pretrained(tmp_path / "tok")
    facts = {"model_base": 10000, "head_dim": 128, "max_tokens": 32768}
    scripted = RunConfig.from_mapping({"buckets": "auto:2", "model": "scripted", "benchmark": "localtoolbench",
                                       "groups": ["G1_instruction"], "bucket_search": facts})
    _, block = resolve_buckets(scripted, None, groups=groups)
    assert "no tokenizer" in block["search"]["window_from"]["rule"]
    assert tuple(block["search"]["window"]) == window_for_context(32768)
    named = RunConfig.from_mapping({**scripted.as_dict(), "bucket_search": {**facts, "tokenizer": str(tmp_path / "tok")}})
    _, block = resolve_buckets(named, None, groups=groups)
    reloaded, _ = first_prompt_tokens(groups, load_tokenizer(tmp_path / "tok"), named.eval_protocol)
    assert block["search"]["window_from"]["prompt_tokens"]["p95"] == percentile(reloaded, 95)
    assert block["search"]["window_from"]["tokenizer"] == str(tmp_path / "tok")
    assert "rope" not in block["search"]  # no model: the plain frequencies of the facts given


def test_a_search_that_stops_says_what_would_complete_it(prompts, tiny_tokenizer):
    groups, _ = prompts
    with pytest.raises(UserError) as caught:
        resolve_buckets(run_config(window=[1192, 4875]), reference_config("mistral-7b-v0.1"), groups=groups,
                        tokenizer=tiny_tokenizer)
    message = str(caught.value)
    assert message.startswith("--buckets auto:6: the base search found 3 of 6 bases")
    assert "What the bases found cover" in message and "cannot be covered by this set" in message
    assert "bucket_search: {window: [" in message and "bucket_search: {step: 250}" in message
    assert "--buckets 10000,23500,20500" in message and "--buckets auto:3" in message


@pytest.mark.parametrize("name", list(REFERENCE_CONFIGS))
@pytest.mark.parametrize("context", [2048, 4096, 8192])
def test_reference_configs_answer_auto6_for_toolbench_sized_windows(name, context):
    # Every reference model gets an answer for windows of ToolBench prompt sizes: a set of 6, or a stop that
    # names settings that were tried and work (the times are in results/buckets/reference_models.md).
    config = run_config(window=list(window_for_context(context)))
    try:
        spec, _ = resolve_buckets(config, reference_config(name))
    except UserError as error:
        assert "Settings that complete the search (each tried)" in str(error)
    else:
        assert spec.n == 6 and len(set(spec.bases)) == 6


def test_model_config_reads_a_checkpoint_folder_or_refuses(tmp_path):
    reference_config("qwen2.5-7b").save_pretrained(tmp_path)
    config = model_config(tmp_path / "config.json")
    assert config.model_type == "qwen2" and config.max_position_embeddings == 32768
    assert model_config(tmp_path).hidden_size == 3584
    with pytest.raises(UserError, match="neither a reference model"):
        model_config(tmp_path / "missing")
    with pytest.raises(UserError, match="unknown reference model"):
        reference_config("gpt-5")


def test_docstring_examples_run():
    import doctest

    import toolbench_eval.reference_models
    import toolbench_eval.runner.search_window

    for module in (toolbench_eval.runner.search_window, toolbench_eval.reference_models):
        outcome = doctest.testmod(module)
        assert outcome.attempted > 0 and outcome.failed == 0, module.__name__


def test_a_vllm_run_reads_config_and_tokenizer_from_the_checkpoint_for_auto(tmp_path, tiny_llama, tiny_tokenizer):
    from toolbench_eval.runner.execute import model_config_only

    model = tiny_llama(rope_theta=20000.0)
    model.save_pretrained(tmp_path / "m")
    tiny_tokenizer.save_pretrained(tmp_path / "m")
    vllm = RunConfig(model="vllm", model_args={"pretrained": str(tmp_path / "m")}, buckets="auto:3")
    config, tokenizer = model_config_only(vllm)
    assert config.model_type == "llama" and config.rope_parameters["rope_theta"] == 20000.0
    assert tokenizer("hello")["input_ids"] == tiny_tokenizer("hello")["input_ids"]  # prompts are counted with it
    assert model_config_only(RunConfig(model="scripted", buckets="auto:3")) == (None, None)
    assert model_config_only(RunConfig(model="vllm", model_args=vllm.model_args, buckets="1e4,2e4")) == (None, None)
