"""Win rate of a candidate run against a reference run (StableToolBench's SoWR, corrected).

Per query:

1. Each side's pass status is the majority of its pass-rate labels over rounds (ties between statuses
   read as Unsure); a missing answer is Unsolved. The labels come from the `pass_rate_<judge>.json`
   that `toolbench-eval score` saved; a run without one is scored first (and saved), so nothing that
   is known is judged twice. (Upstream meant to do this but its CSV stores the labels as a
   stringified dict, so it re-judges every pair.)
2. If the statuses differ, the better one (Solved > Unsure > Unsolved) wins every round, no judge call.
3. Otherwise, for each of `evaluate_times` rounds, the judge's `prefer` decides, with the two answers'
   order randomised per round (seeded by seed, group, query id and round, so reproducible under any
   thread schedule). The query's outcome is the majority over rounds: win, loss or tie.

Headline: `win_rate = (wins + 0.5 * ties) / N` over all the candidate's queries (N includes missing
answers). `ties_as_zero=True` gives StableToolBench's `wins / N`. Wins, losses and ties are always
reported separately.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tqdm import tqdm

from toolbench_eval.atomic import write_text_atomic
from toolbench_eval.benchmark.model import GROUP_LABELS, GROUPS, Query
from toolbench_eval.errors import UserError
from toolbench_eval.scoring.judges import Judge
from toolbench_eval.scoring.labels import STATUS_RANK, AnswerRecord, AnswerStatus
from toolbench_eval.scoring.passrate import plain_query, score_run
from toolbench_eval.scoring.passrate_report import PassRateReport, QueryLabels, load_report
from toolbench_eval.scoring.rundir import RunInfo, load_queries, load_run

REPORT_KIND = "toolbench-eval win rate"


def round_swaps(seed: int, group: str, query_id: str, round_index: int) -> bool:
    """Whether round `round_index` shows the reference first (a seeded coin per query and round)."""
    return random.Random(f"{seed}|{group}|{query_id}|{round_index}").random() < 0.5


def query_status(labels: QueryLabels | None) -> AnswerStatus:
    return AnswerStatus.Unsolved if labels is None else labels.majority_status()


def decide_query(
    query: Query,
    candidate: AnswerRecord | None,
    reference: AnswerRecord | None,
    candidate_status: AnswerStatus,
    reference_status: AnswerStatus,
    judge: Judge,
    *,
    evaluate_times: int,
    seed: int,
    group: str,
) -> dict[str, Any]:
    """One query's comparison: which side won each round and the majority outcome."""
    if candidate_status != reference_status:
        winner = "candidate" if STATUS_RANK[candidate_status] > STATUS_RANK[reference_status] else "reference"
        rounds = [winner] * evaluate_times
        decided_by = "status"
    else:
        rounds = []
        for r in range(1 if judge.deterministic else evaluate_times):
            shown = [("candidate", candidate), ("reference", reference)]
            if round_swaps(seed, group, query.query_id, r):
                shown.reverse()
            choice = judge.prefer(query, shown[0][1], shown[1][1], round=r)
            rounds.append({"a": shown[0][0], "b": shown[1][0], "tie": "tie"}[choice])
        if judge.deterministic:
            rounds = rounds * evaluate_times
        decided_by = "judge"
    wins, losses = rounds.count("candidate"), rounds.count("reference")
    outcome = "win" if wins > losses else "loss" if losses > wins else "tie"
    return {
        "candidate_status": candidate_status.value,
        "reference_status": reference_status.value,
        "decided_by": decided_by,
        "rounds": rounds,
        "outcome": outcome,
    }


def summarize(per_query: dict[str, dict[str, Any]], *, ties_as_zero: bool) -> dict[str, Any]:
    """Counts and rates (in %) for one group."""
    n = len(per_query)
    wins = sum(1 for q in per_query.values() if q["outcome"] == "win")
    losses = sum(1 for q in per_query.values() if q["outcome"] == "loss")
    ties = n - wins - losses
    tie_credit = 0.0 if ties_as_zero else 0.5
    return {
        "n": n,
        "wins": wins,
        "losses": losses,
        "ties": ties,
        "win_rate": (wins + tie_credit * ties) / n * 100 if n else None,
        "tie_rate": ties / n * 100 if n else None,
        "decided_by_status": sum(1 for q in per_query.values() if q["decided_by"] == "status"),
    }


def _compare_group(
    group: str,
    *,
    candidate_labels: dict[str, QueryLabels],
    reference_labels: dict[str, QueryLabels],
    candidate_answers: dict[str, AnswerRecord],
    reference_answers: dict[str, AnswerRecord],
    truth: dict[str, Query],
    judge: Judge,
    evaluate_times: int,
    seed: int,
) -> dict[str, dict[str, Any]]:
    """Per-query results for one group; the candidate's labelled queries are the universe."""

    def run_query(qid: str) -> tuple[str, dict[str, Any]]:
        answer = candidate_answers.get(qid) or reference_answers.get(qid)
        return qid, decide_query(
            truth.get(qid) or plain_query(qid, group, answer),
            candidate_answers.get(qid),
            reference_answers.get(qid),
            query_status(candidate_labels.get(qid)),
            query_status(reference_labels.get(qid)),
            judge,
            evaluate_times=evaluate_times,
            seed=seed,
            group=group,
        )

    ids = list(candidate_labels)
    per_query: dict[str, dict[str, Any]] = {}
    with (
        tqdm(total=len(ids), desc=f"compare {group}", unit="query", leave=False) as progress,
        ThreadPoolExecutor(max_workers=max(1, judge.concurrency)) as pool,
    ):
        for qid, result in pool.map(run_query, ids):
            per_query[qid] = result
            progress.update()
    return per_query


