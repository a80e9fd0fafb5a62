"""The attention upper bound f(m; b): values, symmetries, scaling, shapes and bad input."""

import math

import numpy as np
import pytest

from buckets.waveform import (
    attention_upper_bound,
    effective_to_tokens,
    inverse_frequencies,
    model_inverse_frequencies,
    tokens_to_effective,
    waveform_axis,
    window_curve,
)


def reference_bound(m: float, base: float, d: int) -> float:
    """The formula term by term, as plain Python floats."""
    return sum(2 * math.cos(m * base ** (-2 * j / d)) for j in range(d // 2)) / math.sqrt(d)


@pytest.mark.parametrize("head_dim", [128, 64, 2])
def test_value_at_zero_distance_is_sqrt_head_dim(head_dim):
    assert float(attention_upper_bound(0, 10000, head_dim)) == pytest.approx(math.sqrt(head_dim), abs=1e-12)


def test_value_at_zero_for_llama_head_dim_is_11_3137():
    assert round(float(attention_upper_bound(0, 10000, 128)), 4) == 11.3137


@pytest.mark.parametrize("base, head_dim", [(10000, 128), (25000, 128), (100000, 64)])
def test_matches_the_formula_term_by_term(base, head_dim):
    distances = np.array([1, 7, 100, 1234, 4090, 8179])
    expected = [reference_bound(float(m), base, head_dim) for m in distances]
    np.testing.assert_allclose(attention_upper_bound(distances, base, head_dim), expected, rtol=0, atol=1e-10)


def test_even_in_distance():
    m = np.arange(0, 3000, 7)
    np.testing.assert_allclose(attention_upper_bound(-m, 10000), attention_upper_bound(m, 10000), atol=1e-12)


def test_single_frequency_is_periodic():
    # head_dim 2 keeps only theta_0 = 1: f(m) = sqrt(2) cos(m), period 2 pi.
    m = np.linspace(0, 20, 101)
    f = attention_upper_bound(m, 10000, head_dim=2)
    np.testing.assert_allclose(f, math.sqrt(2) * np.cos(m), atol=1e-12)
    np.testing.assert_allclose(attention_upper_bound(m + 2 * math.pi, 10000, head_dim=2), f, atol=1e-12)


@pytest.mark.parametrize("scale", [2.0, 4.0, 0.5])
def test_position_scale_divides_the_distance(scale):
    m = np.arange(0, 9000, 13, dtype=float)
    np.testing.assert_allclose(
        attention_upper_bound(m, 10000, 128, position_scale=scale),
        attention_upper_bound(m / scale, 10000, 128),
        atol=1e-12,
    )


def test_several_bases_give_one_row_each():
    m = np.arange(1000, 1100)
    rows = attention_upper_bound(m, [10000, 18000, 25000], 128)
    assert rows.shape == (3, 100)
    assert rows.dtype == np.float64
    for row, base in zip(rows, [10000, 18000, 25000]):
        np.testing.assert_array_equal(row, attention_upper_bound(m, base, 128))
    assert not np.allclose(rows[0], rows[1])


def test_long_ranges_are_chunked_without_changing_values():
    m = np.arange(0, 40_000)  # more than two chunks
    whole = attention_upper_bound(m, 10000, 64)
    for start in (0, 16_383, 16_384, 32_768, 39_999):
        assert whole[start] == pytest.approx(reference_bound(float(start), 10000, 64), abs=1e-10)


def test_inverse_frequencies():
    theta = inverse_frequencies(10000, 128)
    assert theta.shape == (64,)
    assert theta[0] == 1.0
    assert theta[-1] == pytest.approx(10000 ** (-126 / 128), rel=1e-14)
    assert np.all(np.diff(theta) < 0)


def test_axis_conversions_round_trip():
    assert effective_to_tokens([1000, 4090], 2).tolist() == [2000, 8180]
    assert tokens_to_effective([2000, 8180], 2).tolist() == [1000, 4090]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base": 10000, "head_dim": 127},
        {"base": 10000, "head_dim": 0},
        {"base": 1, "head_dim": 128},
        {"base": 10000, "head_dim": 128, "position_scale": 0},
    ],
)
def test_bad_parameters_raise(kwargs):
    with pytest.raises(ValueError):
        attention_upper_bound([0, 1], **kwargs)


# ---- fast window curve and the model's own frequencies ---------------------------------------------------


