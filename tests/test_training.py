"""The SFT recipe: assistant-only labels at token level, loss goes down, resume continues identically."""

from __future__ import annotations

import json

import pytest
import torch

from toolbench_eval.training.data import conversation_from_messages, tokenize_conversation
from toolbench_eval.training.sft import Recipe, train

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

ASSISTANT_1 = 'Thought: I should look up the weather.\nAction: current_for_weather\nAction Input: {"city": "Oslo"}'
ASSISTANT_2 = 'Thought: Done.\nAction: Finish\nAction Input: {"return_type": "give_answer", "final_answer": "4 C"}'
MESSAGES = [
    {"role": "system", "content": "You are AutoGPT."},
    {"role": "user", "content": "\nWhat is the weather in Oslo?\nBegin!\n"},
    {"role": "assistant", "content": "I should look up the weather.",
     "function_call": {"name": "current_for_weather", "arguments": '{"city": "Oslo"}'}},
    {"role": "function", "name": "current_for_weather", "content": '{"error": "", "response": "4 C"}'},
    {"role": "assistant", "content": "Thought: Done.",
     "function_call": {"name": "Finish", "arguments": '{"return_type": "give_answer", "final_answer": "4 C"}'}},
]


def make_tokenizer():
    corpus = [ASSISTANT_1, ASSISTANT_2, "System: User: Function: Assistant:\n weather Oslo Begin!"] * 4
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(corpus, vocab_size=400, min_frequency=1, special_tokens=["<eos>", "<pad>"])
    return transformers.PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<eos>", pad_token="<pad>")


def make_model(vocab_size: int, seed: int = 0):
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=1024,
    )
    return transformers.LlamaForCausalLM(config)


def test_assistant_message_becomes_react_text():
    conversation = conversation_from_messages("q1", MESSAGES)
    roles = [role for role, _ in conversation.turns]
    assert roles == ["system", "user", "assistant", "function", "assistant"]
    assert conversation.turns[2][1] == ASSISTANT_1
    assert conversation.turns[4][1] == ASSISTANT_2


def test_labels_cover_exactly_the_assistant_texts_and_their_stops():
    tokenizer = make_tokenizer()
    example = tokenize_conversation(conversation_from_messages("q1", MESSAGES), tokenizer, max_length=4096)
    ids, labels = example["input_ids"], example["labels"]
    assert len(ids) == len(labels)
    # Inputs carry no EOS except the final one that ends the sequence.
    assert ids.count(tokenizer.eos_token_id) == 1 and ids[-1] == tokenizer.eos_token_id
    # The labelled tokens, read back, are the two assistant texts, each followed by EOS.
    targets = [label for label in labels if label != -100]
    text = tokenizer.decode(targets, skip_special_tokens=False)
    assert text == ASSISTANT_1 + "<eos>" + ASSISTANT_2 + "<eos>"
    # The first EOS label sits where the input continues with the rendered history (not an EOS input).
    first_stop = labels.index(tokenizer.eos_token_id)
    assert ids[first_stop] != tokenizer.eos_token_id
    # Every assistant prompt (text before its target) ends with the inference cue "Assistant:\n".
    first_target = next(i for i, label in enumerate(labels) if label != -100)
    assert tokenizer.decode(ids[:first_target]).endswith("Assistant:\n")


MISTAKE = 'Thought: I should look up the weather.\nAction: current_for_weather\nAction Input: {"town": "Oslo"}'
WITH_MISTAKE = [
    *MESSAGES[:2],
    {"role": "assistant", "content": "I should look up the weather.", "weight": 0,
     "function_call": {"name": "current_for_weather", "arguments": '{"town": "Oslo"}'}},
    {"role": "function", "name": "current_for_weather", "content": '{"error": "", "response": "no town"}'},
    *MESSAGES[2:],
]


def test_a_weight_0_message_is_context_without_a_target():
    tokenizer = make_tokenizer()
    conversation = conversation_from_messages("q1", WITH_MISTAKE)
    assert conversation.untrained == {2}
    example = tokenize_conversation(conversation, tokenizer, max_length=4096)
    targets = [label for label in example["labels"] if label != -100]
    # neither the mistaken call nor a stop after it is a target; the rest is as without it
    assert tokenizer.decode(targets, skip_special_tokens=False) == ASSISTANT_1 + "<eos>" + ASSISTANT_2 + "<eos>"
    assert MISTAKE in tokenizer.decode(example["input_ids"])  # still in the context

    everything = tokenize_conversation(conversation_from_messages("q1", WITH_MISTAKE, honour_weights=False),
                                       tokenizer, max_length=4096)
    assert everything["input_ids"] == example["input_ids"]
    targets = [label for label in everything["labels"] if label != -100]
    assert tokenizer.decode(targets, skip_special_tokens=False) == \
        MISTAKE + "<eos>" + ASSISTANT_1 + "<eos>" + ASSISTANT_2 + "<eos>"


