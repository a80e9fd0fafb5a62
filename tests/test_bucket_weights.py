"""`record_bucket_weights`: each finished query's fused bucket weights in a sidecar beside its answer file.

The hf runs use the tiny random Llama of `conftest.py` with large weights (`divergent_llama`), so its three
buckets disagree; `build.load_hf_model` is replaced so the runner serves it. Its ReAct text is gibberish, so
every query ends without Finish (outcome `no_answer`) after a few calls: that still writes an answer file,
and so a sidecar.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from test_runner_resume import answer_bytes, write_setup

from toolbench_eval.cli import main
from toolbench_eval.engines.base import ChatReply
from toolbench_eval.errors import UserError
from toolbench_eval.runner import build
from toolbench_eval.runner.adapters import NativeToolsClient
from toolbench_eval.runner.bucket_weights import CallWeights, sidecar
from toolbench_eval.runner.config import RunConfig

BASES = (10000.0, 20000.0, 40000.0)
GROUP = "G1_instruction"


@pytest.fixture
def tiny_hf(monkeypatch, divergent_llama, tiny_tokenizer, tmp_path):
    """`--model hf` serves the tiny Llama; returns the `pretrained=` folder to name (it only has to exist)."""
    monkeypatch.setattr(build, "load_hf_model", lambda config: (divergent_llama, tiny_tokenizer))
    folder = tmp_path / "tiny-llama"
    folder.mkdir()
    return folder


def run_args(setup: dict[str, Path], out: Path, *extra: str) -> list[str]:
    config = out.parent / "config.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"tool_backend: {{name: cache, cache_dir: {setup['cache']}}}\n")
    return ["run", "--config", str(config), "--benchmark", str(setup["bench"]), "--groups", GROUP,
            "--executor", "local", "--out", str(out), "--no-progress", *extra]


def hf_args(setup, out, model_folder, *extra):
    return run_args(setup, out, "--method", "react", "--model", "hf", "--model-args",
                    f"pretrained={model_folder},max_batch_size=4", "--protocol", "toolbench-eval",
                    "--buckets", ",".join(str(b) for b in BASES), "--max-new-tokens", "10", "--limit", "2", *extra)


def scripted_args(setup, out, *extra):
    return run_args(setup, out, "--model", "scripted", "--model-args", f"script={setup['script']}",
                    "--buckets", "10000,30000", *extra)


def sidecars(run: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((run / "bucket_weights" / GROUP).glob("*.json"))}


def query_counts(run: Path, method: str) -> dict[str, int]:
    return {p.name.split("_")[0]: json.loads(p.read_text())["answer_generation"]["query_count"]
            for p in sorted((run / GROUP).glob(f"*_{method}.json"))}


def test_hf_run_records_every_calls_weights_and_leaves_answers_byte_identical(tmp_path, tiny_hf):
    setup = write_setup(tmp_path, queries_per_group=2)
    on, off = tmp_path / "runs" / "on", tmp_path / "runs" / "off"
    assert main(hf_args(setup, on, tiny_hf, "--record-bucket-weights")) == 0
    assert main(hf_args(setup, off, tiny_hf)) == 0

    answers = answer_bytes(on)
    assert len(answers) == 2 and answers == answer_bytes(off)
    assert not (off / "bucket_weights").exists()
    assert json.loads((on / "manifest.json").read_text())["config"]["record_bucket_weights"] is True
    assert json.loads((off / "manifest.json").read_text())["config"]["record_bucket_weights"] is False

    written = sidecars(on)
    counts = query_counts(on, "CoT@1")
    assert set(written) == set(counts) == {"100", "101"}
    decided_total = [0, 0, 0]
    for query_id, document in written.items():
        assert document["bases"] == list(BASES) and document["fusion"] == "max_logit"
        assert len(document["calls"]) == counts[query_id] > 1  # one entry per model call
        for index, call in enumerate(document["calls"]):
            assert call["call"] == index
            assert 1 <= call["tokens"] <= 10 and len(call["per_token"]) == call["tokens"]
            for weights in call["per_token"]:
                assert len(weights) == 3 and sum(weights) == pytest.approx(1.0, abs=2e-3)
            assert sum(call["decided"]) == call["tokens"]
            assert sum(call["mean"]) == pytest.approx(1.0, abs=1e-3)
            decided_total = [a + b for a, b in zip(decided_total, call["decided"])]
    # Real weights from the model's buckets, not a uniform placeholder: some bucket decided a token.
    assert max(decided_total) > 0 and any(w != pytest.approx(1 / 3, abs=1e-3)
                                          for d in written.values() for c in d["calls"] for w in c["mean"])


def test_dfsdt_sidecar_has_one_entry_per_model_call_in_order(tmp_path):
    setup = write_setup(tmp_path, queries_per_group=3)  # query 102 is 'hard': the script gives up on it
    out = tmp_path / "runs" / "dfsdt"
    assert main(scripted_args(setup, out, "--method", "dfsdt", "--record-bucket-weights")) == 0
    counts = query_counts(out, "DFS_woFilter_w2")
    written = sidecars(out)
    assert set(written) == set(counts) == {"100", "101", "102"}
    for query_id, document in written.items():
        assert [call["call"] for call in document["calls"]] == list(range(counts[query_id]))
        # The scripted engine's weights are uniform: one per word it replies.
        assert all(call["mean"] == [0.5, 0.5] and call["tokens"] > 0 for call in document["calls"])


def test_a_resumed_run_keeps_finished_sidecars(tmp_path):
    setup = write_setup(tmp_path, queries_per_group=3)
    out = tmp_path / "runs" / "resume"
    assert main(scripted_args(setup, out, "--method", "react", "--limit", "1", "--record-bucket-weights")) == 0
    first = out / "bucket_weights" / GROUP / "100.json"
    before = (first.read_bytes(), first.stat().st_mtime_ns)
    # Resumed with more queries and recording off (allowed: answers do not depend on it).
    assert main(scripted_args(setup, out, "--method", "react", "--limit", "2")) == 0
    assert (first.read_bytes(), first.stat().st_mtime_ns) == before
    assert set(sidecars(out)) == {"100"} and set(query_counts(out, "CoT@1")) == {"100", "101"}
    # And on again: the new query gets its sidecar, the finished ones stay as they are.
    assert main(scripted_args(setup, out, "--method", "react", "--limit", "3", "--record-bucket-weights")) == 0
    assert set(sidecars(out)) == {"100", "102"}
    assert (first.read_bytes(), first.stat().st_mtime_ns) == before
    assert json.loads((out / "manifest.json").read_text())["config"]["record_bucket_weights"] is True


def test_asking_without_buckets_or_on_an_engine_without_weights_is_a_user_error(tmp_path, capsys):
    with pytest.raises(UserError, match="needs Attention Buckets: add --buckets"):
        RunConfig.from_mapping({"record_bucket_weights": True})
    with pytest.raises(UserError, match="vllm engine cannot report bucket weights"):
        RunConfig.from_mapping({"record_bucket_weights": True, "buckets": "10000,20000", "model": "vllm"})
    with pytest.raises(UserError, match="must be true or false"):
        RunConfig.from_mapping({"record_bucket_weights": "yes", "buckets": "10000,20000"})
    setup = write_setup(tmp_path, queries_per_group=1)
    out = tmp_path / "runs" / "refused"
    args = run_args(setup, out, "--model", "scripted", "--model-args", f"script={setup['script']}",
                    "--record-bucket-weights")
    assert main(args) == 2
    assert "--buckets" in capsys.readouterr().err and not out.exists()


def test_call_weights_keep_call_order_when_completions_return_out_of_order():
    weights = CallWeights()
    first, second = weights.begin(), weights.begin()
    weights.record(second, [[0.1, 0.9]])
    weights.record(first, [[0.8, 0.2], [0.6, 0.4]])
    assert weights.calls() == [[[0.8, 0.2], [0.6, 0.4]], [[0.1, 0.9]]]
    document = sidecar((1e4, 2e4), "max_logit", [*weights.calls(), []])
    assert [c["decided"] for c in document["calls"]] == [[2, 0], [0, 1], [0, 0]]
    assert document["calls"][2] == {"call": 2, "tokens": 0, "mean": [0.0, 0.0], "decided": [0, 0], "per_token": []}
    with pytest.raises(ValueError, match="3 bucket weights, the run has 2"):
        sidecar((1e4, 2e4), "max_logit", [[[0.2, 0.3, 0.5]]])


def test_native_client_keeps_the_weights_of_each_turn_beside_the_message():
    class ChatEngine:
        async def chat(self, messages, tools, params, *, upstream_request, constrain):
            return ChatReply({"content": "hi", "role": "assistant"}, 5, 2, [[0.7, 0.3], [0.4, 0.6]])

    weights = CallWeights()
    client = NativeToolsClient(ChatEngine(), params=None, upstream_request=True, weights=weights)
    output = asyncio.run(client.generate([{"role": "user", "content": "q"}], [], trajectory_id="t"))
    assert output.text == "hi" and output.completion_tokens == 2
    assert weights.calls() == [[[0.7, 0.3], [0.4, 0.6]]]


def test_a_grid_records_weights_only_in_its_cells_with_buckets():
    from toolbench_eval.runner.grid import expand_grid

    base = {"model": "hf", "record_bucket_weights": True}
    runs = {run.name: run.config for run in expand_grid({"base": base, "grid": {"buckets": ["none", "auto:3"]}})}
    assert runs["react-nobuckets"].record_bucket_weights is False
    assert runs["react-auto3"].record_bucket_weights is True
