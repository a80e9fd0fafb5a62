"""Context extension in the probe: --rope-scaling parsing, the extended configs, cos/sin equal to transformers'
rotary embedding for every type (per-row, several bases), the position gap, and dense/trough positions."""

from __future__ import annotations

import copy

import pytest
import torch

from toolbench_eval.cli import main
from toolbench_eval.errors import UserError
from toolbench_eval.probe.engine import GappedRotary, ProbeGenerator
from toolbench_eval.probe.runner import (
    ProbeSettings,
    _donor_sets,
    nearest_indices,
    resolve_configs,
    target_positions,
)
from toolbench_eval.probe.scaling import RopeScaling, parse_rope_scaling, scaled_config, trained_context

TRAINED = 64  # the tiny model's "trained context" (max_position_embeddings)


@pytest.fixture(scope="module")
def tiny_config(tiny_tokenizer):
    from conftest import build_tiny_llama

    return build_tiny_llama(tiny_tokenizer, max_position_embeddings=TRAINED).config


# ---- parsing and configs -------------------------------------------------------------------------


def test_parse_rope_scaling_reads_kinds_and_factors():
    assert parse_rope_scaling(None) == [RopeScaling()]
    assert [s.name for s in parse_rope_scaling("none,linear:2,dynamic:4,yarn:2.5,linear:2")] == [
        "none", "linear:2", "dynamic:4", "yarn:2.5"]


@pytest.mark.parametrize("text, message", [
    ("ntk:2", "choose none, linear:F"), ("yarn", "write yarn:F"), ("linear:1", "must be > 1"),
    ("none:2", "takes no factor"), (",", "at least one"),
])
def test_parse_rope_scaling_rejects_bad_entries(text, message):
    with pytest.raises(UserError, match=message):
        parse_rope_scaling(text)


def test_scaled_config_follows_transformers_conventions(tiny_config):
    assert scaled_config(tiny_config, RopeScaling()) is tiny_config
    yarn = scaled_config(tiny_config, RopeScaling("yarn", 2.0))
    assert yarn.rope_parameters == {"rope_theta": 10000.0, "rope_type": "yarn", "factor": 2.0,
                                    "original_max_position_embeddings": TRAINED}
    assert yarn.max_position_embeddings == 2 * TRAINED and trained_context(yarn) == TRAINED
    dynamic = scaled_config(tiny_config, RopeScaling("dynamic", 2.0))
    assert dynamic.max_position_embeddings == TRAINED  # dynamic NTK's threshold is the trained length
    assert tiny_config.rope_parameters["rope_type"] == "default"  # the original is untouched
    with pytest.raises(UserError, match="already 'yarn'"):
        scaled_config(yarn, RopeScaling("linear", 2.0))


# ---- cos/sin: the bucketed path equals transformers' LlamaRotaryEmbedding for each type ----------------


@pytest.mark.parametrize("scaling", ["linear:2", "dynamic:2", "yarn:2", "yarn:4"])
def test_per_row_rotary_equals_transformers_rotary_for_each_extension(tiny_config, scaling):
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    from buckets.rope import PerRowRotary, clear_table_cache, rope_spec_from_config

    clear_table_cache()
    config = scaled_config(tiny_config, parse_rope_scaling(scaling)[0])
    bases = (10000.0, 25000.0)
    rotary = PerRowRotary(bases, rope_spec_from_config(config), dtype=torch.float32, device="cpu")
    references = []
    for base in bases:  # bucket k must be a model whose extended config has rope_theta = b_k
        reference_config = copy.deepcopy(config)
        reference_config.rope_parameters = {**config.rope_parameters, "rope_theta": base}
        references.append(LlamaRotaryEmbedding(reference_config))
    x = torch.zeros(1, dtype=torch.float32)
    rotary.set_rows(torch.tensor([0, 1]))
    # Within the trained length, then a forward past it (dynamic NTK enlarges its base there), then decode steps.
    for length in (TRAINED - 8, 3 * TRAINED, 3 * TRAINED + 1, 3 * TRAINED + 2):
        positions = torch.arange(max(0, length - 8), length)[None].expand(2, -1)
        cos, sin = rotary(x, positions)
        for row, reference in enumerate(references):
            ref_cos, ref_sin = reference(x, positions[row : row + 1])
            torch.testing.assert_close(cos[row : row + 1], ref_cos, rtol=0, atol=1e-6)
            torch.testing.assert_close(sin[row : row + 1], ref_sin, rtol=0, atol=1e-6)
    if scaling.startswith("yarn"):  # the attention factor is in cos/sin, so the check above covers it
        assert float(cos.abs().max()) > 1.0


# ---- the position gap ----------------------------------------------------------------------------------


def test_gapped_rotary_shifts_only_positions_from_its_start():
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, x, position_ids):
            seen.append(position_ids.clone())
            return position_ids, position_ids

    GappedRotary(Recorder(), start=3, gap=100)(None, torch.tensor([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]))
    assert seen[0].tolist() == [[0, 1, 2, 103, 104], [105, 106, 107, 108, 109]]
    with pytest.raises(ValueError):
        GappedRotary(Recorder(), start=0, gap=-1)


