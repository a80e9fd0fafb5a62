"""Run directories end to end: `score`, `compare` and `export` (golden CSV / Markdown, plots).

The runs are built here from hand-written raw answer files and a two-group benchmark with ground
truth, so every number in the goldens can be checked by hand (see the comments in `build_runs`).
Set TOOLBENCH_EVAL_UPDATE_GOLDEN=1 to rewrite the goldens after an intended change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from toolbench_eval.cli import main
from toolbench_eval.scoring.export import export_leaderboard
from toolbench_eval.scoring.judges import RuleJudge
from toolbench_eval.scoring.labels import AnswerStatus
from toolbench_eval.scoring.passrate import score_run
from toolbench_eval.scoring.passrate_report import QueryLabels, load_report
from toolbench_eval.scoring.reference import reference_rows
from toolbench_eval.scoring.rows import Cell, LeaderboardRow
from toolbench_eval.scoring.winrate import compare_runs

GOLDEN = Path(__file__).parent / "fixtures" / "scoring" / "golden"

API = {"category_name": "Data", "tool_name": "Oracle", "api_name": "look"}
QUERIES = {
    "G1_instruction": {"1": ["Paris", "21.5"], "2": ["42"], "3": ["1,234"], "4": ["blue"]},
    "G2_category": {"5": ["7"], "6": ["cat"]},
}


def raw_answer(query: str, final: str | None, *, calls: int = 1, give_up: bool = False) -> dict:
    """A raw CoT answer: `calls` tool calls, then Finish (give_answer with `final`, or give-up);
    `final=None` and not give_up: the chain stops without Finish."""
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": query}]
    for i in range(calls):
        messages += [
            {
                "role": "assistant",
                "content": "Thought",
                "function_call": {"name": "look_for_oracle", "arguments": "{}"},
            },
            {
                "role": "function",
                "name": "look_for_oracle",
                "content": json.dumps({"error": "", "response": i}),
            },
        ]
    arguments = ""
    if give_up:
        arguments = json.dumps({"return_type": "give_up_and_restart"})
    elif final is not None:
        arguments = json.dumps({"return_type": "give_answer", "final_answer": final})
    if arguments:
        messages.append(
            {"role": "assistant", "content": "", "function_call": {"name": "Finish", "arguments": arguments}}
        )
    return {
        "win": bool(final),
        "try_count": 1,
        "trys": [],
        "answer_generation": {
            "valid_data": bool(final),
            "final_answer": arguments,
            "function": [{"name": "look_for_oracle"}, {"name": "Finish"}],
            "query_count": calls + 1,
            "total_tokens": 100,
            "train_messages": [messages],
            "chain": [],
            "query": query,
        },
    }


def write_benchmark(root: Path) -> Path:
    (root / "test_instruction").mkdir(parents=True)
    for group, facts_by_id in QUERIES.items():
        entries = [
            {
                "query": f"Question {qid}?",
                "query_id": int(qid),
                "api_list": [API],
                "ground_truth": {"facts": facts},
            }
            for qid, facts in facts_by_id.items()
        ]
        (root / "test_instruction" / f"{group}.json").write_text(json.dumps(entries))
    return root


def write_run(root: Path, run_id: str, *, buckets, groups, answers, config=None) -> Path:
    run = root / run_id
    run.mkdir(parents=True)
    manifest = {
        "run_id": run_id,
        "created": "2025-01-01T00:00:00+00:00",
        "method": "CoT@1",
        "method_label": "react",
        "model": {"engine": "scripted", "spec": "default", "args": {}},
        "model_name": "tiny",
        "buckets": buckets,
        "benchmark": {"name": "test", "root": str(root.parent / "bench")},
        "groups": groups,
        "decoding": {},
        "single_chain_max_step": 12,
        "max_query_count": 200,
        "width": None,
        "seed": 0,
        "tool_backend": {"name": "local"},
        "config": config or {},
        "versions": {},
        "git_revision": None,
    }
    (run / "manifest.json").write_text(json.dumps(manifest))
    for (group, qid), data in answers.items():
        (run / group).mkdir(exist_ok=True)
        (run / group / f"{qid}_CoT@1.json").write_text(json.dumps(data))
    return run


def build_runs(tmp_path: Path) -> tuple[Path, Path]:
    write_benchmark(tmp_path / "bench")
    runs = tmp_path / "runs"
    # Baseline, both groups. G1: q1 solved, q2 solved ("42.0" == "42"), q3 gave up, q4 missing: 50.0.
    # G2: q5 solved ("7.00" == "7"), q6 stopped without Finish: 50.0.
    base = write_run(
        runs,
        "base",
        buckets=None,
        groups=["G1_instruction", "G2_category"],
        answers={
            ("G1_instruction", "1"): raw_answer("Question 1?", "Paris, 21.50 degrees", calls=2),
            ("G1_instruction", "2"): raw_answer("Question 2?", "The answer is 42.0", calls=1),
            ("G1_instruction", "3"): raw_answer("Question 3?", None, give_up=True),
            ("G2_category", "5"): raw_answer("Question 5?", "It is 7.00", calls=1),
            ("G2_category", "6"): raw_answer("Question 6?", None, calls=3),
        },
    )
    # Buckets, G1 only: q1 solved (tie with base: same facts, same calls), q2 wrong (17), q3 "1234" solved,
    # q4 "BLUE!" solved: 75.0. Against base: q1 tie, q2 loss, q3 win, q4 win -> (2 + 0.5) / 4 = 62.5.
    buckets = write_run(
        runs,
        "buckets",
        groups=["G1_instruction"],
        buckets={"bases": [10000.0, 17500.0, 25000.0], "fusion": "max_logit", "source": "explicit"},
        answers={
            ("G1_instruction", "1"): raw_answer("Question 1?", "paris 21.5", calls=2),
            ("G1_instruction", "2"): raw_answer("Question 2?", "The answer is 17", calls=1),
            ("G1_instruction", "3"): raw_answer("Question 3?", "1234 items", calls=4),
            ("G1_instruction", "4"): raw_answer("Question 4?", "BLUE!", calls=1),
        },
    )
    return base, buckets


def test_score_run_numbers_flags_and_stb_files(tmp_path):
    base, _ = build_runs(tmp_path)
    report = score_run(base, RuleJudge(), evaluate_times=3)
    g1, g2 = report.groups["G1_instruction"], report.groups["G2_category"]
    assert (g1.sopr, g1.std, g1.n, g1.n_missing) == (50.0, 0.0, 4, 1)
    assert g1.labels["2"].statuses == [AnswerStatus.Solved] * 3
    assert g1.labels["3"].short_circuit == "gave up (give_up_and_restart)"
    assert g1.labels["4"] == QueryLabels(query_id="4", statuses=[AnswerStatus.Unsolved] * 3,
                                         reasons=["no answer file"] * 3, missing=True, short_circuit="no answer file")
    assert g2.labels["6"].short_circuit == "last step is not Finish"
    assert report.average.sopr == 50.0 and not report.average.complete
    saved = base / "scores" / "pass_rate_rule.json"
    assert json.loads(saved.read_text())["groups"]["G1_instruction"]["labels"]["4"] == {
        "statuses": ["Unsolved"] * 3,
        "reasons": ["no answer file"] * 3,
        "missing": True,
        "short_circuit": "no answer file",
    }
    assert load_report(base / "scores", "rule").dumps() == saved.read_text()  # read back, written again: same bytes

    upstream = score_run(base, RuleJudge(), evaluate_times=3, upstream_denominator=True, save=False)
    assert upstream.groups["G1_instruction"].sopr == pytest.approx(200 / 3)  # 2 of 3 answered
    assert upstream.groups["G1_instruction"].n_missing == 1
    assert upstream.to_json()["denominator"] == "answered queries only (upstream)"

    # StableToolBench-compatible labels: answered queries only, upstream's key spellings.
    stb = json.loads((base / "scores" / "pass_rate_results" / "G1_instruction_tiny.json").read_text())
    assert sorted(stb) == ["1", "2", "3"]
    assert stb["2"]["is_solved"] == {
        "0": "AnswerStatus.Solved",
        "1": "AnswerStatus.Solved",
        "2": "AnswerStatus.Solved",
    }
    assert "'name': 'Finish'" in stb["2"]["final_step"]
    csv_lines = (base / "scores" / "pass_rate_results" / "G1_instruction_tiny.csv").read_text().splitlines()
    assert csv_lines[0].split("\t") == [
        "query",
        "available_tools",
        "model_intermediate_steps",
        "model_final_step",
        "model",
        "query_id",
        "is_solved",
    ]


def test_score_cli_prints_a_table_and_rejects_unknown_groups(tmp_path, capsys):
    base, _ = build_runs(tmp_path)
    assert main(["score", str(base), "--evaluate-times", "1", "--groups", "G2_category"]) == 0
    out = capsys.readouterr().out
    assert "I2-Cat" in out and "50.0" in out and "pass_rate_rule.json" in out
    assert main(["score", str(base), "--groups", "G3_instruction"]) == 2
    assert "the run has no group(s) G3_instruction" in capsys.readouterr().err
    assert main(["score", str(tmp_path)]) == 2  # not a run directory
    assert "no manifest.json" in capsys.readouterr().err


def test_compare_reuses_saved_labels_and_counts_ties_as_half(tmp_path, capsys):
    base, buckets = build_runs(tmp_path)
    score_run(base, RuleJudge(), evaluate_times=3)
    saved = (base / "scores" / "pass_rate_rule.json").read_text()
    report = compare_runs(buckets, base, RuleJudge(), evaluate_times=3)
    assert (base / "scores" / "pass_rate_rule.json").read_text() == saved  # reused, not re-judged
    group = report["groups"]["G1_instruction"]
    assert (group["wins"], group["losses"], group["ties"], group["win_rate"]) == (2, 1, 1, 62.5)
    assert group["queries"]["1"]["decided_by"] == "judge" and group["queries"]["1"]["outcome"] == "tie"
    assert group["queries"]["4"]["reference_status"] == "Unsolved"  # missing in the reference
    assert group["decided_by_status"] == 3
    stb = json.loads(
        (buckets / "scores" / "preference_results" / "G1_instruction_base_buckets.json").read_text()
    )
    assert stb["3"] == {
        "base": 0,
        "buckets": 3,
        "round_0": "complete",
        "round_1": "complete",
        "round_2": "complete",
    }

    assert main(["compare", str(buckets), "--reference", str(base), "--ties-as-zero"]) == 0
    assert "50.0" in capsys.readouterr().out


def test_export_matches_the_golden_tables_and_draws_plots(tmp_path):
    base, buckets = build_runs(tmp_path)
    out = tmp_path / "leaderboard" / "demo"
    written = export_leaderboard(
        [base, buckets],
        out,
        RuleJudge(),
        reference_rows=reference_rows("stabletoolbench")[:2],
        win_reference=base,
    )
    for name in ("leaderboard.csv", "leaderboard.md", "ablation.csv"):
        produced = (out / name).read_text()
        if os.environ.get("TOOLBENCH_EVAL_UPDATE_GOLDEN"):
            (GOLDEN / name).write_text(produced)
        assert produced == (GOLDEN / name).read_text(), name
    for key in ("pass_rate_png", "buckets_png"):
        data = written[key].read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000
        # The same figure as SVG and PDF beside the PNG, for papers.
        assert written[key].with_suffix(".svg").read_bytes().startswith(b"<?xml")
        assert written[key].with_suffix(".pdf").read_bytes().startswith(b"%PDF")
    rows = json.loads((out / "leaderboard.json").read_text())["rows"]
    assert [r["published"] for r in rows] == [False, False, True, True]


def test_export_with_llm_judge_refuses_to_spend_requests(tmp_path, capsys, monkeypatch):
    base, _ = build_runs(tmp_path)
    monkeypatch.setenv("TOOLBENCH_EVAL_JUDGE_KEY", "sk-unused")
    code = main(
        [
            "export",
            str(base),
            "--out",
            str(tmp_path / "lb"),
            "--judge",
            "llm",
            "--judge-base-url",
            "http://127.0.0.1:9/v1",
            "--judge-model",
            "m",
        ]
    )
    assert code == 2
    assert "no saved scores for judge llm-m" in capsys.readouterr().err


def test_a_run_limited_to_the_first_queries_is_scored_on_those_only(tmp_path):
    write_benchmark(tmp_path / "bench")
    answers = {("G1_instruction", "1"): raw_answer("Question 1?", "Paris 21.5")}
    run = write_run(
        tmp_path / "runs",
        "limited",
        buckets=None,
        groups=["G1_instruction"],
        answers=answers,
        config={"limit": 2},
    )
    group = score_run(run, RuleJudge(), evaluate_times=1, save=False).groups["G1_instruction"]
    assert sorted(group.labels) == ["1", "2"] and group.n_missing == 1 and group.sopr == 50.0


# ---------------------------------------------------------------------------------------------
# Figures: paper-sized, every bar with an interval and N, 0 visible, bases sorted, three formats, same bytes


def capture_figures(monkeypatch, module) -> list:
    """Keep every figure `module` saves (drawn state to inspect), still writing its files."""
    figures = []
    real = module.save_figure

    def keep(figure, path):
        figures.append(figure)
        return real(figure, path)

    monkeypatch.setattr(module, "save_figure", keep)
    return figures


def figure_row(run: str, bases: str, means: dict[str, float], *, n: int = 4) -> LeaderboardRow:
    cells = {g: Cell(m, 0.0, (max(0.0, m - 25), min(100.0, m + 25)), n=n, n_missing=0) for g, m in means.items()}
    average = sum(means.values()) / len(means)
    return LeaderboardRow(
        source="this project", run=run, method="react", model=f"m-{run}", bases=bases, judge="rule",
        pass_rate=cells, average=Cell(average, 0.0, (max(0.0, average - 10), average + 10), n=n * len(means)),
        has_buckets=bases != "none",
    )


FIGURE_ROWS = [
    figure_row("none", "none", {"G1_instruction": 50.0, "G2_category": 0.0}),
    figure_row("three", "100000, 180000, 120000", {"G1_instruction": 75.0, "G2_category": 25.0}),
    figure_row("two", "150000, 100000", {"G1_instruction": 0.0, "G2_category": 25.0}),
]


def _bars(axes) -> list:
    from matplotlib.container import BarContainer

    return [bar for c in axes.containers if isinstance(c, BarContainer) for bar in c]


def _whiskers(axes) -> list:
    from matplotlib.container import ErrorbarContainer

    return [c for c in axes.containers if isinstance(c, ErrorbarContainer)]


def test_pass_rate_figure_has_a_bar_interval_and_n_per_cell_and_shows_zeros(tmp_path, monkeypatch):
    from toolbench_eval.scoring import export

    figures = capture_figures(monkeypatch, export)
    png = export.plot_pass_rates(FIGURE_ROWS, tmp_path / "pass_rate.png")
    axes = figures[0].axes[0]
    assert figures[0].get_size_inches()[0] == pytest.approx(6.5)
    # 3 runs x (2 groups + Average), each bar with a whisker reaching its interval's ends.
    assert len(_bars(axes)) == 9
    whiskers = _whiskers(axes)
    assert len(whiskers) == 3
    first_run_segments = whiskers[0].lines[2][0].get_segments()
    assert [(s[0][1], s[1][1]) for s in first_run_segments] == [(25.0, 75.0), (0.0, 25.0), (15.0, 35.0)]
    # N under each group, since every run has the same N there.
    assert [t.get_text() for t in axes.get_xticklabels()] == ["I1-Inst\nn=4", "I2-Cat\nn=4", "Average\nn=8"]
    # Each of the two zero cells has a visible stub on the baseline and its number.
    stubs = [line for line in axes.lines if list(line.get_ydata()) == [0, 0] and line.get_linewidth() >= 2]
    assert len(stubs) == 2
    assert [t.get_text() for t in axes.texts].count("0") == 2
    # The legend sits below the axes (a figure legend), with the bases sorted and short.
    labels = [t.get_text() for t in figures[0].legends[0].get_texts()]
    assert "m-three · react · buckets 100k, 120k, 180k" in labels
    for fmt, magic in (("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")):
        assert png.with_suffix(f".{fmt}").read_bytes().startswith(magic)


def test_buckets_figure_sorts_base_sets_numerically_with_intervals_and_n(tmp_path, monkeypatch):
    from toolbench_eval.scoring import export

    figures = capture_figures(monkeypatch, export)
    shuffled = [FIGURE_ROWS[1], FIGURE_ROWS[0], FIGURE_ROWS[2]]
    assert export.plot_buckets(shuffled, tmp_path / "b.png") is not None
    axes = figures[0].axes[0]
    labels = [t.get_text() for t in axes.get_yticklabels()]
    # No buckets first, then by set size; each set's bases in increasing order.
    assert labels == ["m-none · react\nno buckets", "m-two · react\nbuckets 100k, 150k",
                      "m-three · react\nbuckets 100k, 120k, 180k"]
    assert len(_bars(axes)) == 3 and len(_whiskers(axes)) == 1
    values = [t.get_text() for t in axes.texts]
    assert values[0] == "25.0 [15.0–35.0], n=8"
    assert all("n=8" in v for v in values)
    for fmt in ("svg", "pdf"):
        assert (tmp_path / f"b.{fmt}").stat().st_size > 1000


def test_figures_are_byte_identical_when_drawn_twice(tmp_path):
    from toolbench_eval.scoring.export import plot_buckets, plot_pass_rates

    for name, plot in (("pass_rate", plot_pass_rates), ("buckets", plot_buckets)):
        first = plot(FIGURE_ROWS, tmp_path / "a" / f"{name}.png")
        second = plot(FIGURE_ROWS, tmp_path / "b" / f"{name}.png")
        for fmt in ("png", "svg", "pdf"):
            assert first.with_suffix(f".{fmt}").read_bytes() == second.with_suffix(f".{fmt}").read_bytes(), fmt


def test_rows_read_back_from_leaderboard_json_redraw_the_same_figure(tmp_path):
    from toolbench_eval.scoring.export import json_rows, plot_pass_rates
    from toolbench_eval.scoring.saved_rows import rows_from_leaderboard_json

    saved = tmp_path / "leaderboard.json"
    saved.write_text(json.dumps({"rows": json_rows(FIGURE_ROWS)}))
    assert rows_from_leaderboard_json(saved) == FIGURE_ROWS
    direct = plot_pass_rates(FIGURE_ROWS, tmp_path / "direct.png")
    again = plot_pass_rates(rows_from_leaderboard_json(saved), tmp_path / "again.png")
    assert direct.read_bytes() == again.read_bytes()
