"""The attention upper bound f(m; b): values, symmetries, scaling, shapes and bad input."""

import math

import numpy as np
import pytest

from buckets.waveform import (
    attention_upper_bound,
    effective_to_tokens,
    inverse_frequencies,
    tokens_to_effective,
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