@pytest.mark.parametrize(
    "base, head_dim, low, high",
    [(10000, 128, 1000, 4090), (500000, 128, 32000, 130880), (1e6, 128, 0, 2), (100000, 64, 2000, 8180)],
)
def test_window_curve_equals_the_direct_sum(base, head_dim, low, high):
    theta = inverse_frequencies(base, head_dim)
    direct = attention_upper_bound(np.arange(low, high + 1), base, head_dim)
    np.testing.assert_allclose(window_curve(low, high, theta), direct, rtol=0, atol=1e-9)


def test_window_curve_rejects_an_empty_window():
    with pytest.raises(ValueError, match="empty window"):
        window_curve(10, 9, inverse_frequencies(10000, 8))


def rope_spec(rope_type="default", **scaling):
    """A RopeSpec read from a small transformers Llama config (head_dim 16) with the given scaling."""
    from transformers import LlamaConfig

    from buckets.rope import rope_spec_from_config

    parameters = {"rope_type": rope_type, "rope_theta": 10000.0, **scaling}
    config = LlamaConfig(hidden_size=64, num_attention_heads=4, num_key_value_heads=2, num_hidden_layers=1,
                         intermediate_size=32, vocab_size=16, max_position_embeddings=256,
                         rope_parameters=parameters)
    return rope_spec_from_config(config), config


LLAMA3 = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
YARN = {"factor": 4.0, "original_max_position_embeddings": 64}


@pytest.mark.parametrize(
    "rope_type, scaling", [("default", {}), ("linear", {"factor": 2.0}), ("llama3", LLAMA3), ("yarn", YARN)]
)
def test_the_waveform_is_the_score_the_models_rotary_embedding_gives(rope_type, scaling):
    # The bound is q . R k / sqrt(d) for all-ones q and k; build that score with transformers' own rotary module
    # and apply_rotary_pos_emb for a base that is not the config's: the search's "base" is the forward's.
    import torch
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    spec, config = rope_spec(rope_type, **scaling)
    base = 23000.0
    config.rope_parameters = {**config.rope_parameters, "rope_theta": base}
    rotary = LlamaRotaryEmbedding(config)
    distances = torch.arange(0, 200)
    ones = torch.ones(1, 1, distances.numel(), spec.head_dim)
    cos, sin = rotary(ones, distances[None])
    queries, _ = apply_rotary_pos_emb(ones, ones, cos, sin)  # query at position m
    key = ones[0, 0, 0] * cos[0, 0]  # key at position 0 (sin 0 = 0)
    score = (queries[0, 0] @ key).double().numpy() / math.sqrt(spec.head_dim) / rotary.attention_scaling**2
    # Token distances in: the linear ratio is the spec's own position scale.
    bound = attention_upper_bound(distances.numpy(), base, rope=spec)
    np.testing.assert_allclose(bound, score, rtol=0, atol=2e-5)
    plain = attention_upper_bound(distances.numpy(), base, spec.head_dim)  # unscaled b^(-2j/d), token axis
    assert (np.abs(plain - score).max() > 0.1) == (rope_type != "default")


def test_model_frequencies_are_the_rope_modules_on_the_effective_axis():
    from buckets.rope import inverse_frequencies as rope_inverse_frequencies

    spec, _ = rope_spec("llama3", **LLAMA3)
    theta = model_inverse_frequencies(30000, spec)
    np.testing.assert_array_equal(theta, rope_inverse_frequencies(30000.0, spec)[0].double().numpy())
    plain = inverse_frequencies(30000, 16)
    assert theta[0] == pytest.approx(plain[0])  # high frequencies keep their value
    assert theta[-1] == pytest.approx(plain[-1] / 8, rel=1e-6)  # long wavelengths are divided by the factor
    linear, _ = rope_spec("linear", factor=2.0)
    assert linear.position_scale == 2.0
    np.testing.assert_allclose(model_inverse_frequencies(30000, linear), plain, rtol=1e-6)


def test_a_rope_sets_head_dim_and_scale_and_refuses_others():
    spec, _ = rope_spec("linear", factor=2.0)
    assert waveform_axis(None, None, spec) == (16, 2.0)
    assert waveform_axis(16, 2.0, spec) == (16, 2.0)
    assert waveform_axis(None, None) == (128, 1.0)
    with pytest.raises(ValueError, match="head_dim 128 does not match"):
        attention_upper_bound([0, 1], 10000, 128, rope=spec)
    with pytest.raises(ValueError, match="position_scale 1"):
        attention_upper_bound([0, 1], 10000, position_scale=1, rope=spec)
