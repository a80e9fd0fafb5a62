"""The command line as a whole: behaviour shared by every command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

QUERIES = Path(__file__).resolve().parents[1] / "data" / "localtoolbench" / "test_instruction" / "G1_tool.json"


@pytest.mark.skipif(not QUERIES.exists(), reason="data/localtoolbench not generated")
def test_a_reader_that_stops_early_ends_the_command_quietly():
    # `toolbench-eval schemas --json FILE | head -1`: 260 kB, four times a pipe's buffer, so the writer is
    # still writing when the reader closes.
    command = [sys.executable, "-m", "toolbench_eval", "schemas", "--json", str(QUERIES)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        first = process.stdout.readline()
        process.stdout.close()
        stderr = process.stderr.read().decode()
        code = process.wait(timeout=120)
    assert first.startswith(b"[")
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr
    assert code == 1
