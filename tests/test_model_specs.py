"""Model specs that name a Hugging Face repo, resolved offline from a local cache, and `device_map` for the hf engine.

The cache is built in tmp_path with the hub's own layout (``models--Org--Name/{blobs,refs,snapshots}``, snapshot files
symlinked to content-addressed blobs) holding tiny random Llamas saved with `save_pretrained`; HF_HUB_CACHE points at
it. Nothing reaches the network: HF_HUB_OFFLINE is set (conftest) and the resolver only reads the cache.
"""

from __future__ import annotations

import doctest
import hashlib
import os
import shutil
import socket

import pytest
import torch
from conftest import build_tiny_llama

from buckets.generation import BucketedGenerator
from toolbench_eval import hub_cache, models
from toolbench_eval.errors import UserError
from toolbench_eval.hub_cache import RepoSpec, hub_cache_dir, parse_repo_spec
from toolbench_eval.models import check_device_map, load_model, resolve_model_dir
from toolbench_eval.runner import build
from toolbench_eval.runner.config import RunConfig

REPO = "tiny-org/tiny-llama"
MAIN = hashlib.sha1(b"main weights").hexdigest()
SECOND = hashlib.sha1(b"second weights").hexdigest()
BASES = (10000.0, 17500.0, 25000.0)
PROMPTS = ["Thought: I need to call the weather API", "The quick brown fox"]


def cache_snapshot(hub, repo_id: str, commit: str, model, tokenizer, refs=()) -> None:
    """Put `model` + `tokenizer` into `hub` as huggingface_hub stores a downloaded snapshot: the files in `blobs/`
    under their hash, the snapshot folder symlinking to them, `refs/<ref>` holding the commit."""
    repo_folder = hub / ("models--" + repo_id.replace("/", "--"))
    staging = repo_folder / ".staging"
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    snapshot = repo_folder / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo_folder / "blobs").mkdir(exist_ok=True)
    for file in staging.iterdir():
        blob = repo_folder / "blobs" / hashlib.sha256(file.read_bytes()).hexdigest()
        if not blob.exists():
            shutil.move(file, blob)
        (snapshot / file.name).symlink_to(os.path.relpath(blob, snapshot))
    shutil.rmtree(staging)
    for ref in refs:
        (repo_folder / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (repo_folder / "refs" / ref).write_text(commit)  # the hub writes the bare commit, no newline


@pytest.fixture
def hub(tmp_path, monkeypatch, tiny_tokenizer):
    """A hub cache with REPO: `main` -> one tiny Llama, tag `v2` -> another (other weights); HF_HUB_CACHE at it."""
    hub = tmp_path / "hub"
    first = build_tiny_llama(tiny_tokenizer, init_range=0.3, seed=4)
    second = build_tiny_llama(tiny_tokenizer, init_range=0.3, seed=5)
    cache_snapshot(hub, REPO, MAIN, first, tiny_tokenizer, refs=("main",))
    cache_snapshot(hub, REPO, SECOND, second, tiny_tokenizer, refs=("v2",))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.chdir(tmp_path)  # no local folder shadows the repo id
    monkeypatch.setattr(socket.socket, "connect", lambda *a: pytest.fail("the resolver tried to reach the network"))
    return hub, first, second


def logits(model, tokenizer, text="The quick brown fox"):
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    with torch.no_grad():
        return model(ids).logits


def hf_config(**model_args) -> RunConfig:
    return RunConfig.from_mapping({"model": "hf", "model_args": model_args})


# ---- specs ---------------------------------------------------------------------------------------
def test_repo_specs_are_org_name_with_an_optional_revision():
    assert parse_repo_spec("Qwen/Qwen2.5-7B-Instruct") == RepoSpec("Qwen/Qwen2.5-7B-Instruct", None)
    assert parse_repo_spec("meta-llama/Llama-3.1-8B-Instruct@0e9e39f") == RepoSpec(
        "meta-llama/Llama-3.1-8B-Instruct", "0e9e39f")
    assert str(parse_repo_spec("org/name@v1.0")) == "org/name@v1.0"
    for not_a_repo in ("/models/llama", "./llama", "~/llama", "../x/llama", "llama", "a/b/c", "org/na--me",
                       "org/name@", "default"):
        assert parse_repo_spec(not_a_repo) is None, not_a_repo


def test_docstring_examples():
    result = doctest.testmod(hub_cache)
    assert result.attempted > 0 and result.failed == 0


def test_the_cache_folder_follows_the_environment_at_call_time(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "elsewhere"))  # the more specific variable wins
    assert hub_cache_dir() == tmp_path / "elsewhere"


