"""Constrained decoding of ReAct steps (`decoding.constrain`).

- The grammar (`reasoning.action_grammar`) accepts every expert step of the committed LocalToolBench
  trajectories and rejects unknown functions, undeclared or missing parameters and loose JSON layout.
- The mask (`buckets.grammar`) allows exactly the tokens a matcher can consume, checked token by token.
- The generator keeps a constrained prompt inside its grammar, plain and with buckets, greedy and sampled,
  ends it with EOS once the grammar is complete, and leaves an unconstrained neighbour in the batch as it
  would decode alone.
- The runner passes the grammar of each call's functions to the engine; bad settings are clear errors.
"""

import asyncio
import json
from pathlib import Path

import pytest
from conftest import build_tiny_llama

from buckets.generation import BucketedGenerator, DecodeParams
from buckets.grammar import GrammarError, GrammarTokenizer, allocate_bitmask, mask_logits, unpack_bitmask
from reasoning.action_grammar import arguments_schema, react_action_grammar
from reasoning.parser import ParsedStep, parse_react_output
from toolbench_eval.benchmark.schemas import FINISH_FUNCTION
from toolbench_eval.engines.base import SamplingParams
from toolbench_eval.engines.scripted import ScriptedEngine
from toolbench_eval.errors import UserError
from toolbench_eval.runner.adapters import EngineModelClient, toolllama_renderer
from toolbench_eval.runner.config import RunConfig

TRAJECTORIES = Path(__file__).resolve().parents[1] / "data" / "localtoolbench" / "train" / "trajectories.jsonl"