def test_a_weight_other_than_0_or_1_is_refused():
    with pytest.raises(ValueError, match="weight must be 0 or 1"):
        conversation_from_messages("q1", [*MESSAGES[:2], {**MESSAGES[2], "weight": 0.5}])


def test_inference_prompt_is_a_prefix_of_the_training_text():
    from reasoning.prompts import render_toolllama_prompt

    tokenizer = make_tokenizer()
    example = tokenize_conversation(conversation_from_messages("q1", MESSAGES), tokenizer, max_length=4096)
    full_text = tokenizer.decode(example["input_ids"][:-1])
    history = [{"role": m["role"], "content": c} for m, (_, c) in
               zip(MESSAGES[:4], conversation_from_messages("q1", MESSAGES).turns[:4])]
    assert full_text.startswith(render_toolllama_prompt(history))


def _write_data(tmp_path, n=6):
    path = tmp_path / "trajectories.jsonl"
    with path.open("w") as handle:
        for i in range(n):
            handle.write(json.dumps({"query_id": str(i), "messages": MESSAGES}) + "\n")
    return path


def _lora_state(out_dir):
    from safetensors.torch import load_file

    return load_file(str(out_dir / "adapter_model.safetensors"))


def _mean_target_loss(model, tokenizer, path):
    example = tokenize_conversation(conversation_from_messages("q", MESSAGES), tokenizer, 4096)
    with torch.no_grad():
        output = model(input_ids=torch.tensor([example["input_ids"]]), labels=torch.tensor([example["labels"]]))
    return output.loss.item()


def test_a_few_steps_reduce_the_loss(tmp_path):
    tokenizer = make_tokenizer()
    model = make_model(len(tokenizer))
    data = _write_data(tmp_path)
    with data.open("a") as handle:  # one more conversation, with a mistake that is not trained on
        handle.write(json.dumps({"query_id": "m", "messages": WITH_MISTAKE}) + "\n")
    before = _mean_target_loss(model, tokenizer, data)
    recipe = Recipe(data=str(data), out=str(tmp_path / "out"), method="full", learning_rate=5e-3, max_steps=8,
                    grad_accum=1, save_steps=100, logging_steps=1, warmup_ratio=0.0, device="cpu")
    manifest = train(recipe, model=model, tokenizer=tokenizer)
    after = _mean_target_loss(model, tokenizer, data)
    assert after < before - 0.5
    assert manifest["result"]["global_steps"] == 8
    assert manifest["data"]["examples"] == 7 and manifest["data"]["untrained_turns"] == 1
    assert manifest["recipe"]["honour_weights"] is True
    assert json.loads((tmp_path / "out" / "recipe.json").read_text())["result"]["tokens_seen"] > 0


def _four_lora_steps(data):
    """Recipe fields of a 4-step LoRA run with a checkpoint every 2 steps."""
    return {"data": str(data), "method": "lora", "lora_r": 4, "lora_alpha": 8, "learning_rate": 1e-2,
            "max_steps": 4, "grad_accum": 2, "save_steps": 2, "logging_steps": 1, "device": "cpu",
            "lora_targets": ("q_proj", "v_proj")}


class StopAt(transformers.TrainerCallback):
    """Simulates a crash right after the checkpoint at `step`."""

    def __init__(self, step):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_training_stop = True


@pytest.fixture
def straight_lora_run(tmp_path):
    """An uninterrupted 4-step LoRA run: (tokenizer, recipe fields, its output folder)."""
    pytest.importorskip("peft")
    tokenizer = make_tokenizer()
    common = _four_lora_steps(_write_data(tmp_path))
    straight = tmp_path / "straight"
    train(Recipe(out=str(straight), **common), model=make_model(len(tokenizer)), tokenizer=tokenizer)
    return tokenizer, common, straight


def test_resume_from_a_checkpoint_continues_identically(tmp_path, straight_lora_run):
    tokenizer, common, straight = straight_lora_run
    resumed = tmp_path / "resumed"
    first = train(Recipe(out=str(resumed), **common), model=make_model(len(tokenizer)), tokenizer=tokenizer,
                  callbacks=[StopAt(2)])
    assert first["result"]["global_steps"] == 2
    second = train(Recipe(out=str(resumed), **common), model=make_model(len(tokenizer)), tokenizer=tokenizer)
    assert second["result"]["resumed"] and second["result"]["global_steps"] == 4

    expected, actual = _lora_state(straight), _lora_state(resumed)
    assert expected.keys() == actual.keys() and expected
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=1e-6)


