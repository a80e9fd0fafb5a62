"""How many contexts an engine may decode at once: a memory budget that caps the batch instead of crashing.

With N buckets every context holds N rows of KV, so a batch that fits plain decoding runs out of memory
with buckets (on an H100 at 32 GB, 6 buckets x `max_batch_size: 32` killed 5 of 6 processes). The hf
engine therefore admits a waiting prompt only while the estimated peak memory of the batch, newcomer
included, stays within a budget: a share of the device memory free when the engine starts (after the
weights are loaded), less what the prefix cache may hold.

The estimate follows the decode loop's own layout (`buckets.batch_layout`, `buckets.growing_cache`):

- KV: contexts x N rows x the widest context's span (right-aligned padding), where a context's span is
  its prompt + `max_new_tokens` + drafts, with the growing cache's spare rows and margins and the old window
  held while a buffer regrows (`growing_cache.peak_buffer_tokens`);
- one prefill at a time: N rows x the prompt's tokens x the layer's working set (hidden states, MLP
  intermediate, and on CPU the attention score matrix, which SDPA's CPU kernel materialises for a masked
  prefill; CUDA's memory-efficient kernels do not).

It is an estimate, deliberately pessimistic: a batch it refuses might have fitted, never the reverse for
the parts it models (allocator fragmentation and other processes are not modelled; `memory_fraction`
leaves room for them).

>>> from transformers import LlamaConfig
>>> config = LlamaConfig(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
...                      num_key_value_heads=2, vocab_size=100)
>>> budget = MemoryBudget.for_config(config, buckets=6, dtype_bytes=4, limit_bytes=64 << 20, device="cuda")
>>> budget.kv_bytes_per_token   # 2 (K,V) x 2 layers x 2 heads x 16 dims x 4 bytes x 6 buckets
3072
>>> budget.admits([1000, 1000], prefill_tokens=1000), budget.admits([1000] * 8, prefill_tokens=1000)
(True, False)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from buckets.growing_cache import peak_buffer_tokens
from buckets.rope import config_head_dim


class MemoryBudgetError(ValueError):
    """A prompt that would not fit in the engine's memory budget even alone."""


def free_device_bytes(device) -> int:
    """Bytes free now on `device`: CUDA's own count, or the host's available memory for CPU."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


@dataclass(frozen=True)
class MemoryBudget:
    """Peak-memory estimate of a batch of contexts against `limit_bytes`; see the module docstring."""

    limit_bytes: int
    kv_bytes_per_token: int  # one context: keys and values of every layer, all N bucket rows
    prefill_bytes_per_token: int  # one prefill: hidden states, MLP intermediate (all N rows)
    score_bytes_per_token_pair: int  # one prefill on CPU: the attention score matrix (0 on CUDA)
    buckets: int

    @classmethod
    def for_config(cls, config, *, buckets: int, dtype_bytes: int, limit_bytes: int, device) -> MemoryBudget:
        layers = int(config.num_hidden_layers)
        kv_heads = int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
        hidden = int(config.hidden_size)
        intermediate = int(getattr(config, "intermediate_size", None) or 4 * hidden)
        kv = 2 * layers * kv_heads * config_head_dim(config) * dtype_bytes * buckets
        # Residual stream, normed copy, attention output, q/k/v, gate/up/act of the MLP: a layer's working set.
        prefill = (6 * hidden + 3 * intermediate) * dtype_bytes * buckets
        scores = 4 * int(config.num_attention_heads) * buckets if str(device).startswith("cpu") else 0
        return cls(int(limit_bytes), kv, prefill, scores, buckets)

    @classmethod
    def for_model(cls, model, *, buckets: int, fraction: float, reserved_bytes: int = 0,
                  limit_bytes: int | None = None) -> MemoryBudget:
        """The budget of an engine on `model`: `limit_bytes` if given, else `fraction` of the memory free now
        less `reserved_bytes`."""
        if not 0 < fraction <= 1:
            raise ValueError(f"memory_fraction must be in (0, 1], got {fraction}")
        parameter = next(model.parameters())
        if limit_bytes is None:
            limit_bytes = int(free_device_bytes(parameter.device) * fraction) - int(reserved_bytes)
        return cls.for_config(model.config, buckets=buckets, dtype_bytes=parameter.element_size(),
                              limit_bytes=max(0, limit_bytes), device=parameter.device)

    def batch_bytes(self, spans: Sequence[int], prefill_tokens: int = 0) -> int:
        """Estimated peak bytes of contexts with these spans (prompt + max new tokens + drafts) decoding
        together while one prompt of `prefill_tokens` tokens is prefilled."""
        kv = peak_buffer_tokens(len(spans), max(spans, default=0)) * self.kv_bytes_per_token
        prefill = prefill_tokens * self.prefill_bytes_per_token
        prefill += prefill_tokens * max(spans, default=prefill_tokens) * self.score_bytes_per_token_pair
        return int(kv + prefill)

    def admits(self, spans: Sequence[int], prefill_tokens: int = 0) -> bool:
        return self.batch_bytes(spans, prefill_tokens) <= self.limit_bytes

    def describe(self, spans: Sequence[int], prefill_tokens: int = 0) -> str:
        gib = 2**30
        return (f"{len(spans)} context(s) of up to {max(spans, default=0)} tokens x {self.buckets} bucket row(s) "
                f"need ~{self.batch_bytes(spans, prefill_tokens) / gib:.2f} GiB; the engine's memory budget is "
                f"{self.limit_bytes / gib:.2f} GiB")
