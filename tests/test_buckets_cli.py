"""`toolbench-eval buckets search|plot`: output formats, files written, and user errors (exit code 2)."""

import json

import pytest

from toolbench_eval.cli import main

SMALL = ["--min-base", "10000", "--max-base", "20000", "--step", "500", "--window", "1000:4090"]


def test_search_json_lists_bases_with_their_peaks_and_troughs(capsys):
    code = main(
        [
            "buckets",
            "search",
            "--model-base",
            "10000",
            "--head-dim",
            "128",
            "--position-scale",
            "2",
            "--n",
            "3",
            "--tolerance",
            "3",
            "--json",
            *SMALL,
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["bases"]) == 3 and data["bases"][0] == 10000
    assert len(set(data["bases"])) == 3
    for pick in data["picks"]:
        assert pick["peaks"] and pick["troughs"]
        assert all(1000 <= p <= 4090 for p in pick["peaks"] + pick["troughs"])
        assert pick["troughs_tokens"] == [2 * t for t in pick["troughs"]]
    assert data["settings"]["window"] == [1000, 4090]


def test_search_table_and_save(tmp_path, capsys):
    stem = tmp_path / "out" / "search"
    assert main(["buckets", "search", "--n", "2", "--save", str(stem), *SMALL]) == 0
    table = capsys.readouterr().out
    assert "| 1 | 10000 | initial |" in table and "| 2 |" in table
    saved = json.loads((tmp_path / "out" / "search.json").read_text())
    assert saved["bases"][0] == 10000 and len(saved["bases"]) == 2
    assert (tmp_path / "out" / "search.md").read_text() == table


def test_search_context_tokens_sets_the_window(capsys):
    assert (
        main(
            [
                "buckets",
                "search",
                "--model-base",
                "100000",
                "--head-dim",
                "64",
                "--n",
                "2",
                "--context-tokens",
                "8192",
                "--json",
            ]
        )
        == 0
    )
    settings = json.loads(capsys.readouterr().out)["settings"]
    assert settings["window"] == [2000, 8180]
    assert (settings["min_base"], settings["max_base"], settings["step"]) == (100000, 300000, 5000)


def test_search_pair_start_from_the_command_line(capsys):
    assert main(["buckets", "search", "--n", "2", "--initial", "none", "--max-base", "14000", "--json"]) == 0
    picks = json.loads(capsys.readouterr().out)["picks"]
    assert [p["origin"] for p in picks] == ["pair", "pair"]


def assert_a_drawn_png(path):
    """A PNG that decodes, of a plot's size, with curves on it (many colours, not a blank canvas)."""
    import matplotlib.image

    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 300
    colours = {tuple(row) for row in pixels.reshape(-1, pixels.shape[2])[::7].round(2).tolist()}
    assert len(colours) > 20


def test_plot_given_bases_writes_a_png(tmp_path, capsys):
    out = tmp_path / "w.png"
    assert (
        main(["buckets", "plot", "--bases", "10000,18000,20500", "--position-scale", "2", "--out", str(out)])
        == 0
    )
    assert_a_drawn_png(out)
    assert str(out) in capsys.readouterr().out


def test_plot_runs_the_search_without_bases(tmp_path):
    out = tmp_path / "searched.png"
    assert main(["buckets", "plot", "--n", "2", *SMALL, "--out", str(out)]) == 0
    assert_a_drawn_png(out)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["buckets", "search", "--window", "1000-4090"], "--window: expected LO:HI"),
        (["buckets", "search", "--window", "4090:1000"], "--window"),
        (["buckets", "search", "--n", "0"], "--n"),
        (["buckets", "search", "--min-base", "30000", "--max-base", "10000"], "empty candidate range"),
        (["buckets", "search", "--n", "7", "--step", "2000"], "widen the base range"),
        (["buckets", "search", "--initial", "10000,abc"], "--initial"),
        (["buckets", "search", "--window", "1000:4090", "--context-tokens", "8192"], "either --window"),
        (["buckets", "plot", "--bases", "10000,0.5", "--out", "x.png"], "--bases"),
    ],
)
def test_user_errors_exit_2_with_a_message(argv, expected, capsys):
    assert main(argv) == 2
    assert expected in capsys.readouterr().err


