"""The probe's generator: the bucketed generator with a RoPE extension and an optional position gap.

Two additions to `buckets.generation.BucketedGenerator`, both confined to the time a step is served:

- RoPE scaling (`toolbench_eval.probe.scaling`): while serving, the model's config is swapped for the
  extended copy, so the per-row rotary module is built from the extended ``rope_parameters`` (every
  bucket extended the same way, with its own base). The weights are untouched.
- A position gap: every position from `gap_start` on is moved `gap` positions later, before cos/sin are
  looked up. The question (and the answer) then sit `gap` positions after the data, so RoPE sees the
  relative distances of a context `gap` tokens longer while only the real tokens are computed. This is
  what lets a CPU probe look past the trained context (8,192 positions for SmolLM2: a real 16k prompt
  costs minutes per row); it tests the position encoding alone, without the attention dilution that
  thousands of real filler tokens would add.
"""

from __future__ import annotations

import contextlib

from torch import Tensor, nn

from buckets.generation import BucketedGenerator
from toolbench_eval.probe.scaling import NO_SCALING, RopeScaling, scaled_config


class GappedRotary(nn.Module):
    """Wraps a rotary module: positions >= `start` are looked up `gap` positions later.

    The attention mask is untouched (it follows token order, not position ids), so only RoPE sees the gap.
    """

    def __init__(self, inner: nn.Module, start: int, gap: int) -> None:
        super().__init__()
        if gap < 0 or start < 0:
            raise ValueError(f"position gap needs start >= 0 and gap >= 0, got start={start}, gap={gap}")
        self.inner = inner
        self.start = int(start)
        self.gap = int(gap)

    def forward(self, x: Tensor, position_ids: Tensor) -> tuple[Tensor, Tensor]:
        shifted = position_ids + (position_ids >= self.start).to(position_ids.dtype) * self.gap
        return self.inner(x, shifted)


class ProbeGenerator(BucketedGenerator):
    """A `BucketedGenerator` whose bases follow `scaling`, with an optional position gap per call.

    Set `gap_start` / `gap` before `generate` (the probe groups prompts so that one call shares them).
    """

    def __init__(self, model, tokenizer, bases, fusion: str = "max_logit", *,
                 scaling: RopeScaling = NO_SCALING, gap: int = 0, **kwargs) -> None:
        super().__init__(model, tokenizer, bases=bases, fusion=fusion, **kwargs)
        self.scaling = scaling
        self.config = scaled_config(model.config, scaling)
        self.gap = int(gap)
        self.gap_start = 0

    @contextlib.contextmanager
    def serving(self):
        original = self.model.config
        # The per-row rotary module is built from model.config on first use; serving the extended copy
        # makes that build (and every later step) use the extended RoPE.
        self.model.config = self.config
        try:
            with super().serving():
                if not self.gap:
                    yield
                    return
                decoder = self.model.get_decoder()
                rotary = decoder.rotary_emb
                decoder.rotary_emb = GappedRotary(rotary, self.gap_start, self.gap)
                try:
                    yield
                finally:
                    decoder.rotary_emb = rotary
        finally:
            self.model.config = original
