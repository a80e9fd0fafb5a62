"""Leaderboard export: CSV, Markdown and JSON tables plus PNG plots for a set of runs.

Columns follow StableToolBench's order (I1-Inst, I1-Cat, I1-Tool, I2-Inst, I2-Cat, I3-Inst, Average).
A group a run did not include shows as "–"; an average over fewer than six groups is marked `*`.
Every pass rate says how many queries stand behind it (Markdown `50.0±0.0 (n=4, 1 missing)`, CSV and
JSON separate N / missing fields), and every row names its benchmark and protocol. Published rows of
another benchmark than all of our rows go into a table of their own (`reference.same_benchmark`).

Scores come from the files `toolbench-eval score` / `compare` saved. A run without saved scores is
scored on the spot when the judge is `rule` (it is free and deterministic) and saved; with the `llm`
judge export refuses and says which command to run, so exporting never spends API money.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from io import StringIO
from pathlib import Path
from typing import Any

from buckets.figure_style import (
    BUCKETS_COLOR,
    INTERVAL_COLOR,
    NO_BUCKETS_COLOR,
    PALETTE,
    SMALL_FONT_PT,
    bases_sort_key,
    interval_errors,
    mark_zero,
    new_figure,
    paper_style,
    parse_bases,
    save_figure,
    sorted_bases_text,
)
from toolbench_eval.atomic import write_text_atomic
from toolbench_eval.benchmark.model import GROUP_LABELS, GROUPS
from toolbench_eval.errors import UserError
from toolbench_eval.scoring.judges import Judge
from toolbench_eval.scoring.passrate import score_run
from toolbench_eval.scoring.passrate_report import GroupScore, PassRateReport, load_report
from toolbench_eval.scoring.reference import benchmark_identity, published_title, same_benchmark
from toolbench_eval.scoring.rows import Cell, LeaderboardRow
from toolbench_eval.scoring.rundir import RunInfo, load_run
from toolbench_eval.scoring.winrate import compare_runs, load_win_report

DASH = "–"

# Runs made before manifests recorded a protocol ran under our own rules, but nothing proves it.
UNRECORDED_PROTOCOL = "toolbench-eval (unrecorded)"


def format_bases(bases: Sequence[float]) -> str:
    """`none` without buckets, else the bases in order, e.g. `10000, 17500, 25000`.

    >>> format_bases([]), format_bases([10000.0, 17500.0, 1e6])
    ('none', '10000, 17500, 1000000')
    """
    if not bases:
        return "none"
    return ", ".join(f"{b:.0f}" if float(b).is_integer() else f"{b:g}" for b in bases)


def check_one_protocol(rows: Sequence[LeaderboardRow], *, mix_protocols: bool) -> None:
    """Refuse rows of different protocols in one table unless told to: their numbers are not comparable."""
    by_protocol: dict[str, list[str]] = {}
    for row in rows:
        by_protocol.setdefault(row.protocol, []).append(row.run)
    if len(by_protocol) > 1 and not mix_protocols:
        listing = "; ".join(f"{protocol}: {', '.join(runs)}" for protocol, runs in sorted(by_protocol.items()))
        raise UserError(f"these runs used different protocols ({listing}); their pass and win rates are not "
                        "comparable. Export them separately, or pass --mix-protocols to put them in one table "
                        "anyway (the Protocol column then tells them apart)")


def _saved_or_scored(run: RunInfo, judge: Judge, evaluate_times: int) -> PassRateReport:
    report = load_report(run.scores_dir, judge.id)
    if report is not None:
        return report
    if not judge.calls_a_model:
        return score_run(run.path, judge, evaluate_times=evaluate_times)
    raise UserError(
        f"{run.path}: no saved scores for judge {judge.id}; run `toolbench-eval score {run.path} --judge llm "
        "...` first (export never calls an LLM judge)"
    )


def _saved_or_compared(
    run: RunInfo, reference: RunInfo, judge: Judge, evaluate_times: int, ties_as_zero: bool
):
    report = load_win_report(run.scores_dir, judge.id, reference.run_id)
    if report is not None and report.get("ties_as_zero") == ties_as_zero:
        return report
    if not judge.calls_a_model:
        return compare_runs(
            run.path, reference.path, judge, evaluate_times=evaluate_times, ties_as_zero=ties_as_zero
        )
    raise UserError(
        f"{run.path}: no saved win rate vs {reference.run_id} for judge {judge.id}; "
        "run `toolbench-eval compare "
        f"{run.path} --reference {reference.path} --judge llm ...` first"
    )


def _group_cell(group: GroupScore) -> Cell:
    return Cell(group.sopr, group.std, tuple(group.ci95) if group.ci95 else None, n=group.n,
                n_missing=group.n_missing)


def _average_cell(report: PassRateReport) -> Cell | None:
    """The average's cell; its N is the queries of the groups it averages."""
    average = report.average
    if average.sopr is None:
        return None
    averaged = [report.groups[g] for g in average.groups]
    return Cell(average.sopr, average.std, tuple(average.ci95) if average.ci95 else None,
                n=sum(g.n for g in averaged), n_missing=sum(g.n_missing for g in averaged))


