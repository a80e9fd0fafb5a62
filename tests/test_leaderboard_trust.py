"""Honest leaderboards and result files ("Trustworthy runs").

- A pass rate says how many queries stand behind it: one query gives 100.0±0.0 and a 100.0–100.0
  interval, which must not read as certainty.
- Every row names its benchmark and protocol (runs from before protocols were recorded say so).
- Published figures stand beside our rows only when our runs used their benchmark.
- Result files (answers, manifests, leaderboards) are ordinary files: 0644 under umask 022, not 0600.

The runs are built with the helpers of `test_scoring_runs` (hand-written answers, rule judge).
"""

from __future__ import annotations

import csv
import json
import os
import stat
from io import StringIO
from pathlib import Path

import pytest
from test_scoring_runs import raw_answer, write_benchmark, write_run

from reasoning.answer import write_answer_file
from toolbench_eval.errors import UserError
from toolbench_eval.runner.manifest import Manifest
from toolbench_eval.runner.rundir import RunDir
from toolbench_eval.scoring.export import export_leaderboard
from toolbench_eval.scoring.judges import RuleJudge
from toolbench_eval.scoring.reference import benchmark_identity, reference_rows

PUBLISHED_TITLE = (
    "Published StableToolBench figures (a different benchmark: not comparable with the rows above)"
)


def one_query_run(tmp_path: Path, run_id: str = "one", **manifest_fields) -> Path:
    """A run limited to the first query of I1-Inst, solved: 100.0±0.0 on N = 1."""
    if not (tmp_path / "bench").exists():
        write_benchmark(tmp_path / "bench")
    run = write_run(
        tmp_path / "runs",
        run_id,
        buckets=None,
        groups=["G1_instruction"],
        answers={("G1_instruction", "1"): raw_answer("Question 1?", "Paris, 21.5", calls=2)},
        config={"limit": 1},
    )
    if manifest_fields:
        manifest_path = run / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        manifest.update(manifest_fields)
        manifest_path.write_text(json.dumps(manifest))
    return run


def export(run_dirs: list[Path], out: Path, **options) -> dict[str, Path]:
    return export_leaderboard(run_dirs, out, RuleJudge(), evaluate_times=1, plots=False, **options)


def csv_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(StringIO(path.read_text(encoding="utf-8"))))


def main_table(markdown: str) -> str:
    """The first table of leaderboard.md: everything before the first `## ` section."""
    return markdown.split("\n## ", 1)[0]


# ---------------------------------------------------------------------------------------------
# N per cell and per row


def test_a_one_query_group_shows_its_n_in_every_format(tmp_path):
    written = export([one_query_run(tmp_path)], tmp_path / "lb")

    markdown = written["markdown"].read_text(encoding="utf-8")
    assert "| 100.0±0.0 (n=1) |" in main_table(markdown)  # the group cell
    assert "| 100.0±0.0* (n=1) |" in main_table(markdown)  # the row's average
    assert "100.0–100.0 (n=1)" in markdown  # the bootstrap interval is not left to look certain

    (row,) = csv_rows(written["csv"])
    assert (row["I1-Inst"], row["I1-Inst N"], row["I1-Inst missing"]) == ("100.0", "1", "0")
    assert (row["Average N"], row["I1-Cat N"]) == ("1", "–")

    (entry,) = json.loads(written["json"].read_text(encoding="utf-8"))["rows"]
    assert entry["pass_rate"]["G1_instruction"]["n"] == 1
    assert entry["average"]["n"] == 1

    ablation = csv_rows(written["ablation_csv"])[0]
    assert (ablation["I1-Inst"], ablation["I1-Inst N"]) == ("100.0±0.0", "1")


def test_missing_answers_show_beside_n(tmp_path):
    write_benchmark(tmp_path / "bench")
    # Limited to two queries; only the first answered: 50.0 on N = 2, one answer missing.
    run = write_run(
        tmp_path / "runs",
        "half",
        buckets=None,
        groups=["G1_instruction"],
        answers={("G1_instruction", "1"): raw_answer("Question 1?", "Paris, 21.5", calls=2)},
        config={"limit": 2},
    )
    written = export([run], tmp_path / "lb")

    assert "50.0±0.0 (n=2, 1 missing)" in written["markdown"].read_text(encoding="utf-8")
    (row,) = csv_rows(written["csv"])
    assert (row["I1-Inst N"], row["I1-Inst missing"], row["Average missing"]) == ("2", "1", "1")


# ---------------------------------------------------------------------------------------------
# Benchmark and protocol columns


def test_every_row_names_its_benchmark_and_protocol(tmp_path):
    old = one_query_run(tmp_path, "old")  # made before manifests recorded a protocol
    new = one_query_run(tmp_path, "new", protocol="stabletoolbench")
    written = export([old, new], tmp_path / "lb", mix_protocols=True)

    header = main_table(written["markdown"].read_text(encoding="utf-8")).splitlines()[2]
    assert header.startswith("| Source | Benchmark | Protocol |")
    by_run = {r["Run"]: r for r in csv_rows(written["csv"])}
    assert (by_run["old"]["Benchmark"], by_run["old"]["Protocol"]) == ("test", "toolbench-eval (unrecorded)")
    assert by_run["new"]["Protocol"] == "stabletoolbench"

    rows = json.loads(written["json"].read_text(encoding="utf-8"))["rows"]
    assert [(r["benchmark"], r["protocol"]) for r in rows] == [
        ("test", "toolbench-eval (unrecorded)"),
        ("test", "stabletoolbench"),
    ]
    ablation_header = written["ablation_markdown"].read_text(encoding="utf-8").splitlines()[0]
    assert "| Benchmark | Protocol |" in ablation_header


