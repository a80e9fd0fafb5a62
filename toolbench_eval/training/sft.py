"""The ToolLLaMA-style SFT recipe: any local Llama checkpoint, full or LoRA, CPU or CUDA, resumable.

Built on `transformers.Trainer` (checkpoints, resume with optimizer/scheduler/RNG state, progress bar) and
`peft` for LoRA. Everything that defines a run goes into `recipe.json` beside the output, so a trained
adapter says what it was trained on and how.
"""

from __future__ import annotations

import json
import platform
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from toolbench_eval.errors import UserError
from toolbench_eval.models import file_sha256
from toolbench_eval.training.data import build_examples, read_conversations, rename_apis, rename_share

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class Recipe:
    data: str
    out: str
    model: str = "smollm2"  # the base model; "default" would start from ToolSmol
    method: str = "lora"  # "lora" | "full"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] = LORA_TARGETS
    learning_rate: float = 2e-4
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    stop_at_step: int | None = None  # end here although the LR schedule runs to max_steps/epochs (a budget cut)
    max_minutes: float | None = None  # end (with a checkpoint) at the first step past this much training time
    batch_size: int = 1
    grad_accum: int = 8
    max_length: int = 2048
    max_examples: int | None = None
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    seed: int = 0
    device: str = "auto"
    bf16: bool | None = None  # None: bf16 autocast where the device supports it
    save_steps: int = 50
    logging_steps: int = 5
    save_dtype: str = "float32"  # dtype of the saved adapter/model weights ("bfloat16" halves a LoRA adapter)
    init_adapter: str | None = None  # LoRA: start from this adapter's weights (a second stage) instead of zero
    honour_weights: bool = True  # weight-0 assistant messages are context, not targets (False: train on all)
    rename_tools: float = 0.0  # share of conversations whose tools get invented names (seeded by `seed`)
    rename_apis: float = 0.0  # share of conversations whose APIs get invented, neutral names (seeded by `seed`)
    thought_style: str = "call-first"  # "goal-first": LocalToolBench thoughts say the need before the function
    extra: dict[str, Any] = field(default_factory=dict)