def row_for_run(
    run_dir: str | Path,
    judge: Judge,
    *,
    evaluate_times: int = 3,
    win_reference: str | Path | None = None,
    ties_as_zero: bool = False,
) -> LeaderboardRow:
    """A leaderboard row from a run's saved (or, for the rule judge, freshly computed) scores."""
    run = load_run(run_dir)
    report = _saved_or_scored(run, judge, evaluate_times)
    cells = {g: _group_cell(e) for g, e in report.groups.items() if e.sopr is not None}
    win: dict[str, Any] | None = None
    reference_name = None
    if win_reference:
        reference = load_run(win_reference)
        win = _saved_or_compared(run, reference, judge, evaluate_times, ties_as_zero)
        reference_name = f"{reference.run_id} ({reference.model_name} {reference.method_label})"
    return LeaderboardRow(
        source="this project",
        run=run.run_id,
        method=run.method_label,
        model=run.model_name,
        bases=format_bases(run.manifest.bases),
        judge=report.judge_id,
        benchmark=benchmark_identity(run.manifest.benchmark_name, run.manifest.benchmark_root),
        protocol=run.manifest.protocol_label or UNRECORDED_PROTOCOL,
        pass_rate=cells,
        average=_average_cell(report),
        average_complete=report.average.complete,
        win_rate={g: e["win_rate"] for g, e in win["groups"].items() if e["win_rate"] is not None}
        if win
        else {},
        win_average=win["average"]["win_rate"] if win else None,
        win_tie_rate=win["average"]["tie_rate"] if win else None,
        win_reference=reference_name,
        missing_answers=report.missing_answers,
        infrastructure_failures=report.infrastructure_failures,
        missing_in_n=not report.upstream_denominator,
        has_buckets=bool(run.manifest.bases),
    )


# ---------------------------------------------------------------------------------------------
# Tables

GROUP_COLUMNS = [GROUP_LABELS[g] for g in GROUPS]


def _with_size(text: str, cell: Cell) -> str:
    """`text` followed by the cell's `(n=…)`, when N is known."""
    size = cell.size_text()
    return f"{text} {size}" if size else text


def _group_text(row: LeaderboardRow, group: str) -> str:
    """A Markdown cell: `50.0±0.0 (n=4, 1 missing)`, or `–` for a group not run."""
    cell = row.pass_rate.get(group)
    return _with_size(cell.text(), cell) if cell else DASH


def _average_text_bare(row: LeaderboardRow) -> str:
    """`50.0±0.0*`: the average, `*` when it covers fewer than six groups."""
    if row.average is None:
        return DASH
    return row.average.text() + ("" if row.average_complete else "*")


def _average_text(row: LeaderboardRow) -> str:
    """`50.0±0.0* (n=6, 1 missing)`."""
    return _with_size(_average_text_bare(row), row.average) if row.average else DASH


def _interval_text(cell: Cell | None) -> str:
    """A bootstrap interval with its N: `25.0–100.0 (n=4)`."""
    if cell is None or not cell.ci95:
        return DASH
    return _with_size(f"{cell.ci95[0]:.1f}–{cell.ci95[1]:.1f}", cell)


