"""Native function calling for in-process engines (`hf`, `vllm`): the model's chat template renders the
`tools` and the history's calls, a parser per model family reads the generated calls back
(`toolbench_eval/engines/tool_calls.py`). Tiny random Llama with Qwen2.5's real chat template."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest
from conftest import build_tiny_tokenizer
from test_runner_resume import write_setup

from toolbench_eval.benchmark.loader import load_query_file
from toolbench_eval.engines.base import Completion, SamplingParams
from toolbench_eval.engines.hf import HFEngine
from toolbench_eval.engines.tool_calls import (
    assistant_turn,
    detect_family,
    parse_tool_calls,
    render_with_tools,
    template_messages,
)
from toolbench_eval.errors import UserError
from toolbench_eval.runner.agent import Agent
from toolbench_eval.runner.config import RunConfig
from toolbench_eval.tools.registry import make_backend

TEMPLATES = Path(__file__).parent / "fixtures" / "chat_templates"
QWEN_TEMPLATE = (TEMPLATES / "qwen2.5_instruct.jinja").read_text()
TOOLS = [{"type": "function", "function": {"name": "get_word", "description": "a word",
                                           "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]
HISTORY = [
    {"role": "system", "content": "S"},
    {"role": "user", "content": "Q"},
    {"content": None, "refusal": None, "role": "assistant", "tool_calls": [
        {"id": "call_1", "function": {"arguments": '{"q": "x"}', "name": "get_word"}, "type": "function"}]},
    {"role": "tool", "name": "get_word", "content": '{"error": "", "response": "apple"}', "tool_call_id": "call_1"},
]


@pytest.fixture
def qwen_tokenizer():
    tokenizer = build_tiny_tokenizer()  # a fresh one: the session's shared tokenizer keeps no template
    tokenizer.chat_template = QWEN_TEMPLATE
    return tokenizer


def test_the_template_renders_tools_calls_and_responses(qwen_tokenizer):
    prompt = render_with_tools(qwen_tokenizer, HISTORY, TOOLS)
    assert prompt.startswith("<|im_start|>system\nS\n\n# Tools\n")
    assert json.dumps(TOOLS[0]) in prompt or '"name": "get_word"' in prompt
    assert '<tool_call>\n{"name": "get_word", "arguments": {"q": "x"}}\n</tool_call>' in prompt  # args as an object
    assert '<|im_start|>user\n<tool_response>\n{"error": "", "response": "apple"}\n</tool_response><|im_end|>' in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    assert template_messages(HISTORY)[2]["content"] == ""  # templates concatenate content: never None


def test_a_template_without_tools_is_refused():
    tiny_tokenizer = build_tiny_tokenizer()
    tiny_tokenizer.chat_template = ("{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"
                                    "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    with pytest.raises(UserError, match="ignores `tools`"):
        render_with_tools(tiny_tokenizer, HISTORY[:2], TOOLS)
    with pytest.raises(UserError, match="no tool-call format"):
        detect_family(tiny_tokenizer.chat_template)


@pytest.mark.parametrize(("family", "text", "content", "calls"), [
    ("hermes", ('<tool_call>\n{"name": "a", "arguments": {}}\n</tool_call>\n<tool_call>\n{"name": "b", "arguments": '
               '{"x": 1}}\n</tool_call>'), None, [("a", "{}"), ("b", '{"x": 1}')]),
    ("hermes", '<tool_call>\n{"name": "a", "arguments": {"x": 1}}', None, [("a", '{"x": 1}')]),  # no </tool_call>
    ("hermes", "<tool_call>\nnot json\n</tool_call>", "<tool_call>\nnot json\n</tool_call>", []),
    ("llama3_json", '{"name": "a", "parameters": {"q": "é"}}', None, [("a", '{"q": "é"}')]),
    ("llama3_json", "The answer is 42.", "The answer is 42.", []),
    ("mistral", 'Sure.[TOOL_CALLS][{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"y": 2}}]', "Sure.",
     [("a", "{}"), ("b", '{"y": 2}')]),
])
def test_parsers_read_each_familys_calls(family, text, content, calls):
    assert parse_tool_calls(text, family) == (content, calls)


def test_assistant_turn_has_the_openai_message_shape():
    message = assistant_turn('<tool_call>\n{"name": "a", "arguments": {}}\n</tool_call>', "hermes", random.Random(0))
    assert list(message) == ["content", "refusal", "role", "function_call", "tool_calls"]
    [call] = message["tool_calls"]
    assert list(call) == ["id", "function", "type"] and call["id"].startswith("call_") and len(call["id"]) == 13
    assert assistant_turn("plain", "hermes", random.Random(0))["tool_calls"] is None


def test_hf_engine_chat_renders_generates_and_parses(divergent_llama, qwen_tokenizer, monkeypatch):
    engine = HFEngine(divergent_llama, qwen_tokenizer)
    seen = []

    async def scripted(prompts, params, *, cache_keys=None):
        seen.append((prompts[0], params))
        return [Completion(text='Looking.\n<tool_call>\n{"name": "get_word", "arguments": {"q": "y"}}\n</tool_call>',
                           prompt_tokens=50, completion_tokens=20, finish_reason="stop")]

    monkeypatch.setattr(engine, "generate", scripted)
    reply = asyncio.run(engine.chat(HISTORY, TOOLS, SamplingParams(max_new_tokens=32, stop=("\nUser:",))))
    assert reply.message["content"] == "Looking."
    assert reply.message["tool_calls"][0]["function"] == {"arguments": '{"q": "y"}', "name": "get_word"}
    assert (reply.prompt_tokens, reply.completion_tokens) == (50, 20)
    prompt, params = seen[0]
    assert "# Tools" in prompt and params.stop == ()  # the text path's stop strings do not apply


LLAMA3_ROPE = {"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                "high_freq_factor": 4.0, "original_max_position_embeddings": 64}}
TINY_FAMILIES = {  # a tiny random config of each family, with its family's chat template
    "qwen2": ({"model_type": "qwen2"}, "qwen2.5_instruct.jinja"),
    "llama3": (LLAMA3_ROPE, "llama3.1_json.jinja"),
}


@pytest.mark.parametrize("method", ["react", "dfsdt"])
@pytest.mark.parametrize("family", sorted(TINY_FAMILIES))
def test_native_runs_on_tiny_random_qwen2_and_llama3(tmp_path, family, method):
    """Whole ReAct and DFSDT runs with real generation on tiny random Qwen2 and Llama-3 (llama3 RoPE scaling)
    configs with their families' chat templates, constrained to calls (`arguments`) so that turns are calls that
    run: rendering, generation, parsing, tool calls and the answer file, end to end."""
    from conftest import build_tiny_llama

    variant, template = TINY_FAMILIES[family]
    tokenizer = build_tiny_tokenizer()
    model = build_tiny_llama(tokenizer, init_range=0.3, seed=1, **variant)
    setup = write_setup(tmp_path, queries_per_group=1)
    [query] = load_query_file(setup["bench"] / "test_instruction" / "G1_instruction.json", "G1_instruction")
    config = RunConfig.from_mapping({"model": "hf", "groups": ["G1_instruction"], "method": method,
                                     "protocol": "stabletoolbench", "max_query_count": 4,
                                     "model_args": {"pretrained": "tiny", "tool_format": "native"},
                                     "single_chain_max_step": 6,
                                     "decoding": {"max_new_tokens": 200, "constrain": "arguments"}})
    engine = HFEngine(model, tokenizer, chat_template=str(TEMPLATES / template))
    backend = make_backend("cache", cache_dir=str(setup["cache"]))
    agent = Agent(config=config, engine=engine, backend=backend, tools={})  # schemas from the query's api_list

    async def solve():
        try:
            return await agent.solve(query)
        finally:
            await engine.close()

    answer = asyncio.run(solve()).answer
    nodes = answer["trys"][0]["chain"] if method == "react" else list(_walk(answer["tree"]["tree"]))
    actions = [node["description"] for node in nodes if node["node_type"] == "Action"]
    assert actions and set(actions) <= {"get_word_for_word_tool", "Finish"}  # only listed functions
    assert answer["answer_generation"]["total_tokens"] > 2 * answer["answer_generation"]["query_count"]


def _walk(node):
    for child in node.get("children", []):
        yield child
        yield from _walk(child)


FORCED_CALL = '<tool_call>\n{"name": "get_word", "arguments": {"q": "z"}}\n</tool_call>'
FORCED_GRAMMAR = "start: " + json.dumps(FORCED_CALL)


@pytest.mark.parametrize("architecture", ["llama", "qwen2"])
def test_hf_native_turn_with_buckets_and_constrained_decoding(qwen_tokenizer, architecture):
    """A grammar (constrained decoding) forces the tiny random model (Llama, or Qwen2: the architecture Qwen2.5's
    template belongs to) to write a call; with three buckets the engine generates, and the parser turns the
    text into the assistant message's call."""
    from conftest import build_tiny_llama

    from toolbench_eval.engines.base import BucketSpec

    model = build_tiny_llama(qwen_tokenizer, init_range=0.3, seed=1,
                             **({"model_type": "qwen2"} if architecture == "qwen2" else {}))
    assert model.config.model_type == architecture
    engine = HFEngine(model, qwen_tokenizer, BucketSpec(bases=(10000.0, 17500.0, 25000.0)))

    async def turn():
        try:
            return await engine.chat(HISTORY, TOOLS, SamplingParams(max_new_tokens=64, grammar=FORCED_GRAMMAR))
        finally:
            await engine.close()

    reply = asyncio.run(turn())
    assert reply.message["content"] is None
    assert reply.message["tool_calls"][0]["function"] == {"arguments": '{"q": "z"}', "name": "get_word"}
    assert reply.completion_tokens > 5


