"""Gather a run directory into one JSON-able structure for the report: every query with its verdict, its
trajectory as steps, its diagnosis when unsolved, and its bucket weights when the run recorded them; and, for
two runs, which step each shared query diverges at.

Nothing here writes into the run directory: a run that was never scored is scored with the rule judge in memory.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from toolbench_eval.errors import UserError, located
from toolbench_eval.scoring.labels import AnswerRecord, read_raw_answer
from toolbench_eval.scoring.passrate_report import PassRateReport, load_report, report_path
from toolbench_eval.scoring.rundir import RunInfo, load_queries, load_run
from toolbench_eval.viewer import steps as stepping
from toolbench_eval.viewer.weights import attach_to_steps, read_sidecar

# Bootstrap resamples when scoring in memory: the viewer shows verdicts, not intervals, so a few suffice.
IN_MEMORY_RESAMPLES = 50


def _id_order(query_id: str) -> tuple[int, int, str]:
    return (0, int(query_id), "") if query_id.isdigit() else (1, 0, query_id)


def _finish_text(raw: str) -> str:
    """The `final_answer` inside a Finish call's arguments, or the raw string when it is not that JSON."""
    try:
        parsed = json.loads(raw)
    except (json.JSONDecodeError, TypeError):
        return raw or ""
    if isinstance(parsed, dict) and "final_answer" in parsed:
        return str(parsed["final_answer"])
    return raw


