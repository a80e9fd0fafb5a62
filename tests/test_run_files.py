"""The run manifest and the pass-rate report as typed records: files of earlier versions read and write back
byte for byte, and a damaged file is refused with the file and the field named."""

from __future__ import annotations

import copy
import json

import pytest
from test_scoring_runs import build_runs

from toolbench_eval.cli import main
from toolbench_eval.errors import UserError
from toolbench_eval.runner.manifest import Manifest
from toolbench_eval.scoring.export import row_for_run
from toolbench_eval.scoring.judges import RuleJudge
from toolbench_eval.scoring.passrate import score_run
from toolbench_eval.scoring.passrate_report import PassRateReport, load_report

# What `run` writes today, key for key (values shortened).
CURRENT = {
    "run_id": "react-auto3",
    "created": "2026-12-03T02:27:31.487+00:00",
    "method": "CoT@1",
    "method_label": "react",
    "model": {"engine": "hf", "spec": "default", "args": {"pretrained": "default"}, "weights": "toolsmol-f6f60c993a27"},
    "model_name": "toolsmol-135m-auto3",
    "buckets": {"bases": [100000.0, 180000.0, 120000], "fusion": "max_logit", "source": "auto:3"},
    "benchmark": {"name": "localtoolbench", "root": "/work/main/data/localtoolbench"},
    "groups": ["G1_instruction"],
    "query_ids": {"G1_instruction": ["100000"]},
    "decoding": {"max_new_tokens": 128, "temperature": 0.0},
    "prompt_style": "toolllama",
    "tool_format": "react",
    "protocol": {"name": "toolbench-eval", "label": "toolbench-eval", "overrides": {}, "switches": {"parser": "x"}},
    "single_chain_max_step": 12,
    "max_query_count": 200,
    "width": None,
    "seed": 0,
    "tool_backend": {"name": "local"},
    "retriever": None,
    "config": {"limit": 1, "note": "é"},
    "versions": {"torch": "2.13.0", "vllm": None},
    "git_revision": None,
}


def written_by(*, without: tuple[str, ...] = (), without_weights: bool = False) -> dict:
    """The manifest of an earlier version: the fields added since are simply not there."""
    manifest = {key: value for key, value in copy.deepcopy(CURRENT).items() if key not in without}
    if without_weights:
        del manifest["model"]["weights"]
    return manifest


VERSIONS = {
    "current": written_by(),
    "before tool_format": written_by(without=("tool_format",)),
    "before protocols": written_by(without=("tool_format", "protocol")),
    "before weights": written_by(without=("tool_format", "protocol"), without_weights=True),
}


def text_of(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


@pytest.mark.parametrize("version", list(VERSIONS))
def test_manifests_of_every_version_write_back_the_same_bytes(version):
    text = text_of(VERSIONS[version])
    manifest = Manifest.from_json(json.loads(text), "manifest.json")
    assert manifest.dumps() == text
    assert manifest.bases == (100000.0, 180000.0, 120000.0)
    assert manifest.selected_query_ids("G1_instruction", ["100000", "100001"]) == ["100000"]
    recorded = version in ("current", "before tool_format")
    assert manifest.protocol_label == ("toolbench-eval" if recorded else None)
    assert manifest.protocol_switches == ({"parser": "x"} if recorded else None)
    assert manifest.weights == (None if version == "before weights" else "toolsmol-f6f60c993a27")


def test_a_field_the_file_lacked_is_written_where_the_runner_writes_it():
    old = Manifest.from_json(VERSIONS["before weights"], "manifest.json")
    updated = old.with_weights("w").replace(tool_format="native")
    data = updated.to_json()
    assert list(data["model"]) == ["engine", "spec", "args", "weights"] and data["model"]["weights"] == "w"
    assert list(data).index("tool_format") == list(data).index("prompt_style") + 1
    assert "protocol" not in data  # still absent: nothing gave it a value


def test_keys_of_a_later_version_are_kept():
    data = {"run_id": "r", "method": "CoT@1", "hardware": {"gpu": "H200"}}
    manifest = Manifest.from_json(data, "manifest.json")
    assert manifest.to_json() == data and manifest.replace(seed=3).to_json()["hardware"] == {"gpu": "H200"}


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"method": None}, "method", "expected a string, found null"),
        ({"run_id": ""}, "run_id", "is empty"),
        ({"groups": "G1_instruction"}, "groups", "expected a list, found a string"),
        ({"config": []}, "config", "expected an object, found a list"),
        ({"seed": True}, "seed", "expected an integer, found true or false"),
        ({"buckets": {"bases": ["1e5"]}}, "buckets.bases[0]", "expected a number, found a string"),
        ({"benchmark": {"name": "x", "root": 7}}, "benchmark.root", "found an integer"),
        ({"query_ids": {"G1_instruction": "1"}}, "query_ids.G1_instruction", "expected a list"),
    ],
)
def test_a_malformed_manifest_names_the_file_and_the_field(change, field, says):
    with pytest.raises(UserError, match="run/manifest.json") as error:
        Manifest.from_json({**CURRENT, **change}, "run/manifest.json")
    assert f"field '{field}'" in str(error.value) and says in str(error.value)


