"""Pass rate as StableToolBench's Solvable Pass Rate (SoPR), per group and averaged.

For each query and each evaluation round r the judge gives Solved / Unsure / Unsolved (1 / 0.5 / 0);
round r's pass rate is the sum over queries divided by N; the report gives the mean over rounds x 100,
the population std over rounds x 100 and a bootstrap 95% interval over queries (`stats`).

Differences from upstream, on purpose and switchable:

* **Denominator.** A query with no answer file counts as Unsolved and stays in N (so a crashed run
  cannot look better). Upstream drops it from N; `upstream_denominator=True` does the same. The
  number of missing answers is always reported.
* **Infrastructure failures.** A query whose last attempt failed because a tool server or the model's
  server was unavailable (`query_failed` with `kind: infrastructure_error` in `events.jsonl`, and no
  answer file) is missing like any other, and is also counted and labelled as such
  (`n_infrastructure_error`), so an outage never reads as the model's failure without saying so.
* **Universe.** N is the benchmark's queries for the group, or the subset the run was asked for
  (the manifest's `query_ids`, or the first `config.limit` queries); answers for ids outside it are
  ignored and counted as `unexpected`, like upstream's `test_ids` filter.

Short-circuits are upstream's (`labels.short_circuit`): missing answer, last step not Finish, empty
final answer, give-up: Unsolved in every round without asking the judge.

Outputs, under `RUN_DIR/scores/`: `pass_rate_<judge-id>.json` (our report, `PassRateReport`: settings,
per-group numbers, every label and reason) and StableToolBench-compatible `pass_rate_results/<group>_<model>.json`
and `.csv` (the most recent scoring's labels, in upstream's layout, answered queries only).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from io import StringIO
from pathlib import Path
from typing import Any

from tqdm import tqdm

from toolbench_eval.atomic import write_text_atomic
from toolbench_eval.benchmark.model import GROUP_LABELS, GROUPS, Query
from toolbench_eval.errors import UserError, located
from toolbench_eval.scoring import stats
from toolbench_eval.scoring.judges import Judge
from toolbench_eval.scoring.labels import AnswerRecord, AnswerStatus, read_converted, short_circuit
from toolbench_eval.scoring.passrate_report import AverageScore, GroupScore, PassRateReport, QueryLabels
from toolbench_eval.scoring.rundir import RunInfo, load_queries, load_run

# ---------------------------------------------------------------------------------------------
# Labelling


def label_queries(
    queries: dict[str, Query],
    answers: dict[str, AnswerRecord],
    judge: Judge,
    *,
    evaluate_times: int,
    description: str = "judging",
) -> dict[str, QueryLabels]:
    """Judge every query of `queries` `evaluate_times` times (fewer calls when short-circuited or
    when the judge is deterministic)."""
    labels: dict[str, QueryLabels] = {}
    pending: list[tuple[str, int]] = []
    for qid in queries:
        answer = answers.get(qid)
        reason = short_circuit(answer)
        if reason is not None:
            labels[qid] = QueryLabels(
                query_id=qid,
                statuses=[AnswerStatus.Unsolved] * evaluate_times,
                reasons=[reason] * evaluate_times,
                missing=answer is None,
                short_circuit=reason,
            )
            continue
        labels[qid] = QueryLabels(query_id=qid, statuses=[AnswerStatus.Unsure] * evaluate_times,
                                  reasons=[""] * evaluate_times)
        rounds = 1 if judge.deterministic else evaluate_times
        pending.extend((qid, r) for r in range(rounds))

    def run_one(task: tuple[str, int]):
        qid, round_index = task
        return qid, round_index, judge.judge(queries[qid], answers[qid], round=round_index)

    with (
        tqdm(total=len(pending), desc=description, unit="judgement", disable=not pending, leave=False) as progress,
        ThreadPoolExecutor(max_workers=max(1, judge.concurrency)) as pool,
    ):
        for qid, round_index, verdict in pool.map(run_one, pending):
            progress.update()
            for r in range(evaluate_times) if judge.deterministic else [round_index]:
                labels[qid].statuses[r] = verdict.status
                labels[qid].reasons[r] = verdict.reason
                labels[qid].malformed += int(verdict.malformed)
    return labels


# ---------------------------------------------------------------------------------------------
# Summaries


def summarize_group(
    labels: dict[str, QueryLabels],
    *,
    evaluate_times: int,
    upstream_denominator: bool = False,
    resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
    label: str = "",
    unexpected: Iterable[str] = (),
) -> GroupScore:
    """Numbers for one group from its labels (see the module docstring for the rules)."""
    answered = [lab for lab in labels.values() if not lab.missing]
    counted = answered if upstream_denominator else list(labels.values())
    n = len(counted)
    scores = stats.run_scores([lab.values for lab in counted], evaluate_times, n)
    mean, std = stats.sopr(scores) if scores else (None, None)
    interval = stats.bootstrap_ci([lab.score for lab in counted], resamples=resamples, seed=seed)
    return GroupScore(
        n=n,
        n_queries=len(labels),
        n_answered=len(answered),
        n_missing=len(labels) - len(answered),
        n_infrastructure_error=sum(1 for lab in labels.values() if lab.infrastructure_error),
        run_scores=scores,
        sopr=mean,
        std=std,
        ci95=list(interval) if interval else None,
        label_counts={s.value: sum(lab.statuses.count(s) for lab in counted) for s in AnswerStatus},
        short_circuited=sum(1 for lab in counted if lab.short_circuit),
        malformed_judgements=sum(lab.malformed for lab in counted),
        label=label,
        unexpected_answers=sorted(unexpected),
        labels=labels,
    )


def summarize_average(
    group_summaries: Mapping[str, GroupScore],
    group_query_scores: dict[str, list[float]],
    *,
    resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
) -> AverageScore:
    """Unweighted mean of the group SoPRs; ± is the mean of the group stds (StableToolBench)."""
    present = [g for g, s in group_summaries.items() if s.sopr is not None]
    if not present:
        return AverageScore(sopr=None, std=None, ci95=None, groups=[], complete=False)
    interval = stats.stratified_bootstrap_ci(
        [group_query_scores[g] for g in present], resamples=resamples, seed=seed
    )
    return AverageScore(
        sopr=sum(group_summaries[g].sopr for g in present) / len(present),
        std=sum(group_summaries[g].std for g in present) / len(present),
        ci95=list(interval) if interval else None,
        groups=present,
        complete=set(present) >= set(GROUPS),
    )


def build_report(
    labels_by_group: dict[str, dict[str, QueryLabels]],
    *,
    judge: Judge,
    evaluate_times: int,
    upstream_denominator: bool,
    resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
    scored: dict[str, Any],
    unexpected: dict[str, list[str]],
) -> PassRateReport:
    """The report for a set of labelled groups; `scored` says what was scored (see `PassRateReport`)."""
    groups: dict[str, GroupScore] = {}
    query_scores: dict[str, list[float]] = {}
    for group, labels in labels_by_group.items():
        groups[group] = summarize_group(
            labels,
            evaluate_times=evaluate_times,
            upstream_denominator=upstream_denominator,
            resamples=resamples,
            seed=seed,
            label=GROUP_LABELS.get(group, group),
            unexpected=unexpected.get(group, []),
        )
        counted = [lab for lab in labels.values() if not (upstream_denominator and lab.missing)]
        query_scores[group] = [lab.score for lab in counted]
    return PassRateReport(
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        scored=scored,
        judge=judge.describe(),
        judge_id=judge.id,
        evaluate_times=evaluate_times,
        upstream_denominator=upstream_denominator,
        bootstrap={"resamples": resamples, "seed": seed, "confidence": stats.CONFIDENCE, "unit": "query"},
        groups=groups,
        average=summarize_average(groups, query_scores, resamples=resamples, seed=seed),
    )


# ---------------------------------------------------------------------------------------------
# Files


def write_stb_files(
    directory: Path,
    group: str,
    model_name: str,
    labels: dict[str, QueryLabels],
    answers: dict[str, AnswerRecord],
) -> None:
    """StableToolBench's `pass_rate_results/<group>_<model>.json` and `.csv` (tab-separated)."""
    entries: dict[str, Any] = {}
    rows = [
        [
            "query",
            "available_tools",
            "model_intermediate_steps",
            "model_final_step",
            "model",
            "query_id",
            "is_solved",
        ]
    ]
    for qid, lab in labels.items():
        answer = answers.get(qid)
        if answer is None:  # upstream only lists answered queries
            continue
        tool_names = [t.get("function", t).get("name", "") for t in answer.available_tools]
        steps, final_step = answer.steps()
        is_solved = {str(r): str(s) for r, s in enumerate(lab.statuses)}
        entries[qid] = {
            "query": answer.query,
            "tool_names": tool_names,
            "answer_steps": steps,
            "final_step": final_step,
            "is_solved": is_solved,
        }
        # Upstream writes the is_solved dict with Python's str(), int keys included.
        python_dict = "{" + ", ".join(f"{r}: '{s}'" for r, s in enumerate(lab.statuses)) + "}"
        rows.append([answer.query, str(tool_names), steps, final_step, model_name, qid, python_dict])
    stem = Path(directory) / f"{group}_{model_name}"
    write_text_atomic(stem.with_suffix(".json"), json.dumps(entries, indent=4, ensure_ascii=False))
    buffer = StringIO()
    csv.writer(buffer, delimiter="\t").writerows(rows)
    write_text_atomic(stem.with_suffix(".csv"), buffer.getvalue())