@pytest.mark.parametrize("scaling", ["none", "yarn:2"])
def test_generator_with_a_gap_matches_the_model_fed_shifted_positions(divergent_llama, tiny_tokenizer, scaling):
    """Greedy tokens of the probe generator (own base, per-row RoPE, gap) equal a plain greedy loop over the
    model given the extended config's rotary and explicitly shifted position ids."""
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    from buckets.generation import DecodeParams

    start, gap, steps = 5, 300, 6
    prompt = tiny_tokenizer("The key 12 has the value 100 and then", add_special_tokens=False)["input_ids"]
    extension = parse_rope_scaling(scaling)[0]
    generator = ProbeGenerator(divergent_llama, tiny_tokenizer, bases=[10000.0], scaling=extension, gap=gap)
    generator.gap_start = start
    got = generator.generate([prompt], DecodeParams(max_new_tokens=steps, ignore_eos=True))[0].token_ids

    decoder = divergent_llama.get_decoder()
    original = decoder.rotary_emb
    decoder.rotary_emb = LlamaRotaryEmbedding(scaled_config(divergent_llama.config, extension))
    try:
        ids = list(prompt)
        with torch.inference_mode():
            for _ in range(steps):
                positions = torch.arange(len(ids))
                positions = torch.where(positions >= start, positions + gap, positions)
                logits = divergent_llama(input_ids=torch.tensor([ids]), position_ids=positions[None]).logits
                ids.append(int(logits[0, -1].argmax()))
    finally:
        decoder.rotary_emb = original
    assert got == ids[len(prompt):]
    # and the gap matters: without it the same prompt decodes differently for this divergent model
    plain = ProbeGenerator(divergent_llama, tiny_tokenizer, bases=[10000.0], scaling=extension)
    assert plain.generate([prompt], DecodeParams(max_new_tokens=steps, ignore_eos=True))[0].token_ids != got


# ---- configs x scalings ---------------------------------------------------------------------------------


def test_each_scaling_repeats_every_config_and_only_the_unscaled_own_base_is_the_reference():
    configs = resolve_configs(10000.0, [], [(10000.0, 20000.0)], search=None, scalings=["none", "yarn:2"])
    assert [c.label for c in configs] == ["base 10k (own)", "buckets {10k, 20k}",
                                          "base 10k · yarn:2", "buckets {10k, 20k} · yarn:2"]
    assert [c.own for c in configs] == [True, False, False, False]
    # unscaled keys are those of earlier runs (their records still count); scaled keys differ
    assert configs[0].key == "base=10000" and configs[2].key == "base=10000|rope=yarn:2"
    donors = _donor_sets(configs)  # a single base borrows prefill only from a set with the same RoPE
    assert donors[configs[0].key] is configs[1] and donors[configs[2].key] is configs[3]


def test_settings_identity_omits_a_zero_gap_so_older_folders_resume():
    assert "position_gap" not in ProbeSettings("m", "float32", [10], "8").identity()
    assert ProbeSettings("m", "float32", [10], "8", position_gap=500).identity()["position_gap"] == 500


# ---- dense and trough positions ------------------------------------------------------------------------


def test_positions_all_troughs_and_combinations(tiny_tokenizer):
    settings = ProbeSettings("m", "float32", [6], "all", prompt_style="plain")
    assert target_positions(settings, tiny_tokenizer, 6) == [0, 1, 2, 3, 4, 5]
    asked = []

    def extrema(low, high):
        asked.append((low, high))
        return [high, low]  # the farthest and the nearest target distance

    settings = ProbeSettings("m", "float32", [6], "troughs", prompt_style="plain")
    assert target_positions(settings, tiny_tokenizer, 6, extrema) == [0, 5]
    low, high = asked[0]
    assert 0 < low < high  # the window spans the targets' distances (index 5 nearest, index 0 farthest)
    settings = ProbeSettings("m", "float32", [6], "3+troughs", prompt_style="plain", position_gap=1000)
    assert target_positions(settings, tiny_tokenizer, 6, extrema) == [0, 2, 5]
    assert asked[1] == (low + 1000, high + 1000)  # the gap is part of the RoPE distance
    with pytest.raises(UserError, match="needs the model's RoPE"):
        target_positions(settings, tiny_tokenizer, 6)


def test_nearest_indices_breaks_ties_towards_the_lower_index():
    assert nearest_indices([30, 20, 10], [25, 15, 100, -5]) == [0, 1, 2]


def test_cli_rejects_bad_scaling_and_gap_before_loading_a_model(tmp_path, capsys):
    assert main(["probe", "kv", "--rope-scaling", "ntk:2", "--out", str(tmp_path)]) == 2
    assert "--rope-scaling" in capsys.readouterr().err
    assert main(["probe", "kv", "--position-gap", "-5", "--out", str(tmp_path)]) == 2
    assert "--position-gap must be >= 0" in capsys.readouterr().err
