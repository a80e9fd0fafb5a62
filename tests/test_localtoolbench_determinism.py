"""Same seed, same bytes: the database and the generated world are pure functions of the seed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from toolbench_eval.cli import main
from toolbench_eval.localtoolbench.database import build_database, connect, content_digest
from toolbench_eval.localtoolbench.generate import generate_world

WORLD = Path(__file__).resolve().parents[1] / "data" / "localtoolbench"
SMALL = {"scale": 0.3, "test_size": 5, "train_sizes": {"G1": 24, "G2": 16, "G3": 16}}


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_database_rebuild_is_byte_identical(tmp_path):
    first = build_database(tmp_path / "a.sqlite", seed=3, scale=0.1)
    second = build_database(tmp_path / "b.sqlite", seed=3, scale=0.1)
    other = build_database(tmp_path / "c.sqlite", seed=4, scale=0.1)
    assert first.read_bytes() == second.read_bytes()
    digests = []
    for path in (first, second, other):
        conn = connect(path)
        digests.append(content_digest(conn))
        conn.close()
    assert digests[0] == digests[1] != digests[2]
    assert not list(tmp_path.glob("*.tmp"))  # atomic build leaves no temp file behind


def test_database_is_opened_read_only(tmp_path):
    conn = connect(build_database(tmp_path / "w.sqlite", seed=1, scale=0.05))
    with pytest.raises(sqlite3.OperationalError):
        conn.execute("DELETE FROM cities")
    conn.close()


def test_generation_from_the_same_seed_is_byte_identical(tmp_path):
    first = generate_world(tmp_path / "one", 11, database=tmp_path / "one.sqlite", **SMALL)
    second = generate_world(tmp_path / "two", 11, database=tmp_path / "two.sqlite", **SMALL)
    assert first == second
    one, two = tree(tmp_path / "one"), tree(tmp_path / "two")
    assert one.keys() == two.keys() and one == two
    assert "train/trajectories.jsonl" in one and "test_instruction/G3_instruction.json" in one
    assert len(json.loads(one["test_instruction/G1_tool.json"])) == 5


def test_cli_generate_and_build_db(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TOOLBENCH_EVAL_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "world"
    assert main(["localtoolbench", "generate", "--seed", "5", "--out", str(out), "--scale", "0.3",
                 "--test-size", "3", "--train-size", "20"]) == 0
    assert "53 tools" in capsys.readouterr().out
    info = json.loads((out / "world.json").read_text())
    assert info["seed"] == 5 and sum(info["counts"]["train_queries"].values()) == 20
    assert main(["localtoolbench", "build-db", "--world", str(out), "--force"]) == 0
    assert "matches" in capsys.readouterr().out
    assert main(["localtoolbench", "build-db", "--world", str(tmp_path / "missing")]) == 2
    assert "toolbench-eval localtoolbench generate" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(not (WORLD / "world.json").exists(), reason="data/localtoolbench not generated")
def test_committed_world_regenerates_byte_for_byte(tmp_path):
    info = json.loads((WORLD / "world.json").read_text())
    generate_world(tmp_path / "world", info["seed"], scale=info["scale"], database=tmp_path / "w.sqlite")
    assert tree(tmp_path / "world") == tree(WORLD)