# ---- resolving from the cache --------------------------------------------------------------------
def test_a_repo_id_loads_its_main_snapshot_through_the_hf_engine(hub, tiny_tokenizer):
    hub_dir, first, second = hub
    assert resolve_model_dir(REPO) == hub_dir / "models--tiny-org--tiny-llama" / "snapshots" / MAIN
    model, tokenizer = build.load_hf_model(hf_config(pretrained=REPO, device="cpu", dtype="float32"))
    assert torch.equal(logits(model, tokenizer), logits(first, tiny_tokenizer))
    assert not torch.allclose(logits(model, tokenizer), logits(second, tiny_tokenizer), atol=1e-3)


@pytest.mark.parametrize("revision", ["v2", SECOND, SECOND[:7]], ids=["tag", "commit", "short-commit"])
def test_a_revision_picks_its_snapshot(hub, tiny_tokenizer, revision):
    _, _, second = hub
    assert resolve_model_dir(f"{REPO}@{revision}").name == SECOND
    model, tokenizer = load_model(f"{REPO}@{revision}", device="cpu", dtype="float32")
    assert torch.equal(logits(model, tokenizer), logits(second, tiny_tokenizer))


def test_a_local_folder_wins_over_a_repo_id_of_the_same_name(hub, tmp_path, tiny_tokenizer):
    local = tmp_path / REPO  # the fixture runs the test in tmp_path, so REPO is also a relative path
    build_tiny_llama(tiny_tokenizer, seed=9).save_pretrained(local)
    assert resolve_model_dir(REPO).resolve() == local  # the relative path, as given


def test_a_repo_missing_from_the_cache_names_the_folder_and_the_fix(hub):
    hub_dir, _, _ = hub
    with pytest.raises(UserError) as caught:
        resolve_model_dir("other-org/absent-model")
    message = str(caught.value)
    assert message.startswith("other-org/absent-model: not in the local Hugging Face cache")
    assert str(hub_dir / "models--other-org--absent-model") in message
    assert "hf download other-org/absent-model" in message and "pretrained=PATH" in message


def test_a_revision_missing_from_the_cache_lists_what_is_cached(hub):
    with pytest.raises(UserError) as caught:
        load_model(f"{REPO}@v3", device="cpu")
    message = str(caught.value)
    assert f"{REPO}@v3: revision 'v3' is not in the cache folder" in message
    assert f"main -> {MAIN[:12]}" in message and f"v2 -> {SECOND[:12]}" in message
    assert f"hf download {REPO} --revision v3" in message


def test_a_snapshot_without_weights_is_refused_before_loading(hub):
    hub_dir, _, _ = hub
    snapshot = hub_dir / "models--tiny-org--tiny-llama" / "snapshots" / MAIN
    (snapshot / "model.safetensors").unlink()  # what AutoConfig.from_pretrained online leaves: config only
    with pytest.raises(UserError, match=f"{REPO}: the cached snapshot .* has no weight files"):
        resolve_model_dir(REPO)


def test_weights_id_is_the_commit_the_revision_points_at(hub):
    hub_dir, _, _ = hub
    assert models.model_weights_id(REPO) == f"{REPO}@{MAIN}"
    assert models.model_weights_id(f"{REPO}@v2") == f"{REPO}@{SECOND}"
    (hub_dir / "models--tiny-org--tiny-llama" / "refs" / "main").write_text(SECOND)  # `main` moved on
    assert models.model_weights_id(REPO) == f"{REPO}@{SECOND}"  # so resuming an old run is refused
    assert models.model_weights_id("other-org/absent-model") is None  # a Ray driver need not hold the weights