WEATHER = {"name": "current_weather_for_meteo", "parameters": {
    "type": "object",
    "properties": {"city": {"type": "string"}, "units": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city", "days"], "optional": ["units"]}}
FUNCTIONS = [WEATHER, {"name": "ping_for_meteo", "parameters": {"type": "object", "properties": {}}},
             FINISH_FUNCTION]


@pytest.fixture(scope="module")
def grammar_tokenizer(tiny_tokenizer):
    return GrammarTokenizer(tiny_tokenizer, len(tiny_tokenizer), [tiny_tokenizer.eos_token_id])


def accepts(grammar_tokenizer, tokenizer, grammar: str, text: str) -> bool:
    """Whether `text` is a complete sentence of `grammar` (token by token, as the generator feeds it)."""
    matcher = grammar_tokenizer.matcher(grammar)
    try:
        for token in tokenizer(text, add_special_tokens=False)["input_ids"]:
            matcher.advance(token)
    except GrammarError:
        return False
    return matcher._matcher.is_accepting()


def step(name: str, arguments: str, thought: str = "I'll check the weather.") -> str:
    return f"Thought: {thought}\nAction: {name}\nAction Input: {arguments}"


def test_off_means_no_grammar_and_unknown_levels_are_refused():
    assert react_action_grammar(FUNCTIONS, "off") is None
    with pytest.raises(ValueError, match="not one of"):
        react_action_grammar(FUNCTIONS, "strict")
    with pytest.raises(ValueError, match="at least one named function"):
        react_action_grammar([{"description": "nameless"}], "names")


def test_arguments_schema_keeps_declared_keys_required_ones_and_enums_only():
    schema = arguments_schema(WEATHER)
    assert list(schema["properties"]) == ["city", "units", "days"]
    assert schema["required"] == ["city", "days"] and schema["additionalProperties"] is False
    assert schema["properties"]["days"] == {}  # declared types are not enforced
    finish = arguments_schema(FINISH_FUNCTION)["properties"]["return_type"]
    assert finish == {"enum": ["give_answer", "give_up_and_restart"]}


@pytest.mark.parametrize(("text", "level", "expected"), [
    (step("current_weather_for_meteo", '{"city": "Oslo", "days": 2}'), "arguments", True),
    (step("current_weather_for_meteo", '{"city": "Oslo", "units": "metric", "days": 2}'), "arguments", True),
    (step("ping_for_meteo", "{}"), "arguments", True),
    (step("Finish", '{"return_type": "give_answer", "final_answer": "It is \\"cold\\"\\nin Oslo."}'),
     "arguments", True),
    (step("current_weather_for_meteo", '{"city": "Oslo"}'), "arguments", False),  # required days missing
    (step("current_weather_for_meteo", '{"city": "Oslo", "days": 2, "lang": "en"}'), "arguments", False),
    (step("current_weather_for_meteo", '{"days": 2, "city": "Oslo"}'), "arguments", False),  # declared order
    (step("Finish", '{"return_type": "give_answer_now"}'), "arguments", False),  # outside the enum
    (step("current_weather_for_meteo", '{"city":"Oslo","days":2}'), "arguments", False),  # json.dumps layout
    (step("weather_for_meteo", '{"city": "Oslo"}'), "names", False),  # not a listed function
    (step("current_weather_for_meteo", '{"lang": "en"}'), "names", True),  # names: any object
    (step("current_weather_for_meteo", '"Oslo"'), "names", False),
    ("Thought: two\nlines\nAction: ping_for_meteo\nAction Input: {}", "names", False),
    ("Action: ping_for_meteo\nAction Input: {}", "names", False),  # the thought line is required
])
def test_grammar_accepts_exactly_well_formed_steps(grammar_tokenizer, tiny_tokenizer, text, level, expected):
    grammar = react_action_grammar(FUNCTIONS, level)
    assert accepts(grammar_tokenizer, tiny_tokenizer, grammar, text) is expected


def declared_call(function: dict, arguments: dict) -> bool:
    """A call that names only declared parameters, in declared order, required ones included."""
    declared = list(function["parameters"]["properties"])
    required = function["parameters"].get("required", [])
    return list(arguments) == [key for key in declared if key in arguments] and set(required) <= set(arguments)


def test_expert_steps_of_the_committed_trajectories_are_accepted_unless_the_api_must_reject_them(
        grammar_tokenizer, tiny_tokenizer):
    """The grammar is the format ToolSmol is trained on. The trajectories also teach recovery from
    deliberately bad calls (a misspelt or missing parameter): exactly those are refused at `arguments`."""
    outcomes = {True: 0, False: 0}
    with TRAJECTORIES.open() as lines:
        for _, line in zip(range(120), lines):
            conversation = json.loads(line)
            functions = {function["name"]: function for function in conversation["functions"]}
            grammar = react_action_grammar(conversation["functions"], "arguments")
            for message in conversation["messages"]:
                if message["role"] != "assistant":
                    continue
                call = message["function_call"]
                text = f"{message['content']}\nAction: {call['name']}\nAction Input: {call['arguments']}"
                expected = declared_call(functions[call["name"]], json.loads(call["arguments"]))
                assert accepts(grammar_tokenizer, tiny_tokenizer, grammar, text) is expected, text
                outcomes[expected] += 1
    assert outcomes[True] > 300 and outcomes[False] > 3, outcomes


def test_mask_allows_exactly_the_tokens_the_matcher_can_take(grammar_tokenizer, tiny_tokenizer):
    import torch

    grammar = react_action_grammar(FUNCTIONS, "arguments")
    vocab = len(tiny_tokenizer)
    # Where the grammar forces text (the opening "Thought: "), llguidance allows only its canonical
    # first token, a subset of what the matcher would take; elsewhere the two sets are equal.
    for prefix, exact in (("", False), ("Thought: ok", True), ("Thought: ok\nAction: ", True),
                          ("Thought: ok\nAction: current", True),
                          ('Thought: ok\nAction: current_weather_for_meteo\nAction Input: {"city": "Oslo"', True)):
        matcher = grammar_tokenizer.matcher(grammar)
        for token in tiny_tokenizer(prefix, add_special_tokens=False)["input_ids"]:
            matcher.advance(token)
        logits = torch.zeros(1, vocab)
        mask_logits(logits, [matcher])
        allowed = set(torch.nonzero(logits[0] == 0).flatten().tolist())
        possible = {token for token in range(vocab)
                    if matcher._matcher.validate_tokens([token]) == 1}
        assert allowed and allowed <= possible and (allowed == possible or not exact), prefix
        if prefix == "Thought: ok":
            assert len(allowed) > 100  # in the thought, nearly anything goes
    bitmask = allocate_bitmask(1, 40)
    bitmask[0, 0] = 0b1011
    bitmask[0, 1] = -1 << 31  # the sign bit is token 63
    assert torch.nonzero(unpack_bitmask(bitmask, 64)[0]).flatten().tolist() == [0, 1, 3, 63]


def test_a_grammar_is_compiled_once_and_every_prompt_gets_its_own_matcher(tiny_tokenizer, monkeypatch):
    import llguidance

    compiled = []
    real = llguidance.LLMatcher

    class CountingMatcher:
        grammar_from_lark = staticmethod(real.grammar_from_lark)

        def __new__(cls, *args, **kwargs):
            compiled.append(args[1])
            return real(*args, **kwargs)

    monkeypatch.setattr(llguidance, "LLMatcher", CountingMatcher)
    tokenizer = GrammarTokenizer(tiny_tokenizer, len(tiny_tokenizer), [tiny_tokenizer.eos_token_id])
    grammar = react_action_grammar(FUNCTIONS, "arguments")
    text = step("current_weather_for_meteo", '{"city": "Oslo", "days": 2}')
    assert accepts(tokenizer, tiny_tokenizer, grammar, text)  # a whole completion through one matcher ...
    assert accepts(tokenizer, tiny_tokenizer, grammar, text)  # ... leaves the next one at the start
    assert not accepts(tokenizer, tiny_tokenizer, grammar, step("ping_for_meteo", '{"city": "Oslo"}'))
    assert len(compiled) == 1


TINY_GRAMMAR = 'start: "Action: " ("alpha" | "beta_gamma") "\\n"'


@pytest.mark.parametrize("bases", [None, (10000.0, 17500.0, 25000.0)])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_generator_keeps_a_constrained_prompt_in_its_grammar(tiny_tokenizer, bases, temperature):
    model = build_tiny_llama(tiny_tokenizer, init_range=0.3, seed=1)
    generator = BucketedGenerator(model, tiny_tokenizer, bases=bases, prompt_lookup=3)
    prompts = ["User: which one?\nAssistant:\n", "The quick brown fox"]
    [free] = generator.generate(prompts[1:], [DecodeParams(max_new_tokens=12, ignore_eos=True)])
    constrained = DecodeParams(max_new_tokens=40, temperature=temperature, seed=3, grammar=TINY_GRAMMAR)
    result, neighbour = generator.generate(prompts, [constrained, DecodeParams(max_new_tokens=12, ignore_eos=True)])
    assert result.text in ("Action: alpha\n", "Action: beta_gamma\n")
    assert result.finish_reason == "stop" and result.token_ids[-1] == tiny_tokenizer.eos_token_id
    assert neighbour.token_ids == free.token_ids  # the mask is per row


def test_a_grammar_that_does_not_compile_fails_its_own_call(tiny_tokenizer):
    model = build_tiny_llama(tiny_tokenizer, seed=2)
    generator = BucketedGenerator(model, tiny_tokenizer)
    with pytest.raises(GrammarError, match="does not compile"):
        generator.generate(["x"], [DecodeParams(max_new_tokens=4, grammar="start: undefined_rule")])


def test_client_sends_the_grammar_of_the_calls_functions():
    replies = [step("ping_for_meteo", "{}")]
    engine = ScriptedEngine(replies, repeat_last=True)
    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    for level in ("off", "arguments"):
        client = EngineModelClient(engine, SamplingParams(max_new_tokens=64), toolllama_renderer(), constrain=level)
        output = asyncio.run(client.generate(messages, [{"type": "function", "function": WEATHER}, FINISH_FUNCTION],
                                             trajectory_id="t"))
        assert isinstance(parse_react_output(output.text), ParsedStep)
    off, constrained = (call.params.grammar for call in engine.calls)
    assert off is None
    assert constrained == react_action_grammar([WEATHER, FINISH_FUNCTION], "arguments")


def test_config_names_a_bad_constrain_level():
    with pytest.raises(UserError, match="decoding.constrain"):
        RunConfig.from_mapping({"groups": ["G1_instruction"], "decoding": {"constrain": "json"}})
    config = RunConfig.from_mapping({"groups": ["G1_instruction"], "decoding": {"constrain": "names"}})
    assert config.decoding["constrain"] == "names"


def test_openai_engine_refuses_a_grammar_instead_of_ignoring_it():
    from toolbench_eval.engines.openai import OpenAIEngine

    engine = OpenAIEngine(model="m", base_url="http://127.0.0.1:9", mode="completions")
    with pytest.raises(UserError, match="constrained decoding"):
        engine._request("prompt", SamplingParams(grammar=TINY_GRAMMAR), 0)


def test_grid_axis_names_constrained_runs_and_leaves_other_runs_as_they_were():
    from toolbench_eval.runner.grid import expand_grid

    base = {"groups": ["G1_instruction"], "model_name": "m"}
    [plain] = expand_grid({"base": base, "grid": {"method": ["react"], "buckets": ["none"]}})
    off, constrained = expand_grid({"base": base, "grid": {"method": ["react"], "buckets": ["none"],
                                                           "constrain": [False, "arguments"]}})  # YAML's `off`
    assert (off.name, off.config.decoding) == (plain.name, plain.config.decoding)
    assert "constrain" not in off.config.decoding
    assert constrained.name == "react-nobuckets-constrain-arguments"
    assert constrained.config.model_name == "m-nobuckets-constrain-arguments"
    assert constrained.config.decoding["constrain"] == "arguments"