# ---------------------------------------------------------------------------------------------
# Entry points


def _events(run_dir: Path) -> list[dict[str, Any]]:
    """The run's events that name a query, oldest first (a torn last line of an interrupted run is skipped)."""
    from toolbench_eval.jsonl import read_append_log

    path = run_dir / "events.jsonl"
    if not path.is_file():
        return []
    events = read_append_log(path, fix="the event log is damaged: delete that line")
    return [event for event in events if isinstance(event, dict) and event.get("query_id") is not None]


def _events_query_ids(run: RunInfo, group: str) -> set[str]:
    return {str(event["query_id"]) for event in _events(run.path) if event.get("group") == group}


def infrastructure_failures(run_dir: Path) -> dict[str, dict[str, str]]:
    """Per group, the query ids whose last attempt in the run failed for infrastructure, with the error text
    (one read of `events.jsonl` for all groups). A later `query_finished` (a re-run that got through) clears
    the mark."""
    failures: dict[str, dict[str, str]] = {}
    for event in _events(run_dir):
        group, qid = str(event.get("group")), str(event["query_id"])
        if event.get("event") == "query_failed" and event.get("kind") == "infrastructure_error":
            failures.setdefault(group, {})[qid] = str(event.get("error", ""))
        elif event.get("event") in ("query_finished", "query_failed"):
            failures.get(group, {}).pop(qid, None)
    return {group: marks for group, marks in failures.items() if marks}