def _number(value: float | None) -> str:
    return DASH if value is None else f"{value:.1f}"


def _count(value: int | None) -> str:
    return DASH if value is None else str(value)


def _csv_cell(cell: Cell | None) -> list[str]:
    """Pass rate, std, N and missing answers: numbers only, `–` where absent or unknown."""
    if cell is None:
        return [DASH] * 4
    return [_number(cell.mean), _number(cell.std), _count(cell.n), _count(cell.n_missing)]


def csv_text(rows: Sequence[LeaderboardRow]) -> str:
    """One line per row; each group and the average have pass-rate, std, N and missing columns."""
    header = ["Source", "Benchmark", "Protocol", "Run", "Method", "Model", "Bases", "Judge"]
    for label in [*GROUP_COLUMNS, "Average"]:
        header += [label, f"{label} std", f"{label} N", f"{label} missing"]
    header += ["Average groups", "Win rate", "Tie rate", "Win reference", "Missing answers"]
    buffer = StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        line = [row.source, row.benchmark, row.protocol, row.run, row.method, row.model, row.bases, row.judge]
        for group in GROUPS:
            line += _csv_cell(row.pass_rate.get(group))
        line += _csv_cell(row.average)
        line += [
            "6" if row.average_complete else str(len(row.pass_rate)),
            _number(row.win_average),
            _number(row.win_tie_rate),
            row.win_reference or DASH,
            _count(row.missing_answers),
        ]
        writer.writerow(line)
    return buffer.getvalue()


