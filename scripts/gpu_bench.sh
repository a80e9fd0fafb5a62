#!/usr/bin/env bash
# The GPU benchmark: run it whenever a GPU is at hand (never in CI). About 10-14 minutes on one H100/H200.
#
#   scripts/gpu_bench.sh                 # everything that the machine allows, in order of value
#   STEPS="tests hf" scripts/gpu_bench.sh   # a subset: tests hf vllm-llama vllm-qwen grid
#
# Nothing is downloaded: the 7B-shaped checkpoints are random-initialised here (scripts/make_random_checkpoint.py,
# bf16, SmolLM2's vocabulary), throughput depends on shapes only. Each step has its own time limit and a failed
# or skipped step is recorded and the next one runs. Reports land in results/benchmarks/gpu_*.md with the device
# named in each; the log of the whole run in results/benchmarks/gpu_bench.log.
#   tests       pytest tests/test_cuda.py (buckets vs reference models on CUDA, bf16, continuous decoding)
#   hf          bench buckets on the Llama-2-7B shape (plain generate, ours N=1/3/6, official-style N=6) and
#               bench steps (the hf engine's host work per step at 16/64/256 contexts, 1 and 6 buckets)
#   vllm-llama  bench vllm on the Llama-2-7B shape: plain vs plugin N=1/3/6, prefill and decode throughput,
#               KV capacity; then the plugin's parity tests (needs an importable vllm)
#   vllm-qwen   the same on the Qwen2.5-7B shape
#   grid        the ToolSmol G1 grid through the vllm engine (configs/toolsmol_eval_vllm.yaml)
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
OUTDIR="results/benchmarks"
CKPT="${CKPT_DIR:-/tmp/toolbench-eval-ckpt}"
STEPS="${STEPS:-tests hf vllm-llama vllm-qwen grid}"
LOG="$OUTDIR/gpu_bench.log"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
mkdir -p "$OUTDIR" "$CKPT"

if ! python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_bench.sh: no CUDA device visible to torch; this script is for a GPU machine" >&2
    exit 2
fi
DEVICE="$(python3 -c 'import torch; print(torch.cuda.get_device_name(0))')"
TAG="$(echo "$DEVICE" | tr -cs 'A-Za-z0-9' '-' | sed 's/-$//' | tr 'A-Z' 'a-z')"
{ echo "# gpu_bench.sh on $DEVICE, $(date -u +%FT%TZ)"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; } | tee "$LOG"

step() {  # step NAME LIMIT_SECONDS COMMAND...: run with a limit, log, never stop the script
    local name="$1" limit="$2"; shift 2
    echo "== $name (limit ${limit}s): $*" | tee -a "$LOG"
    local started=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee -a "$LOG"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc after $((SECONDS - started)) s" | tee -a "$LOG"
}

checkpoint() {  # checkpoint SHAPE: make it once
    [[ -f "$CKPT/$1/config.json" ]] || step "make $1" 400 python3 scripts/make_random_checkpoint.py "$1" "$CKPT/$1"
}

has_vllm() { python3 -c 'import vllm' 2>/dev/null || { echo "== vllm not importable: skipped" | tee -a "$LOG"; return 1; }; }

for name in $STEPS; do
    case "$name" in
    tests)
        step tests 300 python3 -m pytest -q tests/test_cuda.py ;;
    hf)
        checkpoint llama2-7b
        step "hf buckets" 400 toolbench-eval bench buckets --model "$CKPT/llama2-7b" --device cuda --dtype bfloat16 \
            --prompt-tokens 1024 --new-tokens 64 --output "$OUTDIR/gpu_buckets_llama2-7b_$TAG.md"
        step "hf steps" 300 toolbench-eval bench steps --out "$OUTDIR/gpu_steps_$TAG.md" ;;
    vllm-llama | vllm-qwen)
        has_vllm || continue
        shape=$([[ "$name" == vllm-llama ]] && echo llama2-7b || echo qwen2.5-7b)
        checkpoint "$shape"
        step "$name" 600 toolbench-eval bench vllm --model "$CKPT/$shape" --n 1,3,6 --batch 32 --prompt-tokens 1024 \
            --new-tokens 128 --dtype bfloat16 --attention-backend FLASH_ATTN --out "$OUTDIR/gpu_vllm_${shape}_$TAG.md"
        [[ "$name" == vllm-llama ]] && step "vllm parity" 300 python3 -m pytest -q -m vllm tests/test_vllm_plugin.py ;;
    grid)
        has_vllm || continue
        step grid 600 toolbench-eval ablate configs/toolsmol_eval_vllm.yaml --limit 20 --concurrency 64 \
            --out "results/runs/toolsmol_vllm_$TAG" ;;
    *)
        echo "gpu_bench.sh: unknown step '$name' (tests hf vllm-llama vllm-qwen grid)" >&2; exit 2 ;;
    esac
done
echo "done; reports in $OUTDIR (gpu_*_$TAG.md), log in $LOG" | tee -a "$LOG"