class PadCollator:
    """Right-pads a batch; padded positions get label -100 and attention mask 0."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(example["input_ids"]) for example in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, example in enumerate(batch):
            n = len(example["input_ids"])
            ids[row, :n] = torch.tensor(example["input_ids"])
            labels[row, :n] = torch.tensor(example["labels"])
            mask[row, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def budget_callback(*, stop_at_step: int | None = None, max_minutes: float | None = None):
    """A callback that ends training, saving a checkpoint there, after optimizer step `stop_at_step` or at the
    first step that ends `max_minutes` after training started, while the LR schedule stays the configured one.
    A re-run resumes from the newest checkpoint, so `stop_at_step` must lie past it; `max_minutes` then counts
    again from the resumed step (a budget per session, e.g. on a lent GPU)."""
    from transformers import TrainerCallback

    class StopOnBudget(TrainerCallback):
        def __init__(self):
            self.deadline = None

        def on_train_begin(self, args, state, control, **kwargs):
            if max_minutes is not None:
                self.deadline = time.monotonic() + 60.0 * max_minutes

        def on_step_end(self, args, state, control, **kwargs):
            past_step = stop_at_step is not None and state.global_step >= stop_at_step
            past_time = self.deadline is not None and time.monotonic() >= self.deadline
            if past_step or past_time:
                control.should_training_stop = True
                control.should_save = True

    return StopOnBudget()


def prepare_model(model, recipe: Recipe):
    """Wrap for LoRA (peft) or leave whole for full fine-tuning."""
    if recipe.method == "full":
        if recipe.init_adapter:
            raise UserError("--init-adapter continues a LoRA adapter; it does not apply to --method full")
        return model
    if recipe.method != "lora":
        raise UserError(f"unknown training method {recipe.method!r}: use 'lora' or 'full'")
    from peft import LoraConfig, PeftModel, get_peft_model

    if recipe.init_adapter:
        return _continue_adapter(model, recipe, PeftModel)

    config = LoraConfig(
        r=recipe.lora_r,
        lora_alpha=recipe.lora_alpha,
        lora_dropout=recipe.lora_dropout,
        target_modules=list(recipe.lora_targets),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def _continue_adapter(model, recipe: Recipe, peft_model_class):
    """Load `recipe.init_adapter` as a trainable adapter; its rank, alpha and targets must be the recipe's, so the
    saved result still says truthfully how it was shaped."""
    adapter_dir = Path(recipe.init_adapter)
    config_path = adapter_dir / "adapter_config.json"
    if not config_path.is_file():
        raise UserError(f"--init-adapter {adapter_dir}: no adapter_config.json there")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    shape = {"r": recipe.lora_r, "lora_alpha": recipe.lora_alpha}
    mismatched = {key: (config.get(key), value) for key, value in shape.items() if config.get(key) != value}
    if set(config.get("target_modules") or ()) != set(recipe.lora_targets):
        mismatched["target_modules"] = (config.get("target_modules"), list(recipe.lora_targets))
    if mismatched:
        details = ", ".join(f"{key}: adapter {have!r} vs recipe {want!r}" for key, (have, want) in mismatched.items())
        raise UserError(f"--init-adapter {adapter_dir} does not match the recipe ({details})")
    wrapped = peft_model_class.from_pretrained(model, str(adapter_dir), is_trainable=True)
    for parameter in wrapped.parameters():  # a bf16-saved adapter trains in fp32 like a fresh one
        if parameter.requires_grad and parameter.dtype != torch.float32:
            parameter.data = parameter.data.float()
    return wrapped


def augment(conversations: list, recipe: Recipe) -> tuple[list, dict[str, int]]:
    """Apply the recipe's data variants in a fixed order (thought style, then tool and API renaming, each
    renaming on its own seeded stream); returns the conversations and counts for the manifest."""
    from toolbench_eval.localtoolbench.thoughts import THOUGHT_STYLES, restyle_goal_first

    if recipe.thought_style not in THOUGHT_STYLES:
        raise UserError(f"unknown thought style {recipe.thought_style!r}; choose one of: {', '.join(THOUGHT_STYLES)}")
    counts = {"tools_renamed": 0}
    if recipe.thought_style == "goal-first":
        restyled = [restyle_goal_first(conversation.turns) for conversation in conversations]
        conversations = [replace(c, turns=turns) for c, (turns, _) in zip(conversations, restyled)]
        counts["thoughts_restyled"] = sum(changed for _, changed in restyled)
    if recipe.rename_tools > 0:
        conversations, counts["tools_renamed"] = rename_share(conversations, recipe.rename_tools, recipe.seed)
    if recipe.rename_apis > 0:
        conversations, counts["apis_renamed"] = rename_share(conversations, recipe.rename_apis, recipe.seed,
                                                             rename=rename_apis, stream="api-renaming")
    return conversations, counts


def train(recipe: Recipe, *, model=None, tokenizer=None, resume: bool = True, callbacks=None) -> dict[str, Any]:
    """Run the recipe; returns the manifest written to `<out>/recipe.json`.

    `model`/`tokenizer` may be passed in (tests use a tiny random Llama); otherwise `recipe.model` is
    loaded with `toolbench_eval.models.load_model`. `callbacks` are `transformers.TrainerCallback`s.
    """
    from transformers import Trainer, TrainingArguments, set_seed

    out = Path(recipe.out)
    out.mkdir(parents=True, exist_ok=True)
    set_seed(recipe.seed)
    if model is None or tokenizer is None:
        from toolbench_eval.models import load_model

        model, tokenizer = load_model(recipe.model, device="cpu", dtype="float32")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token

    conversations = list(read_conversations(recipe.data, honour_weights=recipe.honour_weights))
    random.Random(recipe.seed).shuffle(conversations)
    if recipe.max_examples is not None:
        conversations = conversations[: recipe.max_examples]
    conversations, augmented = augment(conversations, recipe)
    examples, data_stats = build_examples(conversations, tokenizer, recipe.max_length)
    data_stats.update(augmented)
    if not examples:
        raise UserError(f"{recipe.data}: no usable training examples (all longer than --max-length "
                        f"{recipe.max_length}?)")

    device = recipe.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    bf16 = recipe.bf16
    if bf16 is None:
        bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    model = prepare_model(model, recipe)

    args = TrainingArguments(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=recipe.batch_size,
        gradient_accumulation_steps=recipe.grad_accum,
        learning_rate=recipe.learning_rate,
        num_train_epochs=recipe.epochs,
        max_steps=recipe.max_steps,
        warmup_steps=recipe.warmup_ratio,  # a float in [0, 1) is a ratio of total steps
        weight_decay=recipe.weight_decay,
        lr_scheduler_type="cosine",
        logging_steps=recipe.logging_steps,
        save_steps=recipe.save_steps,
        save_total_limit=2,
        seed=recipe.seed,
        data_seed=recipe.seed,
        bf16=bf16,
        use_cpu=device == "cpu",
        report_to=[],
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=False,
        include_num_input_tokens_seen="non_padding",
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=examples, data_collator=PadCollator(tokenizer.pad_token_id),
        callbacks=[*(callbacks or []),
                   *([budget_callback(stop_at_step=recipe.stop_at_step, max_minutes=recipe.max_minutes)]
                     if recipe.stop_at_step is not None or recipe.max_minutes is not None else [])],
    )
    checkpoint_dir = out / "checkpoints"
    has_checkpoint = resume and any(checkpoint_dir.glob("checkpoint-*"))
    started = time.time()
    result = trainer.train(resume_from_checkpoint=True if has_checkpoint else None)
    elapsed = time.time() - started

    if recipe.method == "lora":
        model.save_pretrained(str(out))  # adapter_model.safetensors + adapter_config.json
        cast_safetensors(out / "adapter_model.safetensors", recipe.save_dtype)
    else:
        model.save_pretrained(str(out), safe_serialization=True)
        tokenizer.save_pretrained(str(out))
        for weights in sorted(out.glob("*.safetensors")):
            cast_safetensors(weights, recipe.save_dtype)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    manifest = {
        # The evaluation protocol whose prompt layout the training data was rendered in (`training.data`
        # renders with our `newline` assistant layout and clean schemas); `run` evaluates the model under it.
        "protocol": TRAINING_PROTOCOL,
        "recipe": {**asdict(recipe), "lora_targets": list(recipe.lora_targets)},
        "data": {"path": _repo_relative(recipe.data), "sha256": file_sha256(Path(recipe.data)), **data_stats},
        **({"init_adapter": _adapter_provenance(Path(recipe.init_adapter))} if recipe.init_adapter else {}),
        "result": {
            "global_steps": trainer.state.global_step,
            "train_loss": result.training_loss,
            "first_logged_loss": losses[0] if losses else None,
            "final_logged_loss": losses[-1] if losses else None,
            "tokens_seen": int(trainer.state.num_input_tokens_seen),
            "seconds": round(elapsed, 1),
            "resumed": bool(has_checkpoint),
            "finished_schedule": trainer.state.global_step >= trainer.state.max_steps,
        },
        "hardware": {"device": device, "bf16": bf16, "platform": platform.platform(),
                     "cpu_threads": torch.get_num_threads(),
                     "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None},
        "versions": {"torch": torch.__version__, **_versions("transformers", "peft")},
    }
    (out / "recipe.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


TRAINING_PROTOCOL = "toolbench-eval"


def _adapter_provenance(adapter_dir: Path) -> dict[str, Any]:
    """What a second stage started from: the adapter's digest and, when present, its own manifest."""
    provenance: dict[str, Any] = {"path": _repo_relative(str(adapter_dir)),
                                  "sha256": file_sha256(adapter_dir / "adapter_model.safetensors")}
    manifest = adapter_dir / "recipe.json"
    if manifest.is_file():
        provenance["recipe"] = json.loads(manifest.read_text(encoding="utf-8"))
    return provenance


def _repo_relative(path: str) -> str:
    """`path` relative to the repository when it lies inside (manifests stay valid in other checkouts)."""
    from toolbench_eval.paths import REPO_ROOT

    resolved = Path(path).resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else str(path)


def cast_safetensors(path: Path, dtype: str) -> None:
    """Rewrite a safetensors file with its floating-point tensors in `dtype` (no-op for float32)."""
    if dtype == "float32":
        return
    if dtype not in ("bfloat16", "float16"):
        raise UserError(f"--save-dtype: unknown dtype {dtype!r}; choose float32, bfloat16 or float16")
    from safetensors import safe_open
    from safetensors.torch import save_file

    target = getattr(torch, dtype)
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (not a dict)
    tensors = {key: value.to(target) if value.is_floating_point() else value for key, value in tensors.items()}
    save_file(tensors, str(path), metadata=metadata)


def _versions(*names: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found