def _markdown_table(header: list[str], lines: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |" for line in lines]
    return out


def _ablation_rows(rows: Sequence[LeaderboardRow]) -> list[LeaderboardRow]:
    """Our runs, ordered so that the base sets of one model and method sit together."""
    return sorted(
        (r for r in rows if not r.published), key=lambda r: (r.model, r.method, r.has_buckets, r.bases)
    )


ABLATION_KEYS = ["Bases", "Model", "Method", "Benchmark", "Protocol", "Run"]


def _ablation_keys(row: LeaderboardRow) -> list[str]:
    return [row.bases, row.model, row.method, row.benchmark, row.protocol, row.run]


def ablation_lines(rows: Sequence[LeaderboardRow]) -> tuple[list[str], list[list[str]]]:
    """Markdown: rows = base sets (with model and method), columns = groups and Average, N inline."""
    header = [*ABLATION_KEYS, *GROUP_COLUMNS, "Average"]
    lines = [
        [*_ablation_keys(r), *[_group_text(r, g) for g in GROUPS], _average_text(r)]
        for r in _ablation_rows(rows)
    ]
    return header, lines


def ablation_csv_text(rows: Sequence[LeaderboardRow]) -> str:
    """The ablation as CSV: each group's `mean±std` text, then its N in a column of its own."""
    header = [*ABLATION_KEYS]
    for label in [*GROUP_COLUMNS, "Average"]:
        header += [label, f"{label} N"]
    buffer = StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in _ablation_rows(rows):
        line = _ablation_keys(row)
        for group in GROUPS:
            cell = row.pass_rate.get(group)
            line += [cell.text(), _count(cell.n)] if cell else [DASH, DASH]
        average = row.average
        line += [_average_text_bare(row), _count(average.n)] if average else [DASH, DASH]
        writer.writerow(line)
    return buffer.getvalue()


def split_reference_rows(
    rows: Sequence[LeaderboardRow],
) -> tuple[list[LeaderboardRow], dict[str, list[LeaderboardRow]]]:
    """Our rows with the published rows of their benchmark, and the other published rows by benchmark.

    Published figures may only stand beside ours when every one of our rows ran the same benchmark:
    a column of numbers reads as comparable, whatever a footnote says."""
    ours = [r for r in rows if not r.published]
    together: list[LeaderboardRow] = []
    apart: dict[str, list[LeaderboardRow]] = {}
    for row in rows:
        if not row.published or same_benchmark(row, ours):
            together.append(row)
        else:
            apart.setdefault(row.benchmark, []).append(row)
    return together, apart


def _leaderboard_table(rows: Sequence[LeaderboardRow]) -> list[str]:
    """The main table: one line per row, pass rates with their N, benchmark and protocol named."""
    has_win = any(r.win_average is not None for r in rows)
    header = [
        "Source",
        "Benchmark",
        "Protocol",
        "Method",
        "Model",
        "Bases",
        "Judge",
        *GROUP_COLUMNS,
        "Average",
    ]
    header += ["Win rate"] if has_win else []
    lines = []
    for row in rows:
        line = [
            "published" if row.published else "ours",
            row.benchmark,
            row.protocol,
            row.method,
            row.model,
            row.bases,
            row.judge,
            *[_group_text(row, g) for g in GROUPS],
            _average_text(row),
        ]
        if has_win:
            line.append(_number(row.win_average))
        lines.append(line)
    return _markdown_table(header, lines)


def markdown_text(rows: Sequence[LeaderboardRow], *, title: str, notes: Sequence[str] = ()) -> str:
    """The leaderboard, the bootstrap intervals and the ablation, with the rules stated under them."""
    together, apart = split_reference_rows(rows)
    out = [f"# {title}", "", *_leaderboard_table(together), ""]
    out.append(
        "Pass rate: StableToolBench SoPR in %, (Solved + 0.5 × Unsure) / N per evaluation round, "
        "mean ± population std over rounds. Average: unweighted mean of the group pass rates, "
        "± the mean of the group stds; `*` marks an average over fewer than six groups. "
        "`(n=…)`: the queries behind the number (for the average, all its groups'), with the answers "
        "that were missing; published sources do not give N. `–`: group not run."
    )
    for note in notes:
        out.append("")
        out.append(note)
    for benchmark, published in apart.items():
        out += ["", f"## {published_title(benchmark)}", "", *_leaderboard_table(published)]
    ours = [r for r in rows if not r.published]
    if ours:
        out += ["", "## 95% bootstrap intervals (queries resampled)", ""]
        ci_lines = [
            [row.run, *[_interval_text(row.pass_rate.get(g)) for g in GROUPS], _interval_text(row.average)]
            for row in ours
        ]
        out += _markdown_table(["Run", *GROUP_COLUMNS, "Average"], ci_lines)
        header, ablation = ablation_lines(rows)
        out += ["", "## Ablation over base sets", "", *_markdown_table(header, ablation)]
    if any(r.win_rate for r in ours):
        out += ["", "## Win rate by group", ""]
        win_lines = [
            [
                r.run,
                r.win_reference or DASH,
                *[_number(r.win_rate.get(g)) for g in GROUPS],
                _number(r.win_average),
                _number(r.win_tie_rate),
            ]
            for r in ours
            if r.win_rate
        ]
        out += _markdown_table(["Run", "Reference", *GROUP_COLUMNS, "Average", "Tie rate"], win_lines)
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------
# Plots


# Every figure: a 6.5 in wide page, fonts of 8 pt and more, PNG + SVG + PDF (`buckets.figure_style`).


def _figure_run_label(row: LeaderboardRow) -> str:
    """`model · method · buckets 100k, 120k, 180k`: the bases sorted and short, as a reader compares them."""
    bases = parse_bases(row.bases) if row.bases != DASH else ()
    return f"{row.model} · {row.method}" + (f" · buckets {sorted_bases_text(bases)}" if bases else "")


def _cell_for(row: LeaderboardRow, column: str) -> Cell | None:
    cell = row.average if column == "Average" else row.pass_rate.get(column)
    return cell if cell is not None and cell.mean is not None else None


def _interval_kind(cells: Sequence[Cell]) -> str | None:
    """What the whiskers show: the bootstrap interval when every cell has one, else ± std when every
    cell has one, else nothing (never a mix, so one caption describes every whisker)."""
    if cells and all(c.ci95 for c in cells):
        return "ci95"
    if cells and all(c.std is not None for c in cells):
        return "std"
    return None


def _interval(cell: Cell, kind: str | None) -> tuple[float, float]:
    if kind == "ci95" and cell.ci95:
        return cell.ci95[0], cell.ci95[1]
    if kind == "std" and cell.std is not None:
        return max(0.0, cell.mean - cell.std), min(100.0, cell.mean + cell.std)
    return cell.mean, cell.mean


INTERVAL_CAPTIONS = {
    "ci95": "whiskers: 95% bootstrap CI over queries",
    "std": "whiskers: ± std over evaluation rounds",
    None: "no interval recorded",
}


def _sizes_text(sizes: Sequence[int | None]) -> str:
    """`n=20`, `n=10/20` for differing sizes, `n=?` where the rows do not record N."""
    if not sizes or any(s is None for s in sizes):
        return "n=?"
    return "n=" + "/".join(str(s) for s in sorted(set(sizes)))


def plot_pass_rates(rows: Sequence[LeaderboardRow], path: Path) -> Path:
    """Grouped bars: one cluster per group (plus Average), one bar per run, an interval whisker on every
    bar, 0 drawn as a stub with its number, N under each group (or per run in the legend when runs
    differ), the legend below the axes. Writes PNG, SVG and PDF; returns the PNG path."""
    ours = [r for r in rows if not r.published]
    columns = [g for g in GROUPS if any(g in r.pass_rate for r in ours)]
    columns += ["Average"] if any(r.average is not None for r in ours) else []
    kind = _interval_kind([c for r in ours for c in (_cell_for(r, col) for col in columns) if c])
    # N per column when every run has the same N there; else each run's N goes into its legend entry.
    column_sizes = {col: {(_cell_for(r, col) or Cell(None)).n for r in ours if _cell_for(r, col)} for col in columns}
    uniform = all(len(sizes) == 1 and None not in sizes for sizes in column_sizes.values())
    unknown = all(sizes == {None} for sizes in column_sizes.values())  # rows read back from an old export
    width = min(0.3, 0.82 / max(1, len(ours)))  # few runs: narrow bars rather than slabs
    with paper_style():
        figure = new_figure(2.7 + 0.17 * len(ours))
        axes = figure.add_subplot()
        for index, row in enumerate(ours):
            color = PALETTE[index % len(PALETTE)]
            positions, heights, lows, highs = [], [], [], []
            for column_index, column in enumerate(columns):
                cell = _cell_for(row, column)
                if cell is None:
                    continue  # a group this run did not include: no bar
                low, high = _interval(cell, kind)
                positions.append(column_index + (index - (len(ours) - 1) / 2) * width)
                heights.append(cell.mean)
                lows.append(low)
                highs.append(high)
            label = _figure_run_label(row)
            if not uniform and not unknown:
                sizes = [c.n for c in (_cell_for(row, g) for g in columns if g != "Average") if c]
                label += f" ({_sizes_text(sizes)} per group)"
            axes.bar(positions, heights, width * 0.92, color=color, label=label, zorder=2)
            if kind:
                axes.errorbar(positions, heights, yerr=interval_errors(heights, lows, highs), fmt="none",
                              ecolor=INTERVAL_COLOR, elinewidth=0.8, zorder=3)
            for x, height in zip(positions, heights):
                if height == 0:
                    mark_zero(axes, x, width * 0.92, color)
                    axes.text(x, 1.5, "0", ha="center", va="bottom", fontsize=SMALL_FONT_PT, zorder=4)
        labels = [GROUP_LABELS.get(c, c) for c in columns]
        if uniform:
            labels = [f"{label}\n{_sizes_text(sorted(column_sizes[c]))}" for label, c in zip(labels, columns)]
        axes.set_xticks(range(len(columns)), labels)
        if "Average" in columns and len(columns) > 1:
            axes.axvline(len(columns) - 1.5, color="#BBBBBB", linewidth=0.6, zorder=1)
        axes.set_xlim(-0.55, len(columns) - 0.45)
        axes.set_ylim(0, 104)  # a little above 100, so an interval ending at 100 shows its cap
        axes.set_yticks(range(0, 101, 20))
        axes.spines["left"].set_bounds(0, 100)
        axes.grid(axis="y", zorder=0)
        axes.set_ylabel("pass rate (SoPR, %)")
        sizes_note = "; n not recorded" if unknown else ""
        axes.set_title(f"Pass rate by group ({INTERVAL_CAPTIONS[kind]}{sizes_note})", loc="left")
        longest = max((len(_figure_run_label(r)) for r in ours), default=0)
        figure.legend(loc="outside lower center", ncol=2 if longest <= 45 and len(ours) > 1 else 1,
                      handlelength=1.2, columnspacing=1.5)
        return save_figure(figure, path)


def _buckets_sort_key(row: LeaderboardRow) -> tuple:
    """Method first, then no buckets before buckets, then base sets by size and value (numerically)."""
    return (row.method, bases_sort_key(row.bases if row.bases != DASH else ()), row.model, row.run)


def plot_buckets(rows: Sequence[LeaderboardRow], path: Path) -> Path | None:
    """Average pass rate per run as horizontal bars (long run names stay readable), runs with Attention
    Buckets next to runs without, base sets sorted numerically, each bar with its interval, value and N.
    None if the runs are not a mix of both. Writes PNG, SVG and PDF; returns the PNG path."""
    ours = [r for r in rows if not r.published and r.average is not None and r.average.mean is not None]
    if not (any(r.has_buckets for r in ours) and any(not r.has_buckets for r in ours)):
        return None
    ours.sort(key=_buckets_sort_key)
    cells = [r.average for r in ours]
    kind = _interval_kind(cells)
    means = [c.mean for c in cells]
    intervals = [_interval(c, kind) for c in cells]
    colors = [BUCKETS_COLOR if r.has_buckets else NO_BUCKETS_COLOR for r in ours]
    labels = [
        f"{r.model} · {r.method}\n" + (f"buckets {sorted_bases_text(r.bases)}" if r.has_buckets else "no buckets")
        for r in ours
    ]
    from matplotlib.patches import Patch

    with paper_style():
        figure = new_figure(1.0 + 0.42 * len(ours))
        axes = figure.add_subplot()
        positions = list(range(len(ours)))
        axes.barh(positions, means, 0.7, color=colors, zorder=2)
        if kind:
            axes.errorbar(means, positions, xerr=interval_errors(means, *zip(*intervals)), fmt="none",
                          ecolor=INTERVAL_COLOR, elinewidth=0.8, zorder=3)
        for y, (mean, (low, high), cell, color) in enumerate(zip(means, intervals, cells, colors)):
            if mean == 0:
                mark_zero(axes, y, 0.7, color, horizontal=True)
            interval = f" [{low:.1f}–{high:.1f}]" if kind == "ci95" else ""
            axes.text(max(high, mean) + 1.5, y, f"{mean:.1f}{interval}, {_sizes_text([cell.n])}",
                      va="center", fontsize=SMALL_FONT_PT)
        axes.set_yticks(positions, labels)
        axes.invert_yaxis()  # first run on top, as in the table
        axes.set_xlim(0, 130)  # room right of 100 for the value text
        axes.set_xticks(range(0, 101, 20))
        axes.spines["bottom"].set_bounds(0, 100)
        axes.grid(axis="x", zorder=0)
        axes.set_xlabel(f"average pass rate over the groups run (SoPR, %)\n{INTERVAL_CAPTIONS[kind]}; n = queries")
        # A figure title, left-aligned: an axes title would start at the bars and run off the page.
        figure.suptitle("Average pass rate with and without Attention Buckets", x=0.01, ha="left")
        figure.legend(handles=[Patch(color=BUCKETS_COLOR, label="with Attention Buckets"),
                               Patch(color=NO_BUCKETS_COLOR, label="without")],
                      loc="outside lower center", ncol=2)
        return save_figure(figure, path)


# ---------------------------------------------------------------------------------------------
# Entry point


def _notes(
    rows: Sequence[LeaderboardRow],
    reference_rows: Sequence[LeaderboardRow],
    *,
    win_reference,
    ties_as_zero: bool,
) -> list[str]:
    """The rules under the table: win-rate reference, where published rows come from, missing answers."""
    notes = []
    if win_reference:
        ties = "0 (StableToolBench)" if ties_as_zero else "0.5"
        notes.append(
            f"Win rate: against run {rows[0].win_reference}; ties count {ties}; unweighted mean over groups."
        )
    if reference_rows:
        sources = sorted({r.source.split(": ", 1)[-1] for r in reference_rows})
        apart = split_reference_rows([*rows, *reference_rows])[1]
        notes.append(
            "Published rows are the upstream authors' figures, not our measurements (from "
            + "; ".join(sources)
            + "). Their judges, tool backends and dates differ from ours, and "
            "their win rates are against their own reference (ChatGPT CoT / ReAct)."
            + (" Figures of a benchmark our runs did not use stand in a table of their own." if apart else "")
        )
    missing = sum(r.missing_answers or 0 for r in rows)
    upstream = [r.run for r in rows if r.missing_in_n is False]
    notes.append(f"Missing answers count as Unsolved and stay in N ({missing} missing across our runs).")
    outage = {r.run: r.infrastructure_failures for r in rows if r.infrastructure_failures}
    if outage:
        notes.append("Of those, queries whose tool server or model server was unavailable (infrastructure failures, "
                     "not the model's; re-running the run retries them): "
                     + ", ".join(f"{run} {count}" for run, count in outage.items()) + ".")
    if upstream:
        notes[-1] += (
            " Runs scored with --upstream-denominator leave their missing answers out of N, as upstream "
            f"does: {', '.join(upstream)}."
        )
    return notes


def json_rows(rows: Sequence[LeaderboardRow]) -> list[dict[str, Any]]:
    """Rows for leaderboard.json; `table` says where the Markdown puts each (`leaderboard`, or the
    title of a table of published figures from another benchmark)."""
    together, _ = split_reference_rows(rows)
    kept = {id(r) for r in together}
    return [
        {**r.to_json(), "table": "leaderboard" if id(r) in kept else published_title(r.benchmark)}
        for r in rows
    ]


def export_leaderboard(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path,
    judge: Judge,
    *,
    reference_rows: Sequence[LeaderboardRow] = (),
    win_reference: str | Path | None = None,
    evaluate_times: int = 3,
    ties_as_zero: bool = False,
    plots: bool = True,
    mix_protocols: bool = False,
) -> dict[str, Path]:
    """Write `leaderboard.{csv,md,json}`, `ablation.{csv,md}` and PNG plots into `out_dir`.

    Runs of different protocols are refused unless `mix_protocols` (published reference rows, made by
    upstream's own code, are kept apart by `_notes`/benchmark rules, not by this check)."""
    if not run_dirs:
        raise UserError("export needs at least one run directory")
    out = Path(out_dir)
    rows = [
        row_for_run(
            d, judge, evaluate_times=evaluate_times, win_reference=win_reference, ties_as_zero=ties_as_zero
        )
        for d in run_dirs
    ]
    check_one_protocol(rows, mix_protocols=mix_protocols)
    all_rows = [*rows, *reference_rows]
    notes = _notes(rows, reference_rows, win_reference=win_reference, ties_as_zero=ties_as_zero)
    # `ablate` exports into `<grid out>/leaderboard/`: the grid's folder names the table better.
    name = out.parent.name if out.name == "leaderboard" and out.parent.name else out.name
    written = {
        "csv": out / "leaderboard.csv",
        "markdown": out / "leaderboard.md",
        "json": out / "leaderboard.json",
        "ablation_csv": out / "ablation.csv",
        "ablation_markdown": out / "ablation.md",
    }
    write_text_atomic(written["csv"], csv_text(all_rows))
    write_text_atomic(written["markdown"], markdown_text(all_rows, title=f"Leaderboard: {name}", notes=notes))
    write_text_atomic(
        written["json"],
        json.dumps({"name": name, "notes": notes, "rows": json_rows(all_rows)}, indent=2, ensure_ascii=False)
        + "\n",
    )
    header, lines = ablation_lines(rows)
    write_text_atomic(written["ablation_csv"], ablation_csv_text(rows))
    write_text_atomic(written["ablation_markdown"], "\n".join(_markdown_table(header, lines)) + "\n")
    if plots:
        written["pass_rate_png"] = plot_pass_rates(rows, out / "pass_rate.png")
        buckets = plot_buckets(rows, out / "buckets_vs_none.png")
        if buckets:
            written["buckets_png"] = buckets
    return written