def test_a_chat_template_file_gives_a_checkpoint_tool_calling(divergent_llama, tmp_path):
    tokenizer = build_tiny_tokenizer()
    engine = HFEngine(divergent_llama, tokenizer, chat_template=str(
        Path(__file__).parent / "fixtures" / "chat_templates" / "qwen2.5_instruct.jinja"))
    assert "# Tools" in render_with_tools(engine.tokenizer, HISTORY[:2], TOOLS)
    with pytest.raises(UserError, match="chat_template=.*cannot read"):
        HFEngine(divergent_llama, build_tiny_tokenizer(), chat_template=str(tmp_path / "missing.jinja"))


@pytest.mark.slow
def test_the_default_model_runs_natively_with_a_tool_template(tmp_path, capsys):
    """ToolSmol's own template (SmolLM2's) has no tools; with Qwen2.5's hermes template it runs natively (it was
    never trained on that format, so this shows the path works, not that it answers)."""
    from toolbench_eval.cli import main

    template = Path(__file__).parent / "fixtures" / "chat_templates" / "qwen2.5_instruct.jinja"
    out = tmp_path / "native-default"
    for method in ("react", "dfsdt"):
        args = ["run", "--benchmark", "localtoolbench", "--groups", "G1_instruction", "--limit", "1", "--method",
                method, "--model", "hf", "--model-args",
                f"pretrained=default,device=cpu,dtype=float32,tool_format=native,chat_template={template}",
                "--max-new-tokens", "48", "--single-chain-max-step", "6", "--max-query-count", "4",
                "--out", str(out / method), "--no-progress"]
        assert main(args) in (0, 1)
        assert len(list((out / method).glob("G1_instruction/*.json"))) == 1
        assert main(["score", str(out / method), "--judge", "rule", "--evaluate-times", "1"]) == 0


