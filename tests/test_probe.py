"""The KV context-awareness probe: prompt generator, scoring, shared prefill, and the CLI end to end."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from conftest import build_tiny_llama

from toolbench_eval.cli import main
from toolbench_eval.errors import UserError
from toolbench_eval.probe.kv import (
    KVFormat,
    answer_cue,
    draw_pairs,
    make_sample,
    render_prompt,
    spread_positions,
)
from toolbench_eval.probe.report import sign_test
from toolbench_eval.probe.runner import (
    ProbeConfig,
    ProbeItem,
    distance_window,
    parse_base_list,
    parse_bucket_sets,
    resolve_configs,
)
from toolbench_eval.probe.scoring import is_correct, normalize_answer, wilson_interval

# ---- generator ----------------------------------------------------------------------------------


def test_same_seed_gives_the_same_prompts_and_another_seed_does_not():
    first = [make_sample(12, 5, s, seed=7) for s in range(4)]
    again = [make_sample(12, 5, s, seed=7) for s in range(4)]
    other = [make_sample(12, 5, s, seed=8) for s in range(4)]
    assert [s.text for s in first] == [s.text for s in again]
    assert [s.text for s in first] != [s.text for s in other]
    assert len({s.text for s in first}) == 4  # samples differ from each other


@pytest.mark.parametrize("num_pairs", [1, 5, 20])
def test_answer_occurs_once_and_query_key_once_in_data_and_once_in_question(num_pairs):
    for index in sorted({0, num_pairs // 2, num_pairs - 1}):
        for sample_number in range(5):
            sample = make_sample(num_pairs, index, sample_number, seed=3)
            data, question = sample.text.split("\n\nKey: ")
            assert sample.text.count(sample.value) == 1
            assert data.count(sample.value) == 1
            assert data.count(sample.key) == 1
            assert question.count(sample.key) == 1
            assert json.loads(sample.data)[sample.key] == sample.value


def test_target_sits_at_the_requested_index_and_keys_are_unique():
    for index in range(10):
        sample = make_sample(10, index, 2, seed=0)
        keys = [k for k, _ in sample.pairs]
        assert list(json.loads(sample.data)).index(sample.key) == index
        assert sample.pairs[index] == (sample.key, sample.value)
        assert len(set(keys)) == 10
        assert len({v for _, v in sample.pairs}) == 10


def test_moving_the_target_keeps_the_strings_and_the_order_of_the_other_pairs():
    at_start, at_end = make_sample(8, 0, 1, seed=0), make_sample(8, 7, 1, seed=0)
    assert (at_start.key, at_start.value) == (at_end.key, at_end.value)
    assert at_start.pairs[1:] == at_end.pairs[:-1]


def test_hex_format_and_no_string_inside_another():
    fmt = KVFormat(key_digits=12, value_digits=8, group=4)
    pairs = draw_pairs(30, 0, 0, fmt)
    key, value = pairs[0]
    assert len(key) == 14 and key.count("-") == 2 and len(value) == 9
    strings = [s for pair in pairs for s in pair]
    assert not any(a in b for a in strings for b in strings if a is not b)
    with pytest.raises(UserError):
        KVFormat(key_digits=2)


def test_positions_spread_evenly_and_reject_bad_indices():
    assert spread_positions("8", 10) == [0, 1, 3, 4, 5, 6, 8, 9]
    assert spread_positions(2, 20) == [0, 19]
    assert spread_positions("9,0,4", 10) == [0, 4, 9]
    with pytest.raises(UserError, match="outside"):
        spread_positions("0,10", 10)
    with pytest.raises(UserError, match="count"):
        spread_positions("first", 10)
    with pytest.raises(UserError):
        make_sample(5, 5, 0)


def test_rendered_prompt_points_at_the_target_and_ends_with_the_cue(tiny_tokenizer):
    previous = None
    for index in range(6):
        sample = make_sample(6, index, 0, seed=1)
        rendered = render_prompt(sample, tiny_tokenizer, "plain")
        ids = list(rendered.token_ids)
        assert ids == tiny_tokenizer(rendered.text)["input_ids"]  # plain style: the tokenizer's own specials
        assert tiny_tokenizer.decode(ids[rendered.target_token :]).lstrip().startswith(f'"{sample.key}": ')
        assert rendered.text.endswith(answer_cue(sample.key))
        if previous is not None:
            assert rendered.target_distance < previous  # later targets are nearer the answer
        previous = rendered.target_distance
    uncued = render_prompt(sample, tiny_tokenizer, "plain", cue=False)
    assert uncued.text.endswith("Corresponding value:\n")


def test_chat_style_needs_a_chat_template(tiny_tokenizer):
    with pytest.raises(UserError, match="chat template"):
        render_prompt(make_sample(3, 0, 0), tiny_tokenizer, "chat")


# ---- scoring ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        ("70b3-d029", True),
        ('  "70b3-d029",  ', True),
        ("`70b3-d029`.", True),
        ("70b3-d029\nsomething else", True),
        ("70b3-d02", False),
        ("70b3-d0299", False),
        ("The value is 70b3-d029", False),
        ("", False),
    ],
)
def test_exact_match_after_trimming(prediction, expected):
    assert is_correct(prediction, "70b3-d029") is expected


def test_normalize_and_intervals():
    assert normalize_answer('"\'x\'",') == "x"
    low, high = wilson_interval(0, 10)
    assert low == 0 and 0.2 < high < 0.35
    assert sign_test(5, 5) == 1.0
    assert sign_test(10, 0) < 0.01


# ---- configurations -----------------------------------------------------------------------------


def test_base_and_bucket_arguments():
    assert parse_base_list("150000, auto:3") == [150000.0, "auto:3"]
    assert parse_bucket_sets("auto:2; 10000,20000") == ["auto:2", (10000.0, 20000.0)]
    for bad in ("abc", "1", "auto:0"):
        with pytest.raises(UserError):
            parse_base_list(bad)
    with pytest.raises(UserError, match="at least two"):
        parse_bucket_sets("10000")


def test_own_base_first_and_searched_bases_expand():
    configs = resolve_configs(1e5, [2e5, "auto:3"], ["auto:3", (1e5, 2e5)], lambda n: [1e5, 1.5e5, 3e5][:n])
    assert [c.bases for c in configs] == [(1e5,), (2e5,), (1.5e5,), (3e5,), (1e5, 1.5e5, 3e5), (1e5, 2e5)]
    assert configs[0].own and configs[0].label == "base 100k (own)"
    assert configs[4].label == "buckets auto:3 {100k, 150k, 300k}"
    assert configs[4].key == "buckets=100000,150000,300000|max_logit"


def test_search_window_spans_the_first_sample_of_every_cell():
    def item(distance, sample=0):
        return ProbeItem(10, 0, sample, "v", (1, 2), distance)

    items = {(10, 0): [item(250), item(900, 1)], (10, 9): [item(60)]}
    assert distance_window(items) == (60, 250)
    assert distance_window(items, position_scale=2.0) == (30, 125)


# ---- shared prefill ------------------------------------------------------------------------------


def test_single_base_reusing_a_bucket_sets_prefill_matches_its_own_prefill(divergent_llama, tiny_tokenizer):
    from buckets.generation import BucketedGenerator, DecodeParams
    from toolbench_eval.probe.runner import _borrow_prefill

    prompts = [list(render_prompt(make_sample(3, i, i, seed=2), tiny_tokenizer, "plain").token_ids)
               for i in range(2)]
    keys = ["a", "b"]
    items = [ProbeItem(3, 0, i, "", tuple(p), 0) for i, p in enumerate(prompts)]
    params = DecodeParams(max_new_tokens=6)
    bucket_set = ProbeConfig("set", (10000.0, 40000.0))
    donor = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=list(bucket_set.bases))
    donor.generate(prompts, params, cache_keys=keys)
    borrower = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=[40000.0])
    _borrow_prefill(donor, bucket_set, borrower, 40000.0, keys, items)
    shared = borrower.generate(prompts, params, cache_keys=keys)
    fresh = BucketedGenerator(divergent_llama, tiny_tokenizer, bases=[40000.0]).generate(prompts, params)
    assert [r.cached_tokens for r in shared] == [len(p) - 1 for p in prompts]
    assert [r.token_ids for r in shared] == [r.token_ids for r in fresh]


# ---- the command end to end ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory, tiny_tokenizer):
    path = tmp_path_factory.mktemp("tiny-llama")
    torch.manual_seed(0)
    build_tiny_llama(tiny_tokenizer, init_range=0.3, seed=1).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


def _probe_args(checkpoint, out, *extra):
    return ["-q", "probe", "kv", "--model", "hf", "--model-args", f"pretrained={checkpoint},device=cpu",
            "--dtype", "float32", "--prompt-style", "plain", "--num-pairs", "3,4", "--positions", "2",
            "--samples", "2", "--bases", "20000", "--buckets", "10000,20000", "--batch-size", "2",
            "--out", str(out), *extra]


def test_cli_writes_csv_png_summary_and_resumes(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "probe"
    assert main(_probe_args(tiny_checkpoint, out)) == 0
    with (out / "results.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    # 2 K x 2 positions x (own base 10000, base 20000, one bucket set)
    assert len(rows) == 12
    assert {r["config"] for r in rows} == {"base 10k (own)", "base 20k", "buckets {10k, 20k}"}
    assert {(r["num_pairs"], r["position"]) for r in rows} == {("3", "0"), ("3", "2"), ("4", "0"), ("4", "3")}
    for row in rows:
        assert row["n"] == "2" and 0 <= float(row["accuracy"]) <= 1
        assert float(row["mean_target_distance"]) < float(row["mean_prompt_tokens"])
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "accuracy.pdf").read_bytes()[:4] == b"%PDF" and (out / "accuracy.svg").is_file()
    summary = (out / "summary.md").read_text()
    assert "## Accuracy" in summary and "buckets {10k, 20k}" in summary and "## Automatic reading" in summary
    records = (out / "records.jsonl").read_text().splitlines()
    assert len(records) == 2 * 2 * 2 * 3

    # A re-run finds everything done; more samples only adds the new ones.
    assert main(_probe_args(tiny_checkpoint, out)) == 0
    assert (out / "records.jsonl").read_text().splitlines() == records
    assert main([*_probe_args(tiny_checkpoint, out), "--samples", "3"]) == 0
    assert len((out / "records.jsonl").read_text().splitlines()) == 2 * 2 * 3 * 3
    with (out / "results.csv").open() as handle:
        assert {r["n"] for r in csv.DictReader(handle)} == {"3"}
    runs = json.loads((out / "probe.json").read_text())["runs"]
    assert [r["new_answers"] for r in runs] == [24, 0, 12]

    # Other answer-deciding settings in the same folder are refused, naming the difference.
    capsys.readouterr()
    assert main([*_probe_args(tiny_checkpoint, out), "--seed", "1"]) == 2
    assert "seed: 0 -> 1" in capsys.readouterr().err


def test_cli_rejects_bad_arguments_before_loading_a_model(tmp_path, capsys):
    assert main(["probe", "kv", "--buckets", "10000", "--out", str(tmp_path)]) == 2
    assert "at least two" in capsys.readouterr().err
    assert main(["probe", "kv", "--fusion", "median", "--out", str(tmp_path)]) == 2
    assert "unknown rule" in capsys.readouterr().err


# ---- the accuracy figure: Wilson intervals on every point, n shown, three formats, redrawn from records ----
FIGURE_CONFIGS = [ProbeConfig("10000", (10000.0,), own=True), ProbeConfig("auto:2", (20000.0, 10000.0))]


def figure_records() -> list[dict]:
    """2 K x 3 positions x 2 configs x 10 samples; config i gets (position + i) of 10 right."""
    records = []
    for num_pairs in (4, 6):
        for position in (0, 1, num_pairs - 1):
            for index, config in enumerate(FIGURE_CONFIGS):
                for sample in range(10):
                    records.append({"config": config.key, "num_pairs": num_pairs, "position": position,
                                    "sample": sample, "correct": sample < position + index, "prompt_tokens": 200,
                                    "target_distance": 150 - 20 * position, "prediction": "x", "value": "x"})
    return records


def test_accuracy_figure_draws_a_wilson_interval_on_every_point(tmp_path, monkeypatch):
    import buckets.figure_style
    from toolbench_eval.probe.report import aggregate, plot_accuracy
    from toolbench_eval.probe.scoring import wilson_interval

    figures = []
    real = buckets.figure_style.save_figure
    monkeypatch.setattr(buckets.figure_style, "save_figure", lambda f, p: figures.append(f) or real(f, p))
    rows = aggregate(figure_records(), FIGURE_CONFIGS, "tiny")
    png = plot_accuracy(rows, tmp_path / "accuracy.png", own_base=10000, head_dim=64, troughs={4: [], 6: []})
    panels = [ax for ax in figures[0].axes if ax.get_title(loc="left")]
    assert len(panels) == 2 and "n = 10 prompts per point" in panels[0].get_title(loc="left")
    from matplotlib.container import ErrorbarContainer

    for panel in panels:
        bars = [c for c in panel.containers if isinstance(c, ErrorbarContainer)]
        assert len(bars) == 2  # one per config, 3 points each
        for index, container in enumerate(bars):
            segments = container.lines[2][0].get_segments()
            assert len(segments) == 3
            # Whisker ends are the Wilson interval of (position + index)/10 correct; positions sorted.
            expected = [wilson_interval(min(10, p + index), 10) for p in (0, 1, 3 if panel is panels[0] else 5)]
            drawn = [end for s in segments for end in (s[0][1], s[1][1])]
            assert drawn == pytest.approx([end for pair in expected for end in pair], abs=1e-4)
    legend = [t.get_text() for t in figures[0].legends[0].get_texts()]
    assert legend[:2] == ["base 10k (own)", "buckets auto:2 {20k, 10k}"]
    for fmt in ("png", "svg", "pdf"):
        assert png.with_suffix(f".{fmt}").stat().st_size > 1000


def _probe_folder(path):
    from toolbench_eval.probe.report import aggregate, write_csv

    path.mkdir()
    records = figure_records()
    (path / "records.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    write_csv(aggregate(records, FIGURE_CONFIGS, "tiny"), path / "results.csv")
    (path / "summary.md").write_text("- `rope`: base 10000, head_dim 64, position scale 1, max positions 512\n")
    (path / "probe.json").write_text(json.dumps({"settings": {"dtype": "float32", "prompt_style": "plain"}}))
    return path


def test_replot_redraws_from_records_identically_and_refuses_records_that_changed(tmp_path):
    from toolbench_eval.probe.replot import replot_accuracy

    folder = _probe_folder(tmp_path / "probe")
    first = replot_accuracy(folder)
    drawn = {fmt: first.with_suffix(f".{fmt}").read_bytes() for fmt in ("png", "svg", "pdf")}
    assert replot_accuracy(folder) == folder / "accuracy.png"
    assert {fmt: first.with_suffix(f".{fmt}").read_bytes() for fmt in drawn} == drawn  # same bytes twice

    records = (folder / "records.jsonl").read_text().splitlines()
    changed = json.loads(records[0]) | {"correct": not json.loads(records[0])["correct"]}
    (folder / "records.jsonl").write_text("\n".join([json.dumps(changed), *records[1:]]) + "\n")
    with pytest.raises(UserError, match="no longer gives results.csv"):
        replot_accuracy(folder)
