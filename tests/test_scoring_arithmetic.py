"""SoPR, std, bootstrap CI, win-rate and `sopr` arithmetic on hand-made label sets with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from toolbench_eval.benchmark.model import Query
from toolbench_eval.cli import main
from toolbench_eval.scoring import stats
from toolbench_eval.scoring.labels import AnswerStatus
from toolbench_eval.scoring.passrate import sopr_from_stb_labels, summarize_average, summarize_group
from toolbench_eval.scoring.passrate_report import QueryLabels
from toolbench_eval.scoring.winrate import decide_query, round_swaps, summarize

FIXTURES = Path(__file__).parent / "fixtures" / "scoring"
S, U, X = AnswerStatus.Solved, AnswerStatus.Unsure, AnswerStatus.Unsolved


def labels(rows: dict[str, list[AnswerStatus] | None], runs: int = 3) -> dict[str, QueryLabels]:
    """`None` marks a query without an answer file (Unsolved in every run)."""
    return {
        qid: QueryLabels(query_id=qid, statuses=statuses or [X] * runs, missing=statuses is None)
        for qid, statuses in rows.items()
    }


# Four answered queries and one missing.
# Per run: r0 = 1+0.5+0+1 = 2.5, r1 = 1+1+0+0.5 = 2.5, r2 = 1+0+0+1 = 2.
HAND_MADE = {"a": [S, S, S], "b": [U, S, X], "c": [X, X, X], "d": [S, U, S], "e": None}


def test_sopr_counts_missing_answers_as_unsolved_by_default():
    summary = summarize_group(labels(HAND_MADE), evaluate_times=3)
    assert summary.n == 5 and summary.n_missing == 1 and summary.n_answered == 4
    assert summary.run_scores == pytest.approx([0.5, 0.5, 0.4])
    assert summary.sopr == pytest.approx(140 / 3)  # mean of 50, 50, 40
    assert summary.std == pytest.approx(np.std([50, 50, 40]))  # population std: 4.714
    assert summary.std == pytest.approx(4.7140452)
    assert summary.label_counts == {"Unsure": 2, "Unsolved": 7, "Solved": 6}


def test_upstream_denominator_drops_missing_answers_but_still_reports_them():
    summary = summarize_group(labels(HAND_MADE), evaluate_times=3, upstream_denominator=True)
    assert summary.n == 4 and summary.n_missing == 1
    assert summary.run_scores == pytest.approx([0.625, 0.625, 0.5])
    assert summary.sopr == pytest.approx(175 / 3)


def test_population_std_not_sample_std():
    mean, std = stats.sopr([0.0, 1.0])
    assert (mean, std) == (50.0, 50.0)  # the sample std would be 70.7


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    scores = [1.0] * 30 + [0.0] * 70
    low, high = stats.bootstrap_ci(scores, resamples=2000, seed=0)
    assert low < 30.0 < high
    assert (low, high) == stats.bootstrap_ci(scores, resamples=2000, seed=0)
    spread = list(np.linspace(0.0, 1.0, 37))  # continuous scores: another seed moves the percentiles
    assert stats.bootstrap_ci(spread, seed=0) != stats.bootstrap_ci(spread, seed=1)
    # Normal approximation: 30 ± 1.96 * sqrt(.3 * .7 / 100) * 100 = [21.0, 39.0]
    assert low == pytest.approx(21.0, abs=1.6) and high == pytest.approx(39.0, abs=1.6)
    assert stats.bootstrap_ci([]) is None
    assert stats.bootstrap_ci([0.5, 0.5]) == (50.0, 50.0)


def test_group_average_is_unweighted_and_its_std_is_the_mean_of_group_stds():
    empty = summarize_group({}, evaluate_times=3)  # no queries at all: no pass rate, left out
    groups = {
        "G1_instruction": empty.model_copy(update={"sopr": 60.0, "std": 1.0}),
        "G1_category": empty.model_copy(update={"sopr": 30.0, "std": 3.0}),
        "G3_instruction": empty,
    }
    average = summarize_average(
        groups, {"G1_instruction": [1.0] * 10, "G1_category": [0.0] * 90, "G3_instruction": []}
    )
    assert average.sopr == 45.0 and average.std == 2.0
    assert average.groups == ["G1_instruction", "G1_category"] and not average.complete
    assert average.ci95 == [50.0, 50.0]  # both groups constant: (100 + 0) / 2


def test_stb_labels_json_recomputes_published_style_sopr(capsys):
    data = json.loads((FIXTURES / "stb_labels.json").read_text())
    result = sopr_from_stb_labels(data)
    # 4 entries; r0: S + U + X + S = 2.5; r1: S + S + X + U = 2.5; r2: S + X + X + (no label = 0) = 1.
    assert result["evaluate_times"] == 3 and result["n"] == 4
    assert result["run_scores"] == pytest.approx([0.625, 0.625, 0.25])
    assert result["sopr"] == pytest.approx(50.0)
    assert result["std"] == pytest.approx(np.std([62.5, 62.5, 25.0]))
    with_missing = sopr_from_stb_labels(data, test_ids=["588", "608", "1073", "9", "10"])
    assert with_missing["n"] == 5 and with_missing["n_missing"] == 1
    assert with_missing["sopr"] == pytest.approx(40.0)

    assert main(["sopr", str(FIXTURES / "stb_labels.json")]) == 0
    line = capsys.readouterr().out.splitlines()[1].split()
    assert line[0] == "stb_labels.json" and line[-2:] == ["50.0", "17.7"]


def test_sopr_command_rejects_a_file_without_is_solved(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"1": {"query": "x"}}))
    assert main(["sopr", str(bad)]) == 2
    assert "no is_solved map" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Win rate


class ScriptedPreferences:
    """A judge whose preferences come from a table: (candidate-first?) -> answer."""

    id = "scripted"
    deterministic = False
    concurrency = 1
    needs_ground_truth = False
    calls_a_model = True

    def __init__(self, prefers: str):
        self.prefers = prefers  # "candidate", "reference", "first" (position bias) or "tie"
        self.calls = 0

    def use_cache_dir(self, directory):
        pass

    def prefer(self, query, answer_a, answer_b, *, round=0):
        self.calls += 1
        if self.prefers == "tie":
            return "tie"
        if self.prefers == "first":
            return "a"
        return "a" if answer_a == self.prefers else "b"


QUERY = Query(query_id="7", query="q", group="G1_instruction", api_list=())


def decide(candidate_status, reference_status, judge, times=3):
    return decide_query(
        QUERY,
        "candidate",
        "reference",
        candidate_status,
        reference_status,
        judge,
        evaluate_times=times,
        seed=0,
        group="G1_instruction",
    )


def test_pass_status_decides_without_asking_the_judge():
    judge = ScriptedPreferences("reference")
    assert decide(S, X, judge)["outcome"] == "win"
    assert decide(U, S, judge)["outcome"] == "loss"
    assert decide(U, X, judge)["outcome"] == "win"
    assert judge.calls == 0


def test_equal_status_goes_to_the_judge_with_majority_over_rounds():
    result = decide(S, S, ScriptedPreferences("candidate"))
    assert result == {
        "candidate_status": "Solved",
        "reference_status": "Solved",
        "decided_by": "judge",
        "rounds": ["candidate"] * 3,
        "outcome": "win",
    }
    assert decide(X, X, ScriptedPreferences("tie"))["outcome"] == "tie"


def test_order_is_randomised_per_round_so_position_bias_washes_out():
    swaps = [round_swaps(0, "G1_instruction", "7", r) for r in range(4)]
    assert any(swaps) and not all(swaps)  # this seed gives both orders within four rounds
    result = decide(S, S, ScriptedPreferences("first"), times=4)
    # A judge that always picks the first answer credits whichever side was shown first.
    assert result["rounds"] == ["reference" if s else "candidate" for s in swaps]


def test_win_rate_counts_ties_as_half_unless_asked_for_upstream_zero():
    per_query = {
        "1": {"outcome": "win", "decided_by": "status"},
        "2": {"outcome": "win", "decided_by": "judge"},
        "3": {"outcome": "tie", "decided_by": "judge"},
        "4": {"outcome": "loss", "decided_by": "status"},
    }
    half = summarize(per_query, ties_as_zero=False)
    assert (half["wins"], half["losses"], half["ties"]) == (2, 1, 1)
    assert half["win_rate"] == 62.5 and half["tie_rate"] == 25.0 and half["decided_by_status"] == 2
    assert summarize(per_query, ties_as_zero=True)["win_rate"] == 50.0


def test_majority_status_over_rounds_breaks_ties_to_unsure():
    assert QueryLabels(query_id="1", statuses=[S, S, X]).majority_status() is S
    assert QueryLabels(query_id="1", statuses=[S, X]).majority_status() is U
    assert QueryLabels(query_id="1", statuses=[S, U, X]).majority_status() is U