FAMILIES = {  # template file -> (family, what the model writes for one call, markers of the rendered history)
    "qwen2.5_instruct.jinja": ("hermes", '<tool_call>\n{"name": "get_word", "arguments": {"q": "z"}}\n</tool_call>',
                               ['{"name": "get_word", "arguments": {"q": "x"}}', "<tool_response>"]),
    "llama3.1_json.jinja": ("llama3_json", '{"name": "get_word", "parameters": {"q": "z"}}',
                            ['{"name": "get_word", "parameters": {"q": "x"}}',
                             '<|start_header_id|>ipython<|end_header_id|>\n\n{"output": ']),
    "mistral_parallel.jinja": ("mistral", '[TOOL_CALLS] [{"name": "get_word", "arguments": {"q": "z"}}]',
                               ["[AVAILABLE_TOOLS]", '[TOOL_CALLS] [{"arguments": {"q": "x"}, "name": "get_word"',
                                "[TOOL_RESULTS]"]),
}


@pytest.mark.parametrize("template", sorted(FAMILIES))
def test_each_family_renders_its_history_and_reads_back_a_forced_call(template):
    """Qwen2.5's template and vLLM's Llama-3.1 JSON and Mistral templates: the family is detected from the
    template, the history's call and tool result render in the family's format, and a call the model is made to
    write (a grammar) comes back as the assistant message's call, through the hf engine with three buckets."""
    from conftest import build_tiny_llama

    from toolbench_eval.engines.base import BucketSpec

    family, written, markers = FAMILIES[template]
    tokenizer = build_tiny_tokenizer()
    engine = HFEngine(build_tiny_llama(tokenizer, init_range=0.3, seed=1), tokenizer,
                      BucketSpec(bases=(10000.0, 17500.0, 25000.0)), chat_template=str(TEMPLATES / template))
    assert detect_family(engine.tokenizer.chat_template) == family
    history = [dict(m) for m in HISTORY]
    history[2] = {**history[2], "tool_calls": [{**history[2]["tool_calls"][0], "id": "call_abcdefgh"}]}
    history[3] = {**history[3], "tool_call_id": "call_abcdefgh"}
    prompt = render_with_tools(engine.tokenizer, history, TOOLS)
    for marker in markers:
        assert marker in prompt, marker

    async def turn():
        try:
            return await engine.chat(history, TOOLS, SamplingParams(max_new_tokens=80,
                                                                    grammar="start: " + json.dumps(written)))
        finally:
            await engine.close()

    reply = asyncio.run(turn())
    assert reply.message["tool_calls"][0]["function"] == {"arguments": '{"q": "z"}', "name": "get_word"}