def test_export_refuses_runs_of_different_protocols_unless_told(tmp_path):
    ours = one_query_run(tmp_path, "ours", protocol={"name": "toolbench-eval", "label": "toolbench-eval"})
    theirs = one_query_run(tmp_path, "theirs", protocol={"name": "stabletoolbench", "label": "stabletoolbench"})
    tweaked = one_query_run(tmp_path, "tweaked", protocol={"name": "stabletoolbench",
                                                           "label": "stabletoolbench (parser=tolerant)"})
    with pytest.raises(UserError, match=r"different protocols .*stabletoolbench: theirs.*--mix-protocols"):
        export([ours, theirs], tmp_path / "lb")
    with pytest.raises(UserError, match="stabletoolbench \\(parser=tolerant\\): tweaked"):
        export([theirs, tweaked], tmp_path / "lb")
    assert not (tmp_path / "lb").exists()  # refused before anything is written
    written = export([ours, theirs, tweaked], tmp_path / "lb", mix_protocols=True)
    assert [r["Protocol"] for r in csv_rows(written["csv"])] == [
        "toolbench-eval", "stabletoolbench", "stabletoolbench (parser=tolerant)"]
    assert export([theirs], tmp_path / "alone")["csv"].is_file()


@pytest.mark.parametrize(
    ("name", "root", "identity"),
    [
        ("solvable_queries", "/x/StableToolBench/solvable_queries", "stabletoolbench"),
        ("StableToolBench", "/x/StableToolBench/solvable_queries", "stabletoolbench"),
        ("stabletoolbench", "/work/toolbench/stabletoolbench/solvable_queries", "stabletoolbench"),
        ("localtoolbench", "/repo/data/localtoolbench", "localtoolbench"),
        ("data", "/ckpt/ToolBench/data", "toolbench"),
        # A benchmark that merely sits in a folder called "toolbench" is not ToolBench.
        ("lt", "/tmp/toolbench/lt", "lt"),
        ("solvable_queries_example", "/x/solvable_queries_example", "solvable_queries_example"),
        ("", "", "unrecorded"),
    ],
)
def test_benchmark_identity_claims_a_published_benchmark_only_on_clear_evidence(name, root, identity):
    assert benchmark_identity(name, root) == identity


# ---------------------------------------------------------------------------------------------
# Published rows only beside rows of their benchmark


def test_published_rows_of_another_benchmark_get_a_table_of_their_own(tmp_path):
    written = export(
        [one_query_run(tmp_path)], tmp_path / "lb", reference_rows=reference_rows("stabletoolbench")
    )

    markdown = written["markdown"].read_text(encoding="utf-8")
    assert "| published |" not in main_table(markdown)
    assert f"## {PUBLISHED_TITLE}" in markdown
    separate = markdown.split(f"## {PUBLISHED_TITLE}", 1)[1].split("\n## ", 1)[0]
    assert "| published | stabletoolbench |" in separate and "| ours |" not in separate

    published = [r for r in csv_rows(written["csv"]) if r["Source"].startswith("published")]
    assert published and {r["Benchmark"] for r in published} == {"stabletoolbench"}
    rows = json.loads(written["json"].read_text(encoding="utf-8"))["rows"]
    assert {r["table"] for r in rows if r["published"]} == {PUBLISHED_TITLE}
    assert {r["table"] for r in rows if not r["published"]} == {"leaderboard"}


def test_published_rows_stand_beside_a_run_on_their_benchmark(tmp_path):
    queries = write_benchmark(tmp_path / "StableToolBench" / "solvable_queries")
    run = one_query_run(tmp_path, benchmark={"name": "solvable_queries", "root": str(queries)})
    written = export([run], tmp_path / "lb", reference_rows=reference_rows("stabletoolbench"))

    table = main_table(written["markdown"].read_text(encoding="utf-8"))
    assert "| ours | stabletoolbench |" in table and "| published | stabletoolbench |" in table
    assert PUBLISHED_TITLE not in written["markdown"].read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# File modes


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_answer_manifest_and_leaderboard_files_are_0644_under_umask_022(tmp_path, umask_022):
    answer = write_answer_file(tmp_path / "run" / "G1_instruction" / "1_CoT@1.json", {"win": True})
    rundir = RunDir(tmp_path / "run")
    rundir.prepare(Manifest(run_id="run", method="CoT@1"))
    written = export([one_query_run(tmp_path)], tmp_path / "lb")

    assert mode(answer) == 0o644
    assert mode(rundir.manifest_path) == 0o644
    for key in ("csv", "markdown", "json", "ablation_csv", "ablation_markdown"):
        assert mode(written[key]) == 0o644, key
    scores = next((tmp_path / "runs" / "one" / "scores").glob("pass_rate_*.json"))
    assert mode(scores) == 0o644