def test_detector_flag_reaches_the_search(capsys):
    argv = ["buckets", "search", "--n", "2", "--detector", "prominence", "--json", *SMALL]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["settings"]["rule"]["detector"] == "prominence"


def test_search_with_a_reference_model_config_uses_its_scaled_rope(capsys):
    argv = ["buckets", "search", "--model-config", "llama-3.1-8b", "--n", "6", "--context-tokens", "4883", "--json"]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["bases"][0] == 500000 and len(set(data["bases"])) == 6
    settings = data["settings"]
    assert settings["rope"]["rope_type"] == "llama3" and settings["rope"]["original_max_position_embeddings"] == 8192
    assert (settings["min_base"], settings["max_base"], settings["step"]) == (500000, 1500000, 25000)
    assert settings["window"] == [1192, 4875] and settings["head_dim"] == 128


def test_search_reads_a_config_json_and_refuses_conflicting_flags(tmp_path, capsys):
    from toolbench_eval.reference_models import reference_config

    reference_config("qwen2.5-7b").save_pretrained(tmp_path)
    argv = ["buckets", "search", "--model-config", str(tmp_path), "--n", "2", "--context-tokens", "4096", "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["settings"]["model_base"] == 1000000
    assert main([*argv, "--head-dim", "64"]) == 2
    assert "--head-dim: --model-config" in capsys.readouterr().err


def test_a_stopped_search_exits_2_with_coverage_and_tried_flags(capsys):
    argv = ["buckets", "search", "--model-config", "mistral-7b-v0.1", "--n", "6", "--window", "1192:4875"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "found 3 of 6 bases" in err and "cover 2 of 18 troughs" in err
    assert "--window 596:2437" in err and "--step 250" in err and "--buckets 10000,23500,20500" in err


def test_plot_with_a_model_config(tmp_path):
    out = tmp_path / "llama31.png"
    argv = ["buckets", "plot", "--model-config", "llama-3.1-8b", "--bases", "500000,975000", "--context-tokens",
            "4883", "--out", str(out)]
    assert main(argv) == 0
    assert_a_drawn_png(out)


def test_waveform_figure_sorts_bases_writes_three_formats_and_same_bytes_twice(tmp_path, monkeypatch):
    import buckets.plot

    figures = []
    real = buckets.plot.save_figure
    monkeypatch.setattr(buckets.plot, "save_figure", lambda f, p: figures.append(f) or real(f, p))
    args = {"head_dim": 128, "position_scale": 2, "window": (1000, 2000)}
    first = buckets.plot.plot_waveforms([18000, 10000, 20500], out_png=tmp_path / "a" / "w.png", **args)
    second = buckets.plot.plot_waveforms([18000, 10000, 20500], out_png=tmp_path / "b" / "w.png", **args)
    _curve_axes, strip_axes = figures[0].axes[:2]
    # Bases in increasing order: legend first, strip rows top to bottom (the strip's y grows upwards).
    legend = [t.get_text() for t in figures[0].legends[0].get_texts()]
    assert legend[:3] == ["base 10000", "base 18000", "base 20500"]
    rows = [t.get_text().split()[0] for t in strip_axes.get_yticklabels()]
    assert rows == ["20500", "18000", "10000"]
    assert figures[0].get_size_inches()[0] == pytest.approx(6.5)
    for fmt in ("png", "svg", "pdf"):
        assert first.with_suffix(f".{fmt}").read_bytes() == second.with_suffix(f".{fmt}").read_bytes(), fmt
    assert_a_drawn_png(first)
