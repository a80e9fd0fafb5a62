"""The multi-needle task: seeded prompts, per-needle scoring, token positions, and `probe needles` end to end."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from toolbench_eval.cli import main
from toolbench_eval.errors import UserError
from toolbench_eval.probe.needles import (
    answer_cue,
    expected_answer,
    make_needle_sample,
    needle_sentence,
    render_needles,
    score_needles,
)


def test_needles_are_seeded_distinct_and_in_order():
    sample = make_needle_sample(4, 20, sample=3, seed=1)
    assert sample == make_needle_sample(4, 20, sample=3, seed=1)
    assert sample != make_needle_sample(4, 20, sample=4, seed=1)
    doors = [door for door, _ in sample.needles]
    assert len(set(doors)) == 4 and len({code for _, code in sample.needles}) == 4
    offsets = sample.needle_char_offsets()
    assert offsets == sorted(offsets) and offsets[-1] < sample.question_char_offset()
    with pytest.raises(UserError, match="at least one sentence per needle"):
        make_needle_sample(5, 3, sample=0)


def test_score_needles_per_needle():
    needles = (("amber", "1111-2222"), ("birch", "3333-4444"), ("fern", "5555-6666"))
    assert score_needles(expected_answer(needles)[len(answer_cue(needles)):], needles) == [True, True, True]
    # wrong second code, third door in another spelling, a duplicate later line does not override
    text = '1111-2222\nbirch: 3333-4445\n- Fern door: "5555-6666"\nbirch: 3333-4444'
    assert score_needles(text, needles) == [True, False, True]
    assert score_needles("", needles) == [False, False, False]


def test_rendered_needles_point_at_their_sentences(tiny_tokenizer):
    sample = make_needle_sample(3, 9, sample=0)
    rendered = render_needles(sample, tiny_tokenizer, "plain")
    for (door, code), token in zip(sample.needles, rendered.needle_tokens):
        text = tiny_tokenizer.decode(rendered.token_ids[token:])
        assert text.lstrip().startswith(needle_sentence(door, code)[:12])
    distances = rendered.distances()
    assert distances == sorted(distances, reverse=True) and distances[-1] > 0
    assert tiny_tokenizer.decode(rendered.token_ids[rendered.question_token:]).strip().startswith("List the code")


def test_cli_needles_writes_per_needle_results(tmp_path, tiny_tokenizer):
    from conftest import build_tiny_llama

    checkpoint = tmp_path / "tiny"
    torch.manual_seed(0)
    build_tiny_llama(tiny_tokenizer, init_range=0.3, seed=1).save_pretrained(checkpoint)
    tiny_tokenizer.save_pretrained(checkpoint)
    out = tmp_path / "needles"
    args = ["-q", "probe", "needles", "--model-args", f"pretrained={checkpoint},device=cpu", "--dtype", "float32",
            "--prompt-style", "plain", "--needles", "2", "--sentences", "4,6", "--samples", "2",
            "--buckets", "10000,20000", "--rope-scaling", "none,yarn:2", "--position-gap", "50",
            "--max-new-tokens", "6", "--batch-size", "2", "--out", str(out)]
    assert main(args) == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    # 2 lengths x 2 samples x (own base, set) x 2 scalings
    assert len(records) == 16
    assert all(len(r["needle_correct"]) == 2 and r["correct"] == all(r["needle_correct"]) for r in records)
    assert all(r["needle_distances"][0] > r["needle_distances"][1] > 50 for r in records)
    with (out / "needles.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["num_pairs"], r["position"]) for r in rows} == {("4", "0"), ("4", "1"), ("6", "0"), ("6", "1")}
    assert {r["n"] for r in rows} == {"2"}
    summary = (out / "summary.md").read_text()
    assert "# Multi-needle retrieval probe" in summary and "## Per needle" in summary and "yarn:2" in summary
    assert json.loads((out / "probe.json").read_text())["settings"]["task"] == "needles"


def test_search_window_spans_every_needle_not_only_the_first():
    from toolbench_eval.probe.runner import ProbeItem, distance_window

    item = ProbeItem(3, 24, 0, "x", (1, 2, 3), 300, 0, (("a", "1"), ("b", "2"), ("c", "3")), (300, 190, 90))
    assert distance_window({(3, 24): [item]}) == (90, 300)
