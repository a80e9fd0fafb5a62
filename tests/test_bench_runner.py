"""`bench runner` end to end on a tiny random Llama: both sides solve the same queries and the report says so."""

import re

import pytest
from conftest import build_tiny_llama

from toolbench_eval.cli import main


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer):
    folder = tmp_path_factory.mktemp("tiny-runner-model")
    build_tiny_llama(tiny_tokenizer, seed=3, max_position_embeddings=16384).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("method", ["react", "dfsdt"])
def test_official_baseline_and_runner_make_the_same_calls(tiny_model_dir, tmp_path, method):
    out = tmp_path / "runner.md"
    code = main(["bench", "runner", "--method", method, "--queries", "2", "--concurrency", "2", "--buckets", "2",
                 "--max-new-tokens", "6", "--prompt-lookup", "0", "--max-query-count", "6",
                 "--model-args", f"pretrained={tiny_model_dir},device=cpu,dtype=float32", "--out", str(out)])
    assert code == 0
    text = out.read_text()
    label = "DFSDT (DFS_woFilter_w2)" if method == "dfsdt" else "ReAct (CoT@1)"
    assert f"--method {method}" in text and "--max-query-count 6" in text and label in text
    rows = [line for line in text.splitlines() if line.startswith(("| official pipeline", "| runner ("))]
    assert len(rows) == 2
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    # loop | queries | wall s | per min | speed-up | model calls | tokens | ...
    assert [c[1] for c in cells] == ["2", "2"] and cells[0][4] == "1.00x" and re.fullmatch(r"[\d.]+x", cells[1][4])
    calls = [int(c[5]) for c in cells]
    assert calls[0] == calls[1] >= 2  # float32: both sides take the same paths
    if method == "dfsdt":
        assert calls[0] <= 2 * 6  # the budget holds (ReAct is bounded by its chain length instead)


def test_both_official_attentions_are_measured_and_each_gets_a_speed_up_column(tiny_model_dir, tmp_path):
    out = tmp_path / "runner.md"
    code = main(["bench", "runner", "--queries", "1", "--concurrency", "1", "--buckets", "2", "--max-new-tokens", "4",
                 "--prompt-lookup", "0", "--official-prefill", "both",
                 "--model-args", f"pretrained={tiny_model_dir},device=cpu,dtype=float32", "--out", str(out)])
    assert code == 0
    text = out.read_text()
    assert "--official-prefill both" in text
    assert "| speed-up vs eager official | speed-up vs SDPA-prefill official |" in text
    rows = [line for line in text.splitlines() if line.startswith(("| official pipeline", "| runner ("))]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    assert ["eager attention, as the official code" in rows[0], "SDPA prefill" in rows[1]] == [True, True]
    assert len(rows) == 3 and cells[0][4] == "1.00x" and cells[1][5] == "1.00x"
    assert len({c[6] for c in cells}) == 1  # every side made the same model calls


def test_the_official_decoder_refuses_an_unknown_prefill_attention():
    from toolbench_eval.speed._official_buckets import OfficialStyleBuckets

    with pytest.raises(ValueError, match="prefill_attention must be one of sdpa, eager"):
        OfficialStyleBuckets(object(), [1e4, 2e4], prefill_attention="flash")
