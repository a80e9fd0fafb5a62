"""The lab's synthetic tasks (answers are right, seeds reproduce) and its command line, end to end."""

from __future__ import annotations

import json
import random

import pytest

from toolbench_eval.cli import main
from toolbench_eval.lab.tasks import (
    BIT0,
    BIT1,
    BLANK,
    DIGITS,
    MARK,
    READ,
    SEP,
    SYMBOLS,
    TASKS,
    VOCAB_SIZE,
    WRITE,
    collate,
    get_task,
)


def test_flipflop_reads_return_the_last_written_bit():
    rng = random.Random(1)
    for example in TASKS["flipflop"].sample(rng, "id", 50):
        tokens = example.tokens
        assert tokens[1] == WRITE and tokens[-2] == READ
        memory = None
        for position in range(1, len(tokens), 2):
            instruction, bit = tokens[position], tokens[position + 1]
            assert bit in (BIT0, BIT1)
            if instruction == WRITE:
                memory = bit
            if instruction == READ:
                assert bit == memory and position + 1 in example.answer_positions
        assert len(example.answer_positions) == tokens[1::2].count(READ)


def test_other_tasks_answers():
    rng = random.Random(2)
    for example in TASKS["selective-copy"].sample(rng, "ood", 20):
        separator = example.tokens.index(SEP)
        body = [t for t in example.tokens[1:separator] if t != BLANK]
        assert [example.tokens[p] for p in example.answer_positions] == body
    for example in TASKS["counting"].sample(rng, "id", 50):
        body, query = example.tokens[1:-3], example.tokens[-2]
        after = body[max((i for i, t in enumerate(body) if t == MARK), default=-1) + 1:]
        assert example.tokens[-1] == DIGITS[after.count(query)]
    for example in TASKS["kv"].sample(rng, "ood", 20):
        pairs = dict(zip(example.tokens[1:-3:2], example.tokens[2:-3:2]))
        assert example.tokens[-1] == pairs[example.tokens[-2]]
    for example in TASKS["multi-needle"].sample(rng, "ood-needles", 20):
        tokens = example.tokens
        needles = [tokens[i + 1] for i in range(tokens.index(SEP)) if tokens[i] == MARK]
        assert [tokens[p] for p in example.answer_positions] == needles and len(needles) == 5


@pytest.mark.parametrize("name", list(TASKS))
def test_tasks_are_seeded_and_ood_is_out_of_distribution(name):
    task = get_task(name)
    assert next(iter(task.splits)) == "id" and len(task.splits) >= 2
    first = task.sample(random.Random("s"), "id", 5)
    assert first == task.sample(random.Random("s"), "id", 5)
    assert first != task.sample(random.Random("t"), "id", 5)
    for split in task.splits:
        for example in task.sample(random.Random(0), split, 5):
            assert max(example.tokens) < VOCAB_SIZE and example.answer_positions
            assert all(0 < p < len(example.tokens) for p in example.answer_positions)
            assert all(s in SYMBOLS or s not in range(10, 26) for s in example.tokens)


def test_collate_pads_right_and_masks_only_answers():
    examples = TASKS["kv"].sample(random.Random(0), "id", 2) + TASKS["kv"].sample(random.Random(0), "ood", 1)
    tokens, answers = collate(examples)
    assert tokens.shape == answers.shape == (3, len(examples[2].tokens))
    assert answers.sum().item() == 3 and answers[:, -1].tolist() == [False, False, True]


def test_unknown_task_and_split_are_clear_errors():
    with pytest.raises(ValueError, match="unknown task 'sorting'"):
        get_task("sorting")
    with pytest.raises(ValueError, match="no split 'far'"):
        TASKS["kv"].sample(random.Random(0), "far", 1)


def test_cli_train_eval_report(tmp_path, capsys):
    out, table = tmp_path / "run", tmp_path / "lab" / "results.jsonl"
    assert main(["lab", "train", "--task", "kv", "--attention", "cope", "--steps", "5", "--batch-size", "4",
                 "--out", str(out), "--no-progress"]) == 0
    record = json.loads((out / "record.json").read_text())
    assert record["steps"] == 5 and record["threads"] == 1 and record["device"] == "cpu"
    assert record["command"].startswith("toolbench-eval lab train --task kv --attention cope")
    assert main(["lab", "eval", "--task", "kv", "--attention", "cope", "--out", str(out), "--n", "20",
                 "--table", str(table)]) == 0
    row = json.loads(table.read_text().splitlines()[0])
    assert set(row["results"]) == {"id", "ood"} and row["results"]["id"]["n"] == 20
    report = (table.parent / "report.md").read_text()
    assert "## kv" in report and "toolbench-eval lab eval --task kv" in report
    assert (table.parent / "kv.png").exists()


def test_cli_bad_arguments(tmp_path, capsys):
    assert main(["lab", "eval", "--task", "kv", "--attention", "rope", "--out", str(tmp_path / "none")]) == 2
    assert "no model.pt" in capsys.readouterr().err
    assert main(["lab", "train", "--task", "kv", "--attention", "rope", "--threads", "0"]) == 2
    with pytest.raises(SystemExit):
        main(["lab", "train", "--task", "kv", "--attention", "alibi"])


def test_training_is_seeded_and_deterministic():
    from toolbench_eval.lab.train import TrainConfig, train

    config = TrainConfig(task="counting", attention="cope", steps=6, batch_size=4, warmup_steps=2)
    first, again = (train(config, progress=False, curve_every=1)["loss_curve"] for _ in range(2))
    other = train(TrainConfig(**{**config.__dict__, "seed": 1}), progress=False, curve_every=1)["loss_curve"]
    assert first == again and first != other
