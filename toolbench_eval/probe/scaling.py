"""Context-extension methods for the probe: RoPE scaling applied to a pretrained model at inference.

`--rope-scaling none,linear:2,dynamic:2,yarn:2` turns each entry into a copy of the model's config whose
``rope_parameters`` say what transformers would read from a Llama config extended that way:

- ``linear:F`` position interpolation (Chen et al. 2023): every frequency divided by F;
- ``dynamic:F`` dynamic NTK: plain frequencies up to the trained length, an enlarged base beyond it, grown
  with the sequence (transformers' rule; the trained length is ``max_position_embeddings``);
- ``yarn:F`` YaRN (Peng et al. 2023): per-frequency interpolation between 1 and F plus the attention factor
  0.1 ln F + 1 on cos/sin, with ``original_max_position_embeddings`` = the trained length.

The bucketed forward (`buckets.rope.PerRowRotary`) reads the same dict, so each bucket of a set extends the
model the same way with its own base; tests/test_probe_scaling.py checks its cos/sin against transformers'
`LlamaRotaryEmbedding` for every type.

>>> parse_rope_scaling("none, yarn:2,linear:4")
[RopeScaling(kind='none', factor=1.0), RopeScaling(kind='yarn', factor=2.0), RopeScaling(kind='linear', factor=4.0)]
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from toolbench_eval.errors import UserError

SCALING_KINDS = ("none", "linear", "dynamic", "yarn")


@dataclass(frozen=True)
class RopeScaling:
    """One context-extension method: `kind` (none|linear|dynamic|yarn) at `factor` (x trained context)."""

    kind: str = "none"
    factor: float = 1.0

    @property
    def name(self) -> str:
        """``none`` or ``yarn:2`` (the spelling of --rope-scaling, and part of a record's config key)."""
        return "none" if self.kind == "none" else f"{self.kind}:{self.factor:g}"


NO_SCALING = RopeScaling()


def parse_rope_scaling(text: str | None) -> list[RopeScaling]:
    """``"none,linear:2,yarn:2"`` -> one `RopeScaling` per entry (duplicates dropped, order kept)."""
    found: list[RopeScaling] = []
    for part in filter(None, (p.strip() for p in (text or "none").split(","))):
        kind, _, factor_text = part.partition(":")
        kind = kind.strip().lower()
        if kind not in SCALING_KINDS:
            raise UserError(f"--rope-scaling: {part!r}: choose none, linear:F, dynamic:F or yarn:F "
                            "(e.g. --rope-scaling none,linear:2,dynamic:2,yarn:2)")
        if kind == "none":
            if factor_text:
                raise UserError(f"--rope-scaling: {part!r}: 'none' takes no factor")
            scaling = NO_SCALING
        else:
            try:
                factor = float(factor_text)
            except ValueError:
                raise UserError(f"--rope-scaling: {part!r}: write {kind}:F with a number F > 1, e.g. {kind}:2") from None
            if not factor > 1:
                raise UserError(f"--rope-scaling: {part!r}: the factor must be > 1 (1 is 'none')")
            scaling = RopeScaling(kind, factor)
        if scaling not in found:
            found.append(scaling)
    if not found:
        raise UserError("--rope-scaling: give at least one of none, linear:F, dynamic:F, yarn:F")
    return found


def trained_context(config) -> int:
    """The context the model was trained at: ``original_max_position_embeddings`` when its config is
    already extended, else ``max_position_embeddings``."""
    from buckets.rope import rope_parameters

    params = rope_parameters(config)
    return int(params.get("original_max_position_embeddings") or config.max_position_embeddings)


def scaled_config(config, scaling: RopeScaling):
    """A copy of `config` whose RoPE is extended by `scaling` (the config itself when `scaling` is none).

    Only RoPE fields change. Refuses a config that is already scaled: stacking two extensions is not
    something transformers defines.
    """
    from buckets.rope import rope_parameters

    if scaling.kind == "none":
        return config
    params = rope_parameters(config)
    if params["rope_type"] != "default":
        raise UserError(f"--rope-scaling {scaling.name}: the model's RoPE is already {params['rope_type']!r}; "
                        "context extension applies to a model with plain RoPE (use --rope-scaling none)")
    trained = trained_context(config)
    new = copy.deepcopy(config)
    rope = {"rope_theta": params["rope_theta"], "rope_type": scaling.kind, "factor": scaling.factor}
    if scaling.kind == "yarn":
        rope["original_max_position_embeddings"] = trained
    new.rope_parameters = rope
    # dynamic NTK reads the trained length from max_position_embeddings (transformers' convention); the
    # others advertise the extended context there, as extended checkpoints do.
    new.max_position_embeddings = trained if scaling.kind == "dynamic" else int(trained * scaling.factor)
    return new
