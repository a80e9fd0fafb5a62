"""JSON Lines through `jsonlines`: a torn last line (a killed writer) is skipped where a reader resumes from the
file; any other bad line is an error naming the file and the line."""

from __future__ import annotations

import pytest

from toolbench_eval.errors import UserError
from toolbench_eval.jsonl import JsonlLineError, read_jsonl
from toolbench_eval.runner.rundir import RunDir


def test_a_torn_last_line_is_skipped_only_where_asked(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"a": 1}\n\n{"b": [1, 2]}\n{"c": ', encoding="utf-8")
    assert list(read_jsonl(path, tolerate_torn_last_line=True)) == [(1, {"a": 1}), (3, {"b": [1, 2]})]
    with pytest.raises(JsonlLineError) as caught:
        list(read_jsonl(path))
    assert caught.value.line_number == 4 and str(path) in str(caught.value)


def test_a_bad_line_in_the_middle_is_an_error_that_names_it(tmp_path):
    run = RunDir(tmp_path / "run")
    run.log("run_started")
    run.log("query_started", group="G1_instruction", query_id="1")
    with run.events_path.open("a", encoding="utf-8") as handle:
        handle.write("not json\n")
    run.log("query_finished", group="G1_instruction", query_id="1")
    with pytest.raises(UserError, match=r"events.jsonl: line 3 is not JSON.*delete that line"):
        run.read_events()


def test_training_data_names_the_bad_line(tmp_path):
    from toolbench_eval.training.data import read_conversations

    path = tmp_path / "trajectories.jsonl"
    path.write_text('{"query_id": 1, "messages": []}\n{oops\n', encoding="utf-8")
    with pytest.raises(UserError, match="line 2"):
        list(read_conversations(path))