def plain_query(qid: str, group: str, answer: AnswerRecord | None) -> Query:
    return Query(query_id=qid, query=answer.query if answer else "", group=group, api_list=())


def score_run(
    run_dir: str | Path,
    judge: Judge,
    *,
    evaluate_times: int = 3,
    groups: Iterable[str] | None = None,
    upstream_denominator: bool = False,
    resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
    save: bool = True,
) -> PassRateReport:
    """Score a run directory and (by default) save `scores/pass_rate_<judge>.json` + STB files."""
    if evaluate_times < 1:
        raise UserError("--evaluate-times must be at least 1")
    run = load_run(run_dir)
    chosen = list(groups) if groups else list(run.groups)
    unknown = [g for g in chosen if g not in run.groups]
    if unknown:
        raise UserError(
            f"{run.path}: the run has no group(s) {', '.join(unknown)}; it has {', '.join(run.groups)}"
        )
    judge.use_cache_dir(run.scores_dir / "judge_cache")
    needs_truth = judge.needs_ground_truth
    root = run.manifest.benchmark_root
    benchmark = load_queries(root, chosen, required=needs_truth) if root else None
    if benchmark is None and needs_truth:
        raise located(
            run.path / "manifest.json",
            "no benchmark root recorded; the rule judge needs it",
            field="benchmark.root",
        )
    labels_by_group: dict[str, dict[str, QueryLabels]] = {}
    unexpected: dict[str, list[str]] = {}
    answers_by_group: dict[str, dict[str, AnswerRecord]] = {}
    universe_kind = "benchmark"
    outages = infrastructure_failures(run.path)
    for group in chosen:
        answers = run.answers(group)
        answers_by_group[group] = answers
        if benchmark is not None:
            group_queries = benchmark.get(group, {})
            ids = run.manifest.selected_query_ids(group, list(group_queries))
            queries = {
                qid: group_queries.get(qid) or plain_query(qid, group, answers.get(qid)) for qid in ids
            }
        else:
            universe_kind = "answers and events.jsonl (benchmark not loadable)"
            ids = sorted(set(answers) | _events_query_ids(run, group), key=_id_order)
            queries = {qid: plain_query(qid, group, answers.get(qid)) for qid in ids}
        unexpected[group] = [qid for qid in answers if qid not in queries]
        labels_by_group[group] = label_queries(
            queries, answers, judge, evaluate_times=evaluate_times, description=f"{run.run_id} {group}"
        )
        for qid, error in outages.get(group, {}).items():
            label = labels_by_group[group].get(qid)
            if label is not None and label.missing:
                label.infrastructure_error = error
    report = build_report(
        labels_by_group,
        judge=judge,
        evaluate_times=evaluate_times,
        upstream_denominator=upstream_denominator,
        resamples=resamples,
        seed=seed,
        unexpected=unexpected,
        scored={
            "run_id": run.run_id,
            "run_dir": str(run.path),
            "model_name": run.model_name,
            "method": run.method,
            "method_label": run.method_label,
            "buckets": run.manifest.buckets or None,
            "universe": universe_kind,
        },
    )
    if save:
        report.save(run.scores_dir)
        for group, labels in labels_by_group.items():
            write_stb_files(
                run.scores_dir / "pass_rate_results", group, run.model_name, labels, answers_by_group[group]
            )
    return report