def test_save_dtype_bfloat16_halves_the_adapter_and_keeps_its_values(tmp_path):
    pytest.importorskip("peft")
    tokenizer = make_tokenizer()
    data = _write_data(tmp_path)
    common = {"data": str(data), "method": "lora", "lora_r": 4, "lora_alpha": 8, "learning_rate": 1e-2,
              "max_steps": 1, "grad_accum": 1, "save_steps": 100, "device": "cpu", "seed": 3}
    full, half = tmp_path / "fp32", tmp_path / "bf16"
    train(Recipe(out=str(full), **common), model=make_model(len(tokenizer)), tokenizer=tokenizer)
    manifest = train(Recipe(out=str(half), save_dtype="bfloat16", **common), model=make_model(len(tokenizer)),
                     tokenizer=tokenizer)
    assert manifest["recipe"]["save_dtype"] == "bfloat16"
    expected, actual = _lora_state(full), _lora_state(half)
    assert {t.dtype for t in actual.values()} == {torch.bfloat16}
    for name in expected:
        torch.testing.assert_close(actual[name].float(), expected[name], rtol=1e-2, atol=1e-3)
    size = (half / "adapter_model.safetensors").stat().st_size
    assert size < 0.6 * (full / "adapter_model.safetensors").stat().st_size


def test_stop_at_step_ends_early_on_the_full_schedule(tmp_path, straight_lora_run):
    tokenizer, common, straight = straight_lora_run
    cut = tmp_path / "cut"
    manifest = train(Recipe(out=str(cut), stop_at_step=3, **common), model=make_model(len(tokenizer)),
                     tokenizer=tokenizer)
    assert manifest["result"]["global_steps"] == 3 and (cut / "checkpoints" / "checkpoint-3").is_dir()
    # the first steps are those of the 4-step schedule, not of a 2-step one
    expected = _lora_state(straight / "checkpoints" / "checkpoint-2")
    actual = _lora_state(cut / "checkpoints" / "checkpoint-2")
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=1e-6)
    assert not torch.equal(_lora_state(cut)[next(iter(expected))], _lora_state(straight)[next(iter(expected))])


def test_time_budget_ends_at_a_checkpoint_on_the_full_schedule(tmp_path, straight_lora_run):
    tokenizer, common, straight = straight_lora_run
    cut = tmp_path / "cut"
    manifest = train(Recipe(out=str(cut), max_minutes=0.0, **common), model=make_model(len(tokenizer)),
                     tokenizer=tokenizer)
    result = manifest["result"]
    assert result["global_steps"] == 1 and not result["finished_schedule"]
    assert (cut / "checkpoints" / "checkpoint-1").is_dir()
    # a re-run without the budget resumes there and ends where the uncut run ended
    resumed = train(Recipe(out=str(cut), **common), model=make_model(len(tokenizer)), tokenizer=tokenizer)
    assert resumed["result"]["resumed"] and resumed["result"]["finished_schedule"]
    expected, actual = _lora_state(straight), _lora_state(cut)
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=1e-6)


def test_init_adapter_starts_a_second_stage_from_the_saved_weights(tmp_path, straight_lora_run):
    from toolbench_eval.training.sft import prepare_model

    tokenizer, common, straight = straight_lora_run
    saved = _lora_state(straight)
    model = prepare_model(make_model(len(tokenizer)), Recipe(out=str(tmp_path / "stage2"), init_adapter=str(straight),
                                                              **common))
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(p.dtype == torch.float32 for p in trainable.values())
    # every saved tensor is loaded into a trainable parameter (peft names them with the adapter name)
    for name, tensor in saved.items():
        matches = [p for key, p in trainable.items() if key.replace(".default", "") == name]
        assert len(matches) == 1, name
        torch.testing.assert_close(matches[0].detach(), tensor, rtol=0, atol=0)

    manifest = train(Recipe(out=str(tmp_path / "stage2"), init_adapter=str(straight), **{**common, "max_steps": 1}),
                     model=make_model(len(tokenizer)), tokenizer=tokenizer)
    assert manifest["init_adapter"]["sha256"] and manifest["init_adapter"]["recipe"]["result"]["global_steps"] == 4


def test_init_adapter_of_another_shape_is_refused(tmp_path, straight_lora_run):
    from toolbench_eval.errors import UserError

    tokenizer, common, straight = straight_lora_run
    with pytest.raises(UserError, match=r"r: adapter 4 vs recipe 8"):
        train(Recipe(out=str(tmp_path / "stage2"), init_adapter=str(straight), **{**common, "lora_r": 8}),
              model=make_model(len(tokenizer)), tokenizer=tokenizer)
