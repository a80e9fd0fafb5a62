"""A per-context KV prefix cache: reuse the keys/values of an earlier prompt + completion.

Reasoning steps grow one conversation: step t+1's prompt is step t's prompt, its completion and a
new observation. Storing each context's KV under a key (a trajectory id) lets the next call
prefill only the tokens past the longest common token prefix; a new key may borrow the shared
opening (system prompt, tool list) of another key's entry. Entries live on the model's device,
bounded by an LRU over both entry count and bytes.

Each entry holds, per decoder layer, `(keys, values)` shaped `[N, kv_heads, length, head_dim]` (one
row per bucket, no padding) and the `length` token ids they encode.

>>> import torch
>>> cache = PrefixCache(max_entries=2)
>>> kv = [(torch.zeros(1, 1, 3, 2), torch.zeros(1, 1, 3, 2))]
>>> cache.store("t1", [5, 6, 7], kv)
>>> entry, reusable = cache.lookup("t1", [5, 6, 7, 8, 9])
>>> reusable                                     # all three cached tokens are a prefix
3
>>> cache.lookup("t1", [5, 6, 7])[1]             # at least one token must be left to prefill
2
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from torch import Tensor

LayerKV = tuple[Tensor, Tensor]


@dataclass
class PrefixEntry:
    token_ids: np.ndarray  # int64 [length]
    kv: list[LayerKV]  # per layer: keys, values [N, kv_heads, length, head_dim]
    nbytes: int


def common_prefix_length(a: np.ndarray, b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences.

    >>> common_prefix_length(np.array([1, 2, 3]), [1, 2, 4, 5])
    2
    """
    b = np.asarray(b, dtype=np.int64)
    m = min(len(a), len(b))
    differ = np.flatnonzero(a[:m] != b[:m])
    return int(differ[0]) if len(differ) else m


class PrefixCache:
    """LRU map from a context key to the KV of the tokens it has already seen.

    A key's own entry is its first choice. With `share_across_keys`, a context may also borrow the longest
    common prefix of any other entry (at least `min_shared_tokens` long): trajectories of one benchmark open
    with the same system prompt, so a new trajectory's first call skips that part of its prefill. The KV of a
    prefix depends only on its tokens (causal attention), so a borrowed prefix is as good as one's own.
    """

    def __init__(self, max_entries: int = 32, max_bytes: int = 2 << 30, *, share_across_keys: bool = True,
                 min_shared_tokens: int = 32) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.share_across_keys = share_across_keys
        self.min_shared_tokens = min_shared_tokens
        self._entries: OrderedDict[Hashable, PrefixEntry] = OrderedDict()
        self._lock = threading.Lock()
        self.nbytes = 0
        self.reused_tokens = 0
        self.lookups = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def lookup(self, key: Hashable | None, token_ids: Sequence[int]) -> tuple[PrefixEntry | None, int]:
        """Return `(entry, reusable_length)`: how many leading tokens of `token_ids` have cached KV.

        The reusable length is capped at ``len(token_ids) - 1`` because the last prompt token must
        go through the model to produce the next-token logits.
        """
        if key is None:
            return None, 0
        with self._lock:
            self.lookups += 1
            best_key, best_length = None, 0
            own = self._entries.get(key)
            if own is not None:
                best_key, best_length = key, common_prefix_length(own.token_ids, token_ids)
            if self.share_across_keys:
                for other_key, other in self._entries.items():
                    length = common_prefix_length(other.token_ids, token_ids)
                    if length >= self.min_shared_tokens and length > best_length:
                        best_key, best_length = other_key, length
            if best_key is None:
                return None, 0
            entry = self._entries[best_key]
            self._entries.move_to_end(best_key)
        reusable = min(best_length, len(token_ids) - 1)
        self.reused_tokens += max(reusable, 0)
        return (entry, reusable) if reusable > 0 else (None, 0)

    def holds(self, key: Hashable | None, entry: PrefixEntry | None) -> bool:
        """True when `entry` is `key`'s own entry (not one borrowed from another key)."""
        return entry is not None and key is not None and self._entries.get(key) is entry

    def store(self, key: Hashable, token_ids: Sequence[int], kv: list[LayerKV]) -> None:
        """Remember `kv` (already cropped to `len(token_ids)` positions) for `key`, evicting LRU entries."""
        nbytes = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in kv)
        entry = PrefixEntry(np.asarray(token_ids, dtype=np.int64), kv, nbytes)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.nbytes -= old.nbytes
            if nbytes > self.max_bytes:
                return  # larger than the whole budget: keeping it would evict everything else
            self._entries[key] = entry
            self.nbytes += nbytes
            while len(self._entries) > self.max_entries or self.nbytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self.nbytes -= evicted.nbytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.nbytes = 0