def _id_order(qid: str):
    return (0, int(qid), "") if qid.isdigit() else (1, 0, qid)


def score_converted(
    path: str | Path,
    group: str,
    judge: Judge,
    *,
    benchmark: str | None = None,
    test_ids: str | Path | None = None,
    evaluate_times: int = 3,
    upstream_denominator: bool = False,
    resamples: int = stats.DEFAULT_RESAMPLES,
    seed: int = stats.DEFAULT_SEED,
    model_name: str | None = None,
) -> PassRateReport:
    """Score one ToolEval converted file (one group) from elsewhere.

    The universe is, in order of preference: the ids in `test_ids` (a StableToolBench
    `test_query_ids/<group>.json`), the benchmark's queries for `group`, or the file's own entries.
    """
    path = Path(path)
    answers = read_converted(path)
    needs_truth = judge.needs_ground_truth
    if needs_truth and not benchmark:
        raise UserError(
            "the rule judge needs ground truth: pass --benchmark localtoolbench|PATH (or use --judge llm)"
        )
    truth = load_queries(benchmark, [group], required=needs_truth) if benchmark else None
    group_queries = (truth or {}).get(group, {})
    if test_ids:
        try:
            ids = [str(k) for k in json.loads(Path(test_ids).read_text(encoding="utf-8"))]
        except (OSError, json.JSONDecodeError) as error:
            raise located(test_ids, f"cannot read test ids ({error})") from None
    elif truth is not None:
        ids = list(group_queries)
    else:
        ids = list(answers)
    queries = {qid: group_queries.get(qid) or plain_query(qid, group, answers.get(qid)) for qid in ids}
    labels = label_queries(queries, answers, judge, evaluate_times=evaluate_times, description=f"{path.name}")
    return build_report(
        {group: labels},
        judge=judge,
        evaluate_times=evaluate_times,
        upstream_denominator=upstream_denominator,
        resamples=resamples,
        seed=seed,
        unexpected={group: [q for q in answers if q not in queries]},
        scored={"converted_file": str(path), "model_name": model_name or path.parent.name, "method": None},
    )