def test_score_refuses_a_malformed_manifest_before_judging(tmp_path, capsys):
    base, _ = build_runs(tmp_path)
    path = base / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "groups": {"G1_instruction": 4}}))
    assert main(["score", str(base)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "field 'groups'" in err
    assert not (base / "scores").exists()


# ---------------------------------------------------------------------------------------------
# Pass-rate reports


def test_a_report_from_before_infrastructure_counts_reads_back_and_exports(tmp_path):
    base, _ = build_runs(tmp_path)
    score_run(base, RuleJudge(), evaluate_times=3)
    path = base / "scores" / "pass_rate_rule.json"
    old = json.loads(path.read_text())
    for group in old["groups"].values():
        del group["n_infrastructure_error"]
    path.write_text(text_of(old))
    report = load_report(base / "scores", "rule")
    assert report.dumps() == path.read_text()  # the count stays absent, not 0
    assert report.infrastructure_failures == 0 and report.missing_answers == 1
    row = row_for_run(base, RuleJudge(), evaluate_times=3)  # export reads the saved report, it does not re-score
    assert row.infrastructure_failures == 0 and row.average.n == 6 and path.read_text() == text_of(old)


def test_a_converted_file_report_keeps_what_was_scored_in_place(tmp_path):
    base, _ = build_runs(tmp_path)
    report = score_run(base, RuleJudge(), evaluate_times=1, save=False)
    data = report.to_json()
    assert list(data)[:3] == ["kind", "created", "run_id"] and data["universe"] == "benchmark"
    converted = {**data, "converted_file": "x.json", "method": None}
    for key in ("run_id", "run_dir", "method_label", "buckets", "universe"):
        del converted[key]
    assert PassRateReport.from_json(converted, "r.json").to_json() == converted


@pytest.mark.parametrize(
    ("damage", "field"),
    [
        (lambda r: r.update(kind="toolbench-eval win rate"), "kind"),
        (lambda r: r["groups"]["G1_instruction"].update(sopr="50"), "groups.G1_instruction.sopr"),
        (lambda r: r["groups"]["G2_category"].pop("n"), "groups.G2_category.n"),
        (lambda r: r["groups"]["G1_instruction"]["labels"]["1"].update(statuses=["Maybe"]),
         "groups.G1_instruction.labels.1.statuses[0]"),
        (lambda r: r["average"].update(complete="no"), "average.complete"),
    ],
)
def test_a_damaged_report_names_the_file_and_the_field(tmp_path, damage, field):
    base, _ = build_runs(tmp_path)
    report = score_run(base, RuleJudge(), evaluate_times=1).to_json()
    damage(report)
    path = base / "scores" / "pass_rate_rule.json"
    path.write_text(json.dumps(report))
    with pytest.raises(UserError, match=str(path)) as error:
        load_report(base / "scores", "rule")
    assert f"field '{field}'" in str(error.value)
