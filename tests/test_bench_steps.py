"""`bench steps`: the per-step host-work benchmark runs end to end and leaves the decode loop as it was."""

import json

from buckets import generation
from toolbench_eval.cli import main


def test_bench_steps_writes_one_row_per_side_and_restores_the_decode_loop(tmp_path):
    originals = {name: getattr(generation, name) for name in ("fuse", "choose_tokens", "feed", "keep_fed", "select")}
    out = tmp_path / "steps.md"
    code = main(["bench", "steps", "--contexts", "3", "--buckets", "1,2", "--steps", "2", "--warmup", "1",
                 "--prompt-tokens", "8", "--threads", "1", "--out", str(out)])
    assert code == 0
    rows = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert [(r["side"], r["buckets"]) for r in rows] == [
        ("model.generate", 1), ("ours (hf engine loop)", 1), ("ours (hf engine loop)", 2)]
    for row in rows:
        assert row["contexts"] == 3 and row["step_ms"] > 0 and row["parts_ms"]["forward"] > 0
        assert row["step_ms"] >= row["parts_ms"]["forward"]
    assert {"fuse", "choose_tokens", "advance", "feed"} <= set(rows[2]["parts_ms"])
    assert "| ours (hf engine loop) | 3 | 2 |" in out.read_text()
    assert {name: getattr(generation, name) for name in originals} == originals


def test_bench_steps_refuses_bad_counts(tmp_path, capsys):
    assert main(["bench", "steps", "--buckets", "7", "--out", str(tmp_path / "s.md")]) != 0
    assert "bucket counts between 1 and 6" in capsys.readouterr().err