def _events_by_query(run_dir: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """The last `query_finished` or `query_failed` event of each query (a re-run's attempt wins)."""
    from toolbench_eval.jsonl import read_append_log

    path = run_dir / "events.jsonl"
    if not path.is_file():
        return {}
    last = {}
    for event in read_append_log(path, fix="the event log is damaged: delete that line"):
        if isinstance(event, dict) and event.get("event") in ("query_finished", "query_failed"):
            last[(str(event.get("group")), str(event.get("query_id")))] = event
    return last


def _verdicts(run: RunInfo, judge_id: str, notes: list[str]) -> tuple[PassRateReport | None, str]:
    """The saved pass-rate report; else, for the rule judge, a scoring in memory; else none (unscored)."""
    report = load_report(run.scores_dir, judge_id)
    if report is not None:
        return report, f"{report_path(run.scores_dir, judge_id)}"
    if judge_id != "rule":
        raise UserError(f"{report_path(run.scores_dir, judge_id)} not found: score the run with that judge first "
                        f"(toolbench-eval score {run.path} --judge ...), or view with --judge rule")
    from toolbench_eval.scoring.judges import RuleJudge
    from toolbench_eval.scoring.passrate import score_run

    try:
        report = score_run(run.path, RuleJudge(), evaluate_times=1, resamples=IN_MEMORY_RESAMPLES, save=False)
    except UserError as error:
        notes.append(f"not scored: {error}")
        return None, "unscored"
    return report, "rule judge, scored now (not saved; `toolbench-eval score` saves it)"


def _label(report: PassRateReport | None, group: str, query_id: str) -> tuple[str, str, bool]:
    """(verdict, judge reason, missing) of one query."""
    entry = report.groups.get(group) if report is not None else None
    labels = entry.labels.get(query_id) if entry is not None else None
    if labels is None:
        return "unscored", "", False
    reasons = list(dict.fromkeys(r for r in labels.reasons if r))
    if labels.short_circuit and labels.short_circuit not in reasons:
        reasons.insert(0, labels.short_circuit)
    if labels.infrastructure_error:
        reasons.append(f"infrastructure error: {labels.infrastructure_error}")
    return labels.majority_status().value, "; ".join(reasons), labels.missing


def _trajectory(raw: dict[str, Any]) -> dict[str, Any]:
    """The answer file's trajectory as steps: `tries` (ReAct) or `tree` (DFSDT), the final decision's path
    marked `chosen`, and the steps in the order the model wrote them (for the bucket weights)."""
    generation = raw.get("answer_generation") if isinstance(raw.get("answer_generation"), dict) else {}
    final_answer = str(generation.get("final_answer") or "")
    if isinstance(raw.get("tree"), dict) and isinstance(raw["tree"].get("tree"), dict):
        tree = stepping.tree_steps(raw["tree"]["tree"])
        path = stepping.mark_chosen_path(tree, final_answer)
        in_call_order = stepping.preorder(tree)
        return {"kind": "tree", "tree": tree, "path": path, "in_call_order": in_call_order,
                "tree_steps": len(in_call_order)}
    tries = [stepping.chain_steps(t.get("chain") or []) for t in raw.get("trys") or [] if isinstance(t, dict)]
    path = tries[-1] if tries else []
    for step in path:
        step["chosen"] = True
    in_call_order = [step for steps in tries for step in steps]
    return {"kind": "chain", "tries": tries, "path": path, "in_call_order": in_call_order,
            "tree_steps": len(in_call_order)}


def _diagnoses(run: RunInfo, unsolved: dict[str, dict[str, AnswerRecord | None]],
               notes: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """`diagnose`'s stage for each unsolved query that has LocalToolBench ground truth."""
    from toolbench_eval.scoring.diagnosis import diagnose_answer

    wanted = [group for group, queries in unsolved.items() if queries]
    root = run.manifest.benchmark_root
    if not wanted or not root:
        return {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        benchmark = load_queries(root, wanted, required=False)
    if benchmark is None:
        notes.append(f"no diagnosis: {caught[0].message if caught else 'benchmark not loadable'}")
        return {}
    found = {}
    for group in wanted:
        for query_id, answer in unsolved[group].items():
            query = benchmark.get(group, {}).get(query_id)
            if query is not None and query.ground_truth is not None:
                found[(group, query_id)] = diagnose_answer(query, answer)
    if not found:
        notes.append("no diagnosis: the benchmark has no ground truth (diagnose reads LocalToolBench's)")
    return found


def gather_run(run_dir: str | Path, *, judge_id: str = "rule") -> dict[str, Any]:
    """One run as the report shows it (see the module docstring); internal keys start with `_`."""
    run = load_run(run_dir)
    notes: list[str] = []
    report, verdict_source = _verdicts(run, judge_id, notes)
    events = _events_by_query(run.path)
    queries: list[dict[str, Any]] = []
    unsolved: dict[str, dict[str, AnswerRecord | None]] = {}
    bases: list[Any] = []
    fusion = ""
    for group in run.groups:
        answer_files = {path.name[: -len(f"_{run.method}.json")]: path
                        for path in sorted((run.path / group).glob(f"*_{run.method}.json"))}
        labelled = set(report.groups[group].labels) if report is not None and group in report.groups else set()
        for query_id in sorted(set(answer_files) | labelled, key=_id_order):
            verdict, reason, missing = _label(report, group, query_id)
            event = events.get((group, query_id), {})
            entry: dict[str, Any] = {
                "group": group, "query_id": query_id, "verdict": verdict, "reason": reason,
                "outcome": str(event.get("outcome") or event.get("kind") or ("no answer" if missing else "")),
                "model_calls": event.get("query_count"), "tokens": event.get("total_tokens"),
                "seconds": event.get("seconds"), "query": "", "final_answer": "", "finish_type": None,
                "kind": "none", "steps": 0, "tree_steps": 0, "diagnosis": None, "weights_note": None,
            }
            record = None
            path = answer_files.get(query_id)
            if path is not None:
                try:
                    raw = json.loads(path.read_text(encoding="utf-8"))
                    record = read_raw_answer(path, method=run.method)
                except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
                    raise located(path, f"not a readable answer file ({error}); delete it and re-run the "
                                  "query") from None
                generation = raw.get("answer_generation") or {}
                trajectory = _trajectory(raw)
                entry.update(
                    query=str(generation.get("query", "")), final_answer=_finish_text(record.final_answer_raw),
                    finish_type=record.finish_type, kind=trajectory["kind"], steps=len(trajectory["path"]),
                    tree_steps=trajectory["tree_steps"],
                    model_calls=entry["model_calls"] if entry["model_calls"] is not None
                    else generation.get("query_count"),
                    tokens=entry["tokens"] if entry["tokens"] is not None else generation.get("total_tokens"),
                )
                entry["tries" if trajectory["kind"] == "chain" else "tree"] = trajectory.get(
                    "tries", trajectory.get("tree"))
                entry["_path"] = trajectory["path"]
                weights, problem = read_sidecar(run.path, group, query_id)
                if problem:
                    entry["weights_note"] = problem
                    notes.append(problem)
                elif weights is not None:
                    bases, fusion = weights["bases"], weights["fusion"]
                    if not attach_to_steps(weights, trajectory["in_call_order"]):
                        entry["weights_note"] = (f"{len(weights['calls'])} recorded model calls for "
                                                 f"{len(trajectory['in_call_order'])} steps: paired in order")
            if verdict == "Unsolved":
                unsolved.setdefault(group, {})[query_id] = record
            queries.append(entry)
    by_key = {(q["group"], q["query_id"]): q for q in queries}
    for key, found in _diagnoses(run, unsolved, notes).items():
        by_key[key]["diagnosis"] = found
    counts = Counter(q["verdict"] for q in queries)
    return {
        "run_id": run.run_id, "path": str(run.path), "method": run.method, "method_label": run.method_label,
        "model": run.model_name, "groups": list(run.groups), "judge_id": judge_id, "verdicts_from": verdict_source,
        "counts": dict(counts), "bases": bases or list(run.manifest.bases), "fusion": fusion,
        "has_weights": any(step.get("weights") for q in queries for step in _all_steps(q)),
        "notes": notes, "queries": queries,
    }


def _all_steps(query: dict[str, Any]) -> list[dict[str, Any]]:
    if query["kind"] == "tree":
        return stepping.preorder(query["tree"])
    return [step for steps in query.get("tries", []) for step in steps]


def _call_signature(step: dict[str, Any]) -> tuple[str | None, str]:
    """What a step decided: the function and its arguments, compared as JSON values when they parse (so key
    order and spacing are not a divergence)."""
    arguments = step.get("arguments") or ""
    try:
        arguments = json.dumps(json.loads(arguments), sort_keys=True)
    except json.JSONDecodeError:
        pass
    return step.get("action"), arguments


def first_divergence(path_a: list[dict[str, Any]], path_b: list[dict[str, Any]]) -> int | None:
    """The 0-based index of the first step where two final decisions call something different (or where one
    stops and the other goes on); None when they made the same calls."""
    for index, (a, b) in enumerate(zip(path_a, path_b)):
        if _call_signature(a) != _call_signature(b):
            return index
    return None if len(path_a) == len(path_b) else min(len(path_a), len(path_b))


def compare_runs(run_a: dict[str, Any], run_b: dict[str, Any]) -> dict[str, Any]:
    """Pairs of the queries both runs have, with the step where their final decisions diverge first."""
    index_b = {(q["group"], q["query_id"]): i for i, q in enumerate(run_b["queries"])}
    pairs, only_a = [], []
    for i, query in enumerate(run_a["queries"]):
        key = (query["group"], query["query_id"])
        if key not in index_b:
            only_a.append(f"{key[0]}/{key[1]}")
            continue
        j = index_b.pop(key)
        other = run_b["queries"][j]
        pairs.append({"a": i, "b": j,
                      "diverge": first_divergence(query.get("_path", []), other.get("_path", [])),
                      "same_verdict": query["verdict"] == other["verdict"]})
    only_b = [f"{g}/{q}" for g, q in index_b]
    return {"pairs": pairs, "only_a": only_a, "only_b": only_b}


def view_data(run_dirs: list[str | Path], *, judge_id: str = "rule") -> dict[str, Any]:
    """Everything the report shows: one or two runs, and their comparison when there are two."""
    if not 1 <= len(run_dirs) <= 2:
        raise UserError("view takes one run directory, or two to compare them")
    runs = [gather_run(run_dir, judge_id=judge_id) for run_dir in run_dirs]
    comparison = compare_runs(runs[0], runs[1]) if len(runs) == 2 else None
    for run in runs:
        for query in run["queries"]:
            query.pop("_path", None)  # internal: the report finds the chosen path by its `chosen` marks
    return {"runs": runs, "comparison": comparison}
