"""Time `auto:6` over a model's whole context, the window runs used before it came from the prompts.

    python scripts/buckets_search_timing.py                         # this checkout
    git archive 3e9f843 buckets | tar -x -C /tmp/before             # the code before the fast waveform
    PYTHONPATH=/tmp/before python scripts/buckets_search_timing.py  # the same searches there

Uses only the plain search arguments (base, head dim, window) that both versions take, from a cold extrema
cache, so the two outputs compare the waveform and detector code alone. Prints one line per setting.
"""

from __future__ import annotations

import time

from buckets.extrema import base_extrema
from buckets.search import NoCoverageError, default_search_range, search_bases, window_for_context

# (label, RoPE base, head dim, max_position_embeddings): the reference configs' facts, llama3 scaling left out.
SETTINGS = [
    ("llama-3.1-8b", 500000, 128, 131072),
    ("qwen2.5-7b", 1000000, 128, 32768),
    ("mistral-7b-v0.1", 10000, 128, 32768),
    ("llama-2-7b", 10000, 128, 4096),
]


def main() -> None:
    for label, base, head_dim, context in SETTINGS:
        low, high, step = default_search_range(base)
        window = window_for_context(context)
        base_extrema.cache_clear()
        started = time.perf_counter()
        try:
            outcome = str(list(search_bases(6, model_base=base, head_dim=head_dim, min_base=low, max_base=high,
                                            step=step, window=window).bases))
        except NoCoverageError:
            outcome = "NoCoverageError"
        print(f"{label}: window {window[0]}-{window[1]}: {time.perf_counter() - started:.2f} s, {outcome}")


if __name__ == "__main__":
    main()
