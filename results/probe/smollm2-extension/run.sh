#!/bin/bash
# The order the runs were made in (2026-12-03, ~08:03-09:12 UTC). Every command is resumable: re-running it
# skips the answers already in the folder's records.jsonl; --samples N adds samples up to N.
set -e
. .venv/bin/activate
export HF_HUB_OFFLINE=1
OUT=results/probe/smollm2-extension
for G in 0 1000 3000 7500; do  # own-base gap scan
  toolbench-eval probe kv --model-args pretrained=smollm2,dtype=float32 --num-pairs 10 --positions 0,5,9 \
      --samples 8 --position-gap $G --threads 1 --batch-size 8 --out $OUT/gap-scan/g$G
done
C="--model-args pretrained=smollm2,dtype=float32 --num-pairs 10 --positions 0,5,9 --buckets auto:3 --threads 1 --batch-size 8"
toolbench-eval probe kv $C --samples 8 --rope-scaling none,linear:2,yarn:2 --out $OUT/native
toolbench-eval probe kv $C --samples 8 --rope-scaling none,linear:2,yarn:2 --position-gap 3000 --out $OUT/gap-3k
toolbench-eval probe kv $C --samples 8 --rope-scaling none,linear:2,dynamic:2,yarn:2 --position-gap 15700 --out $OUT/gap-2x
for N in 16 24 32; do
  toolbench-eval probe kv $C --samples $N --rope-scaling none,linear:2,yarn:2 --position-gap 3000 --out $OUT/gap-3k
done
toolbench-eval probe kv $C --samples 16 --rope-scaling none,linear:2,yarn:2 --out $OUT/native
toolbench-eval probe needles --model-args pretrained=smollm2,dtype=float32 --needles 3 --sentences 24 --samples 16 \
    --buckets auto:3 --threads 1 --batch-size 8 --out results/probe/smollm2-needles
python results/probe/smollm2-extension/combine.py
