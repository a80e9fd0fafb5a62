"""toolbench-eval: evaluate tool-using LLMs on ToolBench-format benchmarks, with Attention Buckets."""

import os

__version__ = "0.1.0"

# Large CPU tensors on transparent huge pages. A decode step's logits (contexts x buckets x vocabulary:
# 64 x 6 x 49k floats = 75 MB) are a fresh allocation every step; on 4 KB pages glibc maps it anew and
# the first touch page-faults 18k times, then unmaps it again: 28 ms + 5.5 ms per step against 5 + 0.4 ms
# with PyTorch's THP allocation (2 CPU cores, `bench steps`: 64 contexts x 6 buckets, 94 -> 63 ms per step).
# torch reads the variable at its first allocation, so this only takes effect when toolbench_eval is
# imported before torch (the CLI, Ray workers started from it); set it yourself otherwise.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