def _pass_labels(run: RunInfo, judge: Judge, groups: list[str], evaluate_times: int) -> PassRateReport:
    report = load_report(run.scores_dir, judge.id)
    if report is None or any(g not in report.groups for g in groups):
        report = score_run(run.path, judge, evaluate_times=evaluate_times, groups=groups)
    return report


def compare_runs(
    candidate_dir: str | Path,
    reference_dir: str | Path,
    judge: Judge,
    *,
    evaluate_times: int = 3,
    groups: list[str] | None = None,
    seed: int = 0,
    ties_as_zero: bool = False,
    save: bool = True,
) -> dict[str, Any]:
    """Compare two runs group by group; saves `scores/win_rate_<judge>_vs_<reference-run-id>.json`
    and StableToolBench-style `scores/preference_results/<group>_<ref>_<cand>.json` in the candidate."""
    candidate, reference = load_run(candidate_dir), load_run(reference_dir)
    shared = [g for g in candidate.groups if g in reference.groups]
    chosen = list(groups or shared)
    missing = [g for g in chosen if g not in shared]
    if missing:
        raise UserError(
            f"group(s) {', '.join(missing)} are not in both runs; shared groups: {', '.join(shared)}"
        )
    if not chosen:
        raise UserError(f"{candidate.path} and {reference.path} share no groups")
    judge.use_cache_dir(candidate.scores_dir / "judge_cache")
    candidate_report = _pass_labels(candidate, judge, chosen, evaluate_times)
    reference_report = _pass_labels(reference, judge, chosen, evaluate_times)
    truth = None
    if candidate.manifest.benchmark_root:
        truth = load_queries(candidate.manifest.benchmark_root, chosen, required=judge.needs_ground_truth)

    groups_out: dict[str, Any] = {}
    for group in chosen:
        per_query = _compare_group(
            group,
            candidate_labels=candidate_report.groups[group].labels,
            reference_labels=reference_report.groups[group].labels,
            candidate_answers=candidate.answers(group),
            reference_answers=reference.answers(group),
            truth=(truth or {}).get(group, {}),
            judge=judge,
            evaluate_times=evaluate_times,
            seed=seed,
        )
        groups_out[group] = {
            "label": GROUP_LABELS.get(group, group),
            **summarize(per_query, ties_as_zero=ties_as_zero),
            "queries": per_query,
        }
        if save:
            _write_stb_preference(candidate, reference, group, per_query)

    present = [g for g in chosen if groups_out[g]["win_rate"] is not None]
    report = {
        "kind": REPORT_KIND,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **{side: {"run_id": run.run_id, "run_dir": str(run.path), "model_name": run.model_name}
           for side, run in (("candidate", candidate), ("reference", reference))},
        "judge": judge.describe(),
        "judge_id": judge.id,
        "evaluate_times": evaluate_times,
        "seed": seed,
        "ties": "counted as 0 (StableToolBench)" if ties_as_zero else "counted as 0.5",
        "ties_as_zero": ties_as_zero,
        "groups": groups_out,
        "average": {
            "win_rate": sum(groups_out[g]["win_rate"] for g in present) / len(present) if present else None,
            "tie_rate": sum(groups_out[g]["tie_rate"] for g in present) / len(present) if present else None,
            "groups": present,
            "complete": set(present) >= set(GROUPS),
            "note": "unweighted mean over groups",
        },
    }
    if save:
        path = win_rate_path(candidate.scores_dir, judge.id, reference.run_id)
        write_text_atomic(path, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return report


def win_rate_path(scores_dir: Path, judge_id: str, reference_run_id: str) -> Path:
    return Path(scores_dir) / f"win_rate_{judge_id}_vs_{reference_run_id}.json"


def load_win_report(scores_dir: Path, judge_id: str, reference_run_id: str) -> dict[str, Any] | None:
    path = win_rate_path(scores_dir, judge_id, reference_run_id)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _write_stb_preference(
    candidate: RunInfo, reference: RunInfo, group: str, per_query: dict[str, Any]
) -> None:
    # `{qid: {<ref>: wins, <cand>: wins, "round_<i>": "complete"}}`, as eval_preference.py writes it.
    ref_name, cand_name = reference.model_name, candidate.model_name
    if ref_name == cand_name:  # the two counters would collide; fall back to run ids
        ref_name, cand_name = reference.run_id, candidate.run_id
    entries = {}
    for qid, result in per_query.items():
        entry = {
            ref_name: result["rounds"].count("reference"),
            cand_name: result["rounds"].count("candidate"),
        }
        entry.update({f"round_{i}": "complete" for i in range(len(result["rounds"]))})
        entries[qid] = entry
    path = candidate.scores_dir / "preference_results" / f"{group}_{ref_name}_{cand_name}.json"
    write_text_atomic(path, json.dumps(entries, indent=4, ensure_ascii=False))
