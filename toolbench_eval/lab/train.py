"""Train one lab model from scratch on one task: seeded data, seeded init, deterministic kernels.

Every step draws a fresh batch from the task's in-distribution setting, so there is no fixed training set
to overfit and 'tokens seen' is simply steps x batch x length. The run writes `model.pt` (config + weights)
and `record.json` (what was trained, for how long, on what, and how it ended) into its folder.
"""

from __future__ import annotations

import json
import math
import platform
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from toolbench_eval.lab.model import SIZES, LabLlama, ModelConfig
from toolbench_eval.lab.tasks import VOCAB_SIZE, collate, get_task


@dataclass(frozen=True)
class TrainConfig:
    task: str
    attention: str
    size: str = "small"
    steps: int = 3000
    batch_size: int = 32
    learning_rate: float = 3e-3
    warmup_steps: int = 100
    weight_decay: float = 0.1
    seed: int = 0
    threads: int = 1
    device: str = "cpu"
    max_minutes: float | None = None  # a budget cut: stop after the first step past it (the schedule is not shortened)


def answer_loss(logits: torch.Tensor, tokens: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the answer tokens, each predicted from the position before it."""
    targets = answers[:, 1:]
    return F.cross_entropy(logits[:, :-1][targets], tokens[:, 1:][targets])


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warmup, then cosine decay to a tenth of the peak."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.learning_rate * (0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, progress))))


def seed_everything(seed: int, threads: int) -> None:
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def build_model(task: str, attention: str, size: str) -> LabLlama:
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}")
    get_task(task)  # fail early on a bad task name
    return LabLlama(ModelConfig(vocab_size=VOCAB_SIZE, attention=attention, **SIZES[size]))


def train(config: TrainConfig, out: Path | None = None, *, command: str | None = None,
          progress: bool = True, curve_every: int = 100) -> dict:
    """Train, write model.pt and record.json under `out` (when given) and return the record."""
    from tqdm.auto import tqdm

    seed_everything(config.seed, config.threads)
    task = get_task(config.task)
    model = build_model(config.task, config.attention, config.size).to(config.device)
    decay = [p for p in model.parameters() if p.dim() >= 2]  # no weight decay on norms, λ vectors
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=config.learning_rate, betas=(0.9, 0.95))
    rng = random.Random(f"train:{config.task}:{config.seed}")
    started, tokens_seen, losses, step = time.monotonic(), 0, [], 0
    bar = tqdm(range(config.steps), desc=f"{config.task}/{config.attention}", disable=not progress,
               mininterval=2.0, file=sys.stderr)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config)
        tokens, answers = collate(task.sample(rng, "id", config.batch_size))
        tokens, answers = tokens.to(config.device), answers.to(config.device)
        loss = answer_loss(model(tokens), tokens, answers)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        tokens_seen += tokens.numel()
        losses.append(loss.item())
        if step % 50 == 0:
            bar.set_postfix(loss=f"{sum(losses[-50:]) / len(losses[-50:]):.4f}")
        if config.max_minutes is not None and time.monotonic() - started > 60 * config.max_minutes:
            break
    bar.close()
    record = {
        "task": config.task, "attention": config.attention, "size": config.size,
        "steps": step + 1, "tokens_seen": tokens_seen,
        "wall_minutes": round((time.monotonic() - started) / 60, 3),
        "threads": config.threads, "device": config.device,
        "device_name": torch.cuda.get_device_name() if config.device.startswith("cuda") else platform.processor()
        or platform.machine(),
        "params": model.num_parameters(),
        "final_loss": sum(losses[-100:]) / len(losses[-100:]),
        "loss_curve_every": curve_every,
        "loss_curve": [round(sum(losses[i:i + curve_every]) / len(losses[i:i + curve_every]), 5)
                       for i in range(0, len(losses), curve_every)],
        "train_config": asdict(config), "model_config": model.config.to_dict(),
        "torch": torch.__version__, "command": command,
    }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        torch.save({"model_config": model.config.to_dict(), "state_dict": model.state_dict()}, out / "model.pt")
        (out / "record.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def load_model(folder: Path, device: str = "cpu") -> LabLlama:
    checkpoint = torch.load(folder / "model.pt", map_location=device, weights_only=True)
    model = LabLlama(ModelConfig(**checkpoint["model_config"])).to(device)
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()