def test_a_template_that_refuses_the_conversation_says_so():
    tokenizer = build_tiny_tokenizer()
    tokenizer.chat_template = (TEMPLATES / "llama3.1_json.jinja").read_text()
    two_calls = [*HISTORY[:2], {**HISTORY[2], "tool_calls": HISTORY[2]["tool_calls"] * 2}]
    with pytest.raises(UserError, match="refused this conversation: This model only supports single tool-calls"):
        render_with_tools(tokenizer, two_calls, TOOLS)


TWO_TOOLS = [
    {"type": "function", "function": {"name": "get_word", "description": "a word", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}, "lang": {"type": "string"}}, "required": ["q"]}}},
    {"type": "function", "function": {"name": "Finish", "description": "finish", "parameters": {
        "type": "object", "properties": {"return_type": {"type": "string", "enum": ["give_answer",
                                                                                    "give_up_and_restart"]},
                                         "final_answer": {"type": "string"}}, "required": ["return_type"]}}},
]


@pytest.mark.parametrize("template", sorted(FAMILIES))
def test_constrained_native_turns_are_calls_of_listed_functions(template):
    """`decoding.constrain: arguments` with native calls: whatever the random model prefers, each turn is one
    call, in the family's format, of a listed function with only its declared keys and the required ones."""
    from conftest import build_tiny_llama

    tokenizer = build_tiny_tokenizer()
    engine = HFEngine(build_tiny_llama(tokenizer, init_range=0.3, seed=3), tokenizer,
                      chat_template=str(TEMPLATES / template))

    async def turns():
        try:
            return [await engine.chat(HISTORY[:2], TWO_TOOLS, SamplingParams(max_new_tokens=120, seed=seed,
                                                                             temperature=1.0),
                                      constrain="arguments") for seed in range(3)]
        finally:
            await engine.close()

    replies = asyncio.run(turns())
    for reply in replies:
        if reply.message["tool_calls"] is None:  # a free string value ran past the token budget: no whole call
            assert reply.completion_tokens == 120
            continue
        [call] = reply.message["tool_calls"]
        name, arguments = call["function"]["name"], json.loads(call["function"]["arguments"])
        declared = next(t["function"]["parameters"] for t in TWO_TOOLS if t["function"]["name"] == name)
        assert set(arguments) <= set(declared["properties"]) and set(declared["required"]) <= set(arguments)
        if name == "Finish":
            assert arguments["return_type"] in ("give_answer", "give_up_and_restart")
    assert any(reply.message["tool_calls"] for reply in replies)
