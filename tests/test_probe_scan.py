"""`probe scan`: the cached-context + shifted-question forward equals a full forward with shifted position ids,
fusion of one base is the plain log-softmax (and of a set, the fusion of separate models), the distance list
holds every trough and peak, resumption, and argument errors."""

from __future__ import annotations

import json

import pytest
import torch

from toolbench_eval.cli import main
from toolbench_eval.errors import UserError
from toolbench_eval.probe import scan
from toolbench_eval.probe.scan import ScanConfig, ScanPrompt
from toolbench_eval.probe.scan_cli import parse_bucket_sets

GAPS = [0, 7, 40]  # three gaps at chunk 2: a full chunk, then a padded one that reuses the cropped cache


@pytest.fixture(scope="module")
def prompt() -> ScanPrompt:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 300, (20,), generator=generator).tolist()
    return ScanPrompt(sample=0, context_ids=tuple(ids[:12]), question_ids=tuple(ids[12:17]),
                      answer_ids=tuple(ids[17:]), target_distance=10, value="x")


def full_logits(model, prompt: ScanPrompt, gap: int) -> torch.Tensor:
    """Reference: one forward over the whole sequence, positions of question + answer moved by `gap`."""
    ids = list(prompt.context_ids) + list(prompt.question_ids) + list(prompt.answer_ids[:-1])
    context = len(prompt.context_ids)
    positions = list(range(context)) + [context + gap + i for i in range(len(ids) - context)]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                       position_ids=torch.tensor([positions])).logits
    return logits[0, -len(prompt.answer_ids):].float()


@pytest.mark.parametrize("base", [10000.0, 50000.0])
def test_cached_context_equals_full_forward_with_shifted_positions(divergent_llama, prompt, base):
    from conftest import with_rope_theta

    reference = with_rope_theta(divergent_llama, base)  # a model whose own config has this base
    with scan.rotary_base(divergent_llama, base):
        got = scan.gap_logits(divergent_llama, prompt, GAPS, chunk=2)
    assert got.shape == (len(GAPS), len(prompt.answer_ids), divergent_llama.config.vocab_size)
    for row, gap in enumerate(GAPS):
        torch.testing.assert_close(got[row], full_logits(reference, prompt, gap), atol=1e-4, rtol=1e-4)
    assert not torch.allclose(got[0], got[2], atol=1e-3)  # the gap does move the answer's view of the data


def test_rotary_is_restored(divergent_llama, prompt):
    original = divergent_llama.get_decoder().rotary_emb
    with scan.rotary_base(divergent_llama, 20000.0):
        assert divergent_llama.get_decoder().rotary_emb is not original
    assert divergent_llama.get_decoder().rotary_emb is original


def test_one_base_scores_are_the_plain_log_softmax(divergent_llama, prompt):
    records = scan.scan_prompt(divergent_llama, prompt, [ScanConfig((10000.0,))], [10, 17, 50], chunk=2)
    assert [r["gap"] for r in records] == [0, 7, 40]
    assert [r["actual_distance"] for r in records] == [10, 17, 50]
    gold = torch.tensor(prompt.answer_ids)
    for record in records:
        logprobs = torch.log_softmax(full_logits(divergent_llama, prompt, record["gap"]), -1)
        picked = logprobs.gather(-1, gold[:, None]).squeeze(-1)
        assert record["logprob_sum"] == pytest.approx(float(picked.sum()), abs=1e-3)
        assert record["logprob_mean"] == pytest.approx(float(picked.mean()), abs=1e-3)
        assert record["exact"] == bool((logprobs.argmax(-1) == gold).all())


def test_bucket_set_fuses_the_logits_of_separate_models(divergent_llama, prompt):
    from conftest import with_rope_theta

    from buckets.fusion import fuse

    bases = (10000.0, 30000.0, 90000.0)
    records = scan.scan_prompt(divergent_llama, prompt, [ScanConfig(bases)], [10, 50], chunk=4)
    gold = torch.tensor(prompt.answer_ids)
    for record in records:
        stacked = torch.stack([full_logits(with_rope_theta(divergent_llama, b), prompt, record["gap"]) for b in bases], -2)
        fused, _ = fuse(stacked, "max_logit")
        assert record["logprob_sum"] == pytest.approx(float(fused.gather(-1, gold[:, None]).sum()), abs=1e-3)
        single = torch.log_softmax(stacked[:, 0], -1).gather(-1, gold[:, None]).sum()
        assert record["logprob_sum"] != pytest.approx(float(single), abs=1e-3)  # the set is not its first base


