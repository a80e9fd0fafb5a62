"""Score a trained lab model: exact-match accuracy with a 95% Wilson interval on every split of its task.

The evaluation examples come from a seed that depends only on task, split and `eval_seed`, never on the
training seed, so every method of a task is scored on the very same examples.
"""

from __future__ import annotations

import random

import torch

from toolbench_eval.lab.model import LabLlama
from toolbench_eval.lab.tasks import collate, get_task
from toolbench_eval.probe.scoring import wilson_interval


@torch.no_grad()
def exact_matches(model: LabLlama, tokens: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
    """One boolean per row: the argmax prediction is right at every answer position of that row."""
    predicted = model(tokens)[:, :-1].argmax(-1)
    wrong = (predicted != tokens[:, 1:]) & answers[:, 1:]
    return ~wrong.any(dim=1)


def evaluate(model: LabLlama, task_name: str, *, n: int = 1000, batch_size: int = 100, eval_seed: int = 0,
             splits: list[str] | None = None, device: str = "cpu") -> dict[str, dict]:
    """{split: {correct, n, accuracy, ci_low, ci_high, length}} for the task's splits (all by default)."""
    task = get_task(task_name)
    results = {}
    for split in splits or list(task.splits):
        rng = random.Random(f"eval:{task_name}:{split}:{eval_seed}")
        examples = task.sample(rng, split, n)
        correct = 0
        for start in range(0, n, batch_size):
            tokens, answers = collate(examples[start:start + batch_size])
            correct += int(exact_matches(model, tokens.to(device), answers.to(device)).sum())
        low, high = wilson_interval(correct, n)
        results[split] = {
            "correct": correct, "n": n, "accuracy": correct / n, "ci_low": low, "ci_high": high,
            "mean_length": sum(len(e.tokens) for e in examples) / n, "params": task.splits[split],
        }
    return results
