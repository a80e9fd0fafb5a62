"""`toolbench-eval train`: ToolLLaMA-style SFT (LoRA or full) on tool-use trajectories.

    toolbench-eval train --data data/localtoolbench/train/trajectories.jsonl --out models/toolsmol \\
        --model smollm2 --method lora --epochs 1

The committed ToolSmol adapter (`data/toolsmol/`) was trained by the command in `data/toolsmol/README.md`.

Re-running the same command resumes from the newest checkpoint in `<out>/checkpoints/`.
"""

from __future__ import annotations

from toolbench_eval.errors import UserError
from toolbench_eval.paths import DATA_DIR


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help="fine-tune a Llama model on tool-use trajectories (LoRA or full)")
    parser.add_argument("--data", default=str(DATA_DIR / "localtoolbench" / "train" / "trajectories.jsonl"),
                        help="trajectories JSONL (ours) or ToolBench toolllama_G123_dfs_train.json")
    parser.add_argument("--out", required=True, help="output directory (adapter or model + recipe.json)")
    parser.add_argument("--model", default="smollm2",
                        help="model to fine-tune: 'smollm2' (SmolLM2-135M-Instruct, the default), 'default' "
                             "(ToolSmol: continue from the committed adapter, merged) or a local checkpoint path")
    parser.add_argument("--method", choices=["lora", "full"], default="lora")
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--lora-alpha", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max-steps", type=int, default=-1, help="stop after this many optimizer steps (overrides --epochs)")
    parser.add_argument("--stop-at-step", type=int, default=None,
                        help="end after this optimizer step while the LR schedule still runs to --max-steps "
                             "(a budget cut that a re-run reproduces exactly)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="end (saving a checkpoint) at the first optimizer step past this much training time; "
                             "the LR schedule is not shortened and a re-run resumes")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--grad-accum", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=2048)
    parser.add_argument("--max-examples", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--bf16", action="store_true", default=None, help="bf16 autocast (default: on for CUDA)")
    parser.add_argument("--save-steps", type=int, default=50)
    parser.add_argument("--save-dtype", choices=["float32", "bfloat16", "float16"], default="float32",
                        help="dtype of the saved weights (bfloat16 halves a LoRA adapter; training is unaffected)")
    parser.add_argument("--init-adapter", default=None,
                        help="LoRA: start from this adapter directory's weights (e.g. data/toolsmol for a second "
                             "training stage) instead of a fresh adapter")
    parser.add_argument("--ignore-message-weights", action="store_true",
                        help="train on every assistant message, also those with \"weight\": 0 (LocalToolBench's "
                             "deliberate mistakes); upstream ToolLLaMA trains on everything")
    parser.add_argument("--rename-tools", type=float, default=0.0, metavar="SHARE",
                        help="give this share (0-1) of the training conversations invented tool names, so the "
                             "model copies function names from the prompt instead of recalling them")
    parser.add_argument("--rename-apis", type=float, default=0.0, metavar="SHARE",
                        help="give this share (0-1) of the training conversations invented, neutral API names "
                             "(fetch_records_for_<tool>), so the model chooses by description and parameters")
    parser.add_argument("--thought-style", choices=["call-first", "goal-first"], default="call-first",
                        help="LocalToolBench thoughts as written (call-first: the function, then what it returns) "
                             "or goal-first (what is needed, then the function; a lookup names the call it feeds)")
    parser.add_argument("--no-resume", action="store_true", help="start over even if checkpoints exist")
    parser.set_defaults(func=run)


def run(args) -> int:
    from toolbench_eval.training.sft import Recipe, train

    for flag, share in (("--rename-tools", args.rename_tools), ("--rename-apis", args.rename_apis)):
        if not 0.0 <= share <= 1.0:
            raise UserError(f"{flag} must be a share between 0 and 1, got {share}")
    recipe = Recipe(
        data=args.data, out=args.out, model=args.model, method=args.method, lora_r=args.lora_r,
        lora_alpha=args.lora_alpha, learning_rate=args.learning_rate, epochs=args.epochs, max_steps=args.max_steps,
        stop_at_step=args.stop_at_step, max_minutes=args.max_minutes,
        batch_size=args.batch_size, grad_accum=args.grad_accum, max_length=args.max_length,
        max_examples=args.max_examples, seed=args.seed, device=args.device, bf16=args.bf16,
        save_steps=args.save_steps, save_dtype=args.save_dtype, init_adapter=args.init_adapter,
        honour_weights=not args.ignore_message_weights, rename_tools=args.rename_tools,
        rename_apis=args.rename_apis, thought_style=args.thought_style,
    )
    manifest = train(recipe, resume=not args.no_resume)
    result = manifest["result"]
    cut = "" if result["finished_schedule"] else " (stopped early: re-run the command to continue)"
    print(f"trained {result['global_steps']} steps{cut} in {result['seconds']} s, {result['tokens_seen']} tokens, "
          f"final loss {result['final_logged_loss']}; wrote {args.out}/recipe.json")
    return 0