def test_exact_needs_every_gold_token_to_be_the_argmax():
    logprobs = torch.log_softmax(torch.tensor([[[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]],
                                               [[0.0, 2.0, 1.0], [0.0, 3.0, 0.0]]]), -1)
    picked, exact = scan.score_answer(logprobs, [1, 0])
    assert exact.tolist() == [True, False]
    assert picked.shape == (2, 2)


def test_distances_hold_every_trough_and_peak():
    from buckets.extrema import find_troughs

    extrema = scan.waveform_extrema(1e5, 64, 150, 16384)
    assert list(extrema.troughs) == find_troughs(1e5, head_dim=64, window=(150, 16384), max_count=64).tolist()
    assert len(extrema.troughs) > 6  # more than the detector's default 6: every one in the range
    distances = scan.scan_distances(scan.parse_grid("0:16384:1024"), extrema)
    assert set(extrema.troughs) <= set(distances) and set(extrema.peaks) <= set(distances)
    assert {0, 1024, 16384} <= set(distances) and distances == sorted(set(distances))
    for trough, left, right in extrema.neighbours:
        assert left < trough < right and left in extrema.peaks and right in extrema.peaks


def test_gap_puts_the_target_at_the_distance(prompt):
    assert [scan.gap_for(d, prompt) for d in (0, 10, 174)] == [0, 0, 164]


def test_prompts_split_at_the_question(tiny_tokenizer):
    from toolbench_eval.probe.kv import make_sample, render_prompt

    (first,) = scan.build_prompts(tiny_tokenizer, [3], num_pairs=4, target_index=2, style="plain")
    rendered = render_prompt(make_sample(4, 2, 3, 0), tiny_tokenizer, "plain", cue=True)
    assert first.context_ids + first.question_ids == rendered.token_ids
    assert tiny_tokenizer.decode(first.question_ids).startswith("\n\nKey:")
    assert tiny_tokenizer.decode(first.answer_ids) == first.value


def test_run_is_resumable_and_refuses_other_settings(divergent_llama, prompt, tmp_path):
    configs = [ScanConfig((10000.0,))]
    scan.check_settings(tmp_path, {"distances": [10, 50]})
    assert scan.run_scan(divergent_llama, [prompt], configs, [10, 50], tmp_path, progress=False)[0] == 1
    assert scan.run_scan(divergent_llama, [prompt], configs, [10, 50], tmp_path, progress=False)[0] == 0
    path = tmp_path / scan.RECORDS_FILE
    path.write_text(path.read_text() + '{"config": "torn')  # an interrupted write
    second = ScanPrompt(1, *[getattr(prompt, f) for f in ("context_ids", "question_ids", "answer_ids",
                                                          "target_distance", "value")])
    assert scan.run_scan(divergent_llama, [prompt, second], configs, [10, 50], tmp_path, progress=False)[0] == 1
    assert [json.loads(line)["sample"] for line in path.read_text().splitlines()] == [0, 0, 1, 1]
    with pytest.raises(UserError, match="other settings"):
        scan.check_settings(tmp_path, {"distances": [10]})


@pytest.mark.parametrize("text", ["0:100", "a:b:c", "10:0:5", "0:10:0", "-5", ""])
def test_bad_grid_is_a_user_error(text):
    with pytest.raises(UserError, match="--grid"):
        scan.parse_grid(text)


@pytest.mark.parametrize("text", ["100000", "100000,x", "100000,100000", "1,100000"])
def test_bad_bucket_set_is_a_user_error(text):
    with pytest.raises(UserError, match="--buckets"):
        parse_bucket_sets(text)


@pytest.mark.parametrize("argv, message", [
    (["--samples", "0"], "--samples"), (["--target-index", "10"], "--target-index"), (["--chunk", "0"], "--chunk"),
    (["--fusion", "mean"], "--fusion"), (["--max-minutes", "0"], "--max-minutes"), (["--grid", "x"], "--grid"),
])
def test_bad_arguments_exit_2_before_loading_a_model(argv, message, tmp_path, capsys):
    assert main(["probe", "scan", *argv, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