# ---- device_map ----------------------------------------------------------------------------------
def test_device_map_is_a_model_argument_of_the_hf_engine():
    config = hf_config(pretrained="org/x", device_map="balanced")
    assert build.engine_arguments(config, build.ENGINES.lookup("hf")) == {}  # read by the runner, not refused


def test_device_map_values_are_checked():
    assert check_device_map(None) is None
    assert check_device_map("auto") == "auto" and check_device_map("balanced_low_0") == "balanced_low_0"
    assert check_device_map("cpu") == "cpu"
    assert check_device_map({"model": "cpu", "lm_head": 0}) == {"model": "cpu", "lm_head": 0}
    with pytest.raises(UserError, match=r"device_map='everywhere' is not one of auto, balanced"):
        check_device_map("everywhere")
    with pytest.raises(UserError, match="device=cpu and device_map=auto both place the model"):
        check_device_map("auto", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA is not available"):
            check_device_map(1)


def test_device_map_auto_generates_the_same_bucketed_tokens(hub, monkeypatch):
    """`device_map=auto` reaches `from_pretrained` (accelerate's placement; on a CPU-only machine everything lands on
    the CPU) and the bucketed generator gives the same tokens and per-bucket logits as the model placed with
    `device`."""
    from transformers import AutoModelForCausalLM

    placements = []
    real = AutoModelForCausalLM.from_pretrained.__func__
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", classmethod(
        lambda cls, *args, **kwargs: (placements.append(kwargs.get("device_map")), real(cls, *args, **kwargs))[1]))
    placed, tokenizer = build.load_hf_model(hf_config(pretrained=REPO, device="cpu", dtype="float32"))
    mapped, _ = build.load_hf_model(hf_config(pretrained=REPO, device_map="auto", dtype="float32"))
    assert placements == [None, "auto"]
    results = [BucketedGenerator(model, tokenizer, bases=BASES).generate(
        PROMPTS, max_new_tokens=8, ignore_eos=True, return_bucket_logits=True) for model in (placed, mapped)]
    for expected, got in zip(*results):
        assert got.token_ids == expected.token_ids and len(got.token_ids) == 8
        assert torch.allclose(got.bucket_logits, expected.bucket_logits, atol=1e-5)


def test_bucketed_decoding_runs_on_a_model_spread_by_accelerate_hooks(hub, tmp_path):
    """A device map that offloads a layer to disk makes accelerate dispatch the model with hooks (weights brought in
    per forward, inputs moved per module), the machinery that spreads a model over several GPUs. The bucketed
    generator swaps the rotary module and reshapes the KV cache under those hooks: it must still give the tokens
    of the plain model."""
    from transformers import AutoModelForCausalLM

    snapshot = resolve_model_dir(REPO)
    placed, tokenizer = load_model(REPO, device="cpu", dtype="float32")
    device_map = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.layers.0": "cpu",
                  "model.layers.1": "disk", "model.norm": "cpu", "lm_head": "cpu"}
    spread = AutoModelForCausalLM.from_pretrained(snapshot, dtype=torch.float32, device_map=device_map,
                                                  offload_folder=str(tmp_path / "offload")).eval()
    assert hasattr(spread.model.layers[1], "_hf_hook")  # really dispatched with hooks
    prompts = [*PROMPTS, "User: find the three most popular movies of 2023"]
    expected = BucketedGenerator(placed, tokenizer, bases=BASES).generate(prompts, max_new_tokens=6, ignore_eos=True)
    got = BucketedGenerator(spread, tokenizer, bases=BASES).generate(prompts, max_new_tokens=6, ignore_eos=True)
    assert [r.token_ids for r in got] == [r.token_ids for r in expected]