def format_report(report: PassRateReport) -> str:
    """A plain-text table of a report, for the terminal."""
    lines = [
        (
            f"judge: {report.judge_id}   evaluate_times: {report.evaluate_times}   "
            f"denominator: {report.denominator}"
        ),
        f"{'group':<16}{'N':>6}{'missing':>9}{'SoPR':>8}{'std':>7}{'95% CI':>16}{'malformed':>11}{'infra':>7}",
    ]
    for entry in report.groups.values():
        sopr_text = f"{entry.sopr:.1f}" if entry.sopr is not None else "–"
        std_text = f"{entry.std:.1f}" if entry.std is not None else "–"
        ci = entry.ci95
        ci_text = f"[{ci[0]:.1f}, {ci[1]:.1f}]" if ci else "–"
        lines.append(
            f"{entry.label:<16}{entry.n:>6}{entry.n_missing:>9}{sopr_text:>8}{std_text:>7}{ci_text:>16}"
            f"{entry.malformed_judgements:>11}{entry.n_infrastructure_error or 0:>7}"
        )
    if report.infrastructure_failures:
        lines.append(f"note: {report.infrastructure_failures} queries have no answer because a tool server or the "
                     "model's server was unavailable (column infra); they count as Unsolved here: re-run the run to "
                     "retry them")
    average = report.average
    if average.sopr is not None:
        ci = average.ci95
        scope = "Average" if average.complete else f"Average ({len(average.groups)} groups)"
        lines.append(
            f"{scope:<31}{average.sopr:>8.1f}{average.std:>7.1f}"
            + (f"{f'[{ci[0]:.1f}, {ci[1]:.1f}]':>16}" if ci else "")
        )
    return "\n".join(lines)


def sopr_from_stb_labels(
    data: dict[str, Any], *, evaluate_times: int | None = None, test_ids: Iterable[str] | None = None
) -> dict[str, Any]:
    """Recompute SoPR from a StableToolBench `pass_rate_results/<group>_<model>.json`.

    Upstream's arithmetic: for each run r in `range(evaluate_times)`, a query without a label for r
    scores 0 in that run; N is the number of entries. `evaluate_times` defaults to the highest run
    index found + 1. With `test_ids`, ids absent from the file are added as Unsolved (our denominator).

    >>> first = {"is_solved": {"0": "AnswerStatus.Solved", "1": "AnswerStatus.Unsure"}}
    >>> second = {"is_solved": {"0": "AnswerStatus.Unsolved", "1": "AnswerStatus.Solved"}}
    >>> sopr_from_stb_labels({"1": first, "2": second})["sopr"]
    62.5
    """
    runs: dict[str, dict[int, AnswerStatus]] = {}
    for qid, entry in data.items():
        solved = entry.get("is_solved") if isinstance(entry, dict) else None
        if not isinstance(solved, dict):
            raise UserError(
                f"entry {qid}: no is_solved map; is this a StableToolBench pass_rate_results JSON?"
            )
        try:
            runs[str(qid)] = {int(k): AnswerStatus.parse(v) for k, v in solved.items()}
        except ValueError as error:
            raise UserError(f"entry {qid}: field 'is_solved': {error}") from None
    times = evaluate_times or (1 + max((max(r) for r in runs.values() if r), default=0))
    missing = [q for q in (test_ids or []) if str(q) not in runs]
    values = [[(r[t].value_for_sopr if t in r else 0.0) for t in range(times)] for r in runs.values()]
    values += [[0.0] * times for _ in missing]
    scores = stats.run_scores(values, times, len(values))
    mean, std = stats.sopr(scores) if scores else (None, None)
    return {
        "n": len(values),
        "n_labelled": len(runs),
        "n_missing": len(missing),
        "evaluate_times": times,
        "run_scores": scores,
        "sopr": mean,
        "std": std,
    }
