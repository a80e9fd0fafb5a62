"""Parts chosen by name (engines, methods, judges) and the one checked constructor behind them; the lm-eval style
flags `--model_args` and `--gen-kwargs`."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest

from reasoning.dfsdt import solve_dfsdt
from reasoning.react import solve_react
from toolbench_eval.cli import build_parser
from toolbench_eval.commands.run import config_from_args
from toolbench_eval.engines.base import SamplingParams
from toolbench_eval.errors import UserError
from toolbench_eval.registry import Registry, arguments_taken, construct
from toolbench_eval.runner import build
from toolbench_eval.runner.adapters import sampling_params
from toolbench_eval.runner.config import ENGINES, METHODS, RunConfig
from toolbench_eval.scoring.cli_options import build_judge
from toolbench_eval.scoring.judges import RuleJudge


@pytest.fixture
def no_model_loads(monkeypatch):
    """Any attempt to load the hf model fails the test: argument errors must come first."""
    monkeypatch.setattr(build, "load_hf_model", lambda config: pytest.fail("the model was loaded"))


def engine_config(engine: str, **model_args) -> RunConfig:
    return RunConfig.from_mapping({"model": engine, "model_args": model_args})


# ---- names ---------------------------------------------------------------------------------------
def test_an_unknown_engine_name_lists_the_valid_ones():
    with pytest.raises(UserError, match="unknown engine 'gpt5'; valid names: hf, vllm, openai, scripted"):
        ENGINES.lookup("gpt5")
    with pytest.raises(UserError, match=r"'gpt5' is not one of \['hf', 'vllm', 'openai', 'scripted'\]"):
        engine_config("gpt5")
    with pytest.raises(SystemExit):  # argparse offers the same names
        build_parser().parse_args(["run", "--model", "gpt5"])


def test_a_name_is_imported_only_when_looked_up():
    table = Registry("widget", {"ok": "toolbench_eval.errors:UserError", "gone": "toolbench_eval.no_such_module:X"})
    assert table.lookup("ok") is UserError
    with pytest.raises(UserError, match="widget 'gone' is not available: cannot import toolbench_eval.no_such_module"):
        table.lookup("gone")


def test_methods_and_judges_resolve_by_name():
    assert METHODS.lookup("react") is solve_react
    assert METHODS.lookup("dfsdt") is METHODS.lookup("dfsdt-retriever") is solve_dfsdt
    # The agent binds the search budget a method takes: DFSDT's width and query count, nothing for ReAct.
    budget = {"width": 3, "max_query_count": 40}
    assert arguments_taken(solve_dfsdt, budget) == budget
    assert arguments_taken(solve_react, budget) == {}
    # The LLM judge's settings are offered to every judge; the rule judge takes none of them.
    assert isinstance(build_judge("rule", model="gpt-x", workers=4, cache_dir=None), RuleJudge)
    with pytest.raises(UserError, match="unknown judge 'vibes'; valid names: rule, llm"):
        build_judge("vibes")


# ---- engine arguments, refused before a model loads ----------------------------------------------
@pytest.mark.parametrize(("model", "args", "known"), [
    ("hf", {"max_batch": 3}, "max_batch_size"),
    ("hf", {"tokenizer": "x"}, "prefix_cache_entries"),  # the runner hands hf its loaded tokenizer
    ("scripted", {"scirpt": "rules.json"}, "script"),
    ("openai", {"base_url": "http://127.0.0.1:1/v1", "max_attempt": 2}, "max_attempts"),
])
def test_an_unknown_engine_argument_is_refused_before_the_model(no_model_loads, tmp_path, model, args, known):
    config = engine_config(model, **args)
    [wrong] = [name for name in args if name != "base_url"]
    for check in (lambda: build.preflight(config, tmp_path / "run"), lambda: build.build_engine(config, None)):
        with pytest.raises(UserError) as raised:
            check()
        message = str(raised.value)
        assert message.startswith(f"--model {model}: unknown argument(s) [{wrong!r}]; known: ")
        assert known in message and "pretrained" in message  # the runner's own arguments are known too


def test_a_key_as_an_engine_argument_is_refused_without_echoing_it(no_model_loads):
    config = engine_config("openai", base_url="http://127.0.0.1:1/v1", api_key="sk-SECRET-42")
    with pytest.raises(UserError, match="environment only") as raised:
        build.build_engine(config, None)
    assert "sk-SECRET-42" not in str(raised.value)


def test_known_engine_arguments_reach_the_engine(no_model_loads, tmp_path):
    script = tmp_path / "rules.json"
    script.write_text('{"rules": [], "default": "Thought: ok"}', encoding="utf-8")
    engine = build.build_engine(engine_config("scripted", script=str(script), tool_format="native"), None)
    [completion] = asyncio.run(engine.generate(["any prompt"], SamplingParams()))
    assert completion.text == "Thought: ok"  # the script's default reply, not the engine's own
    openai = build.build_engine(engine_config("openai", pretrained="m", base_url="http://127.0.0.1:1/v1",
                                              max_attempts=2), None)
    assert (openai.model, openai.max_attempts) == ("m", 2)


def test_the_runner_passes_its_own_arguments_only_to_an_engine_that_takes_them():
    def engine(model, *, bucket_spec=None, dtype="auto", depth=1):
        return model

    config = engine_config("hf", pretrained="p", device="cpu", dtype="float32", depth=2, tool_format="native")
    assert build.engine_arguments(config, engine) == {"dtype": "float32", "depth": 2}
    with pytest.raises(UserError, match=r"unknown argument\(s\) \['model'\]"):  # filled by the runner
        build.engine_arguments(engine_config("hf", model="x"), engine)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed: its own tests run")
def test_vllm_without_vllm_is_a_user_error(no_model_loads, tmp_path):
    config = engine_config("vllm", pretrained="default", bogus=1)
    build.preflight(config, tmp_path / "run")  # vLLM's arguments are checked when its engine is built
    with pytest.raises(UserError, match="engine 'vllm' is not available: .*docs/vllm.md"):
        build.build_engine(config, None)


# ---- construct -----------------------------------------------------------------------------------
def test_construct_checks_before_it_calls():
    calls = []

    def backend(url, *, timeout_s=1.0, strip="truncate"):
        calls.append(url)
        return url

    with pytest.raises(UserError, match=r"thing: unknown argument\(s\) \['timeout'\]; known: strip, timeout_s, url"):
        construct(backend, "thing", url="u", timeout=3)
    with pytest.raises(UserError, match=r"thing: missing argument\(s\) \['url'\]"):
        construct(backend, "thing", strip="filter")
    with pytest.raises(UserError, match=r"unknown argument\(s\) \['url'\]; known: strip, timeout_s"):
        construct(backend, "thing", "u", url="v")  # a positional input is the caller's, not the user's
    assert calls == []
    assert construct(backend, "thing", "u", timeout_s=2) == "u" and calls == ["u"]


# ---- lm-eval style flags -------------------------------------------------------------------------
def run_config(*flags: str) -> RunConfig:
    return config_from_args(build_parser().parse_args(["run", *flags]))


def test_model_args_with_an_underscore_parses_the_same():
    text = "pretrained=default,dtype=float32,max_batch_size=4"
    assert run_config("--model_args", text).model_args == run_config("--model-args", text).model_args
    assert run_config("--model_args", text).model_args["max_batch_size"] == 4


def test_gen_kwargs_reach_the_config_and_the_sampling_params():
    config = run_config("--gen_kwargs", "temperature=0.7,top_p=0.9,max_gen_toks=64,until=STOP,seed=5")
    assert config.seed == 5
    assert {k: config.decoding[k] for k in ("temperature", "top_p", "max_new_tokens")} == {
        "temperature": 0.7, "top_p": 0.9, "max_new_tokens": 64}
    params = sampling_params(config.decoding, seed=1)
    assert (params.temperature, params.top_p, params.max_new_tokens) == (0.7, 0.9, 64) and "STOP" in params.stop
    greedy = run_config("--gen-kwargs", "do_sample=false,max_new_tokens=32", "--max-new-tokens", "16")
    assert greedy.decoding["temperature"] == 0.0 and greedy.decoding["max_new_tokens"] == 16  # the flag wins
    assert run_config("--gen-kwargs", "seed=5", "--seed", "7").seed == 7


@pytest.mark.parametrize(("text", "message"), [
    ("top_k=40", r"unknown key\(s\) \['top_k'\]; known: temperature, top_p, max_gen_toks"),
    ("do_sample=true", "do_sample=True with temperature=None"),
    ("do_sample=false,temperature=0.5", "write do_sample=false for greedy decoding"),
    ("temperature=warm", "temperature='warm' is not a number"),
    ("max_gen_toks=1.5", "max_gen_toks=1.5 is not an integer"),
    ("temperature", "--gen-kwargs: 'temperature' is not key=value"),
])
def test_bad_gen_kwargs_are_refused(text, message):
    with pytest.raises(UserError, match=message):
        run_config("--gen-kwargs", text)
