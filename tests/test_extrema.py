"""Peak and trough detection: the official rules on hand-made curves, invariants on real waveforms."""

import numpy as np
import pytest

from buckets.extrema import (
    ExtremaRule,
    base_extrema,
    find_peaks,
    find_troughs,
    local_maxima,
    local_minima,
    prominences,
)
from buckets.waveform import attention_upper_bound


def test_local_extrema_are_strict_and_skip_the_edges():
    values = np.array([5, 1, 2, 2, 1, 3, 0, 4])
    assert local_maxima(values).tolist() == [5]  # the plateau 2,2 and both edges do not count
    assert local_minima(values).tolist() == [1, 4, 6]


# Peaks, official rule. Local maxima at 1, 3, 5, 7, 9, 11; global maximum 9 at index 3.
ENVELOPE = np.array([0, 5, 0, 9, 0, 8.5, 0, 7, 0, 6.995, 0, 3, 0, 0, 0], dtype=float)


def test_official_peaks_follow_the_record_high_envelope():
    # 1 lies left of the global maximum: ignored. 5 matches the target (8.5) but is only 2 after 3, so it
    # is not kept, yet it moves the target on; 7 is kept; 9 is too close to 7; 11 is kept.
    peaks = find_peaks(ENVELOPE, max_count=6, min_separation=3, tolerance=0.01, lookahead=4, skip=2)
    assert peaks.tolist() == [3, 7, 11]


def test_official_peaks_stop_at_max_count():
    peaks = find_peaks(ENVELOPE, max_count=2, min_separation=3, tolerance=0.01, lookahead=4, skip=2)
    assert peaks.tolist() == [3, 7]


def test_official_peak_target_only_looks_ahead_lookahead_samples():
    curve = np.array([0, 9, 0, 4, 0, 0, 0, 0, 8, 0], dtype=float)
    short = find_peaks(curve, min_separation=0, tolerance=0.01, lookahead=3, skip=1)
    long = find_peaks(curve, min_separation=0, tolerance=0.01, lookahead=7, skip=1)
    assert short.tolist() == [1, 3]  # the target after 1 is max(curve[2:5]) = 4
    assert long.tolist() == [1, 8]  # max(curve[2:9]) = 8 skips the small peak


def test_official_peaks_stop_early_instead_of_crashing():
    # After the peak at 1 the target becomes the rising window edge (7), which no local maximum can match.
    # Upstream runs off its candidate list (IndexError); we return what was found.
    curve = np.array([0, 9, 0, 5, 0, 6, 7], dtype=float)
    assert find_peaks(curve, min_separation=0, tolerance=0.01, lookahead=10, skip=1).tolist() == [1]


def test_curve_positions_start_at_the_window_low_end():
    peaks = find_peaks(ENVELOPE, window=(100, 114), min_separation=3, tolerance=0.01, lookahead=4, skip=2)
    assert peaks.tolist() == [103, 107, 111]


# Troughs, official rule. Local minima at 1, 3, 5, 7, 9; global minimum -9 at index 7.
TROUGHS = np.array([0, -2, 0, -6, 0, -5.5, 0, -9, 0, -1, 0], dtype=float)


def test_official_troughs_follow_the_record_low_from_the_left():
    # From 7 the next target is min(curve[:5]) = -6, so -5.5 at 5 is passed over and 3 is kept; then the
    # target becomes min(curve[:1]) = 0 and -2 at 1 does not match.
    troughs = find_troughs(TROUGHS, min_separation=3, tolerance=0.01, skip=1)
    assert troughs.tolist() == [3, 7]


def test_official_trough_boundary_is_the_farther_of_skip_and_previous_minimum():
    # skip=4: the boundary is min(7 - 4, 5) = 3, so the target is min(curve[:3]) = -2 and 3 is skipped.
    assert find_troughs(TROUGHS, min_separation=3, tolerance=0.01, skip=4).tolist() == [1, 7]


def test_official_troughs_respect_separation():
    assert find_troughs(TROUGHS, min_separation=4, tolerance=0.01, skip=1).tolist() == [7]


def test_prominence_detector_prefers_prominent_over_high():
    # Peaks at 1 (10), 3 (3), 6 (7, on a shoulder: prominence 0.2), 8 (7.2). The three highest would be
    # 1, 6, 8; the three most prominent are 1, 3, 8.
    curve = np.array([0, 10, 0, 3, 0, 0, 7, 6.8, 7.2, 0], dtype=float)
    assert prominences(curve, local_maxima(curve)) == pytest.approx([10, 3, 0.2, 7.2])
    assert find_peaks(curve, max_count=3, min_separation=0, detector="prominence").tolist() == [1, 3, 8]
    assert find_peaks(curve, max_count=3, min_separation=2, detector="prominence").tolist() == [1, 8]
    assert find_troughs(-curve, max_count=1, min_separation=0, detector="prominence").tolist() == [1]


def test_upstream_values_for_llama_base_10000():
    # Cross-checked once against a transcription of upstream basic.py (find_peak_points /
    # find_trough_points, d=128, window 1000..4090), which gave exactly these positions.
    found = base_extrema(10000, 128, (1000, 4090))
    assert found.peaks == (1030, 1189, 1375, 1589, 1835, 2118)
    assert found.troughs == (1970, 2290, 2629, 3044, 3515, 4060)


@pytest.mark.parametrize("detector", ["official", "prominence"])
@pytest.mark.parametrize(
    "head_dim, bases, window",
    [
        (128, range(10000, 30001, 2500), (1000, 4090)),
        (64, range(100000, 300001, 25000), (2000, 8180)),
    ],
)
def test_invariants_on_real_waveforms(detector, head_dim, bases, window):
    low, high = window
    positions = np.arange(low, high + 1)
    for base in bases:
        curve = attention_upper_bound(positions, base, head_dim)
        found = base_extrema(base, head_dim, window, ExtremaRule(detector=detector))
        for points, separation, sign in ((found.peaks, 50, 1), (found.troughs, 60, -1)):
            points = np.asarray(points)
            assert 1 <= len(points) <= 6
            assert np.all((points > low) & (points < high))
            assert np.all(np.diff(points) > separation)
            i = points - low
            assert np.all(sign * curve[i] > sign * curve[i - 1]) and np.all(
                sign * curve[i] > sign * curve[i + 1]
            )
        if detector == "official":
            # The first peak is a global-maximum local peak (within the match tolerance); likewise the
            # last trough is the global-minimum local trough.
            maxima, minima = local_maxima(curve), local_minima(curve)
            assert curve[found.peaks[0] - low] >= curve[maxima].max() - 1e-3
            assert curve[found.troughs[-1] - low] <= curve[minima].min() + 1e-3


def test_base_extrema_is_cached():
    assert base_extrema(12345, 128, (1000, 4090)) is base_extrema(12345, 128, (1000, 4090))


def test_a_base_source_uses_the_official_window_by_default():
    assert find_peaks(10000).tolist() == list(base_extrema(10000).peaks)


@pytest.mark.parametrize(
    "call",
    [
        lambda: find_peaks(ENVELOPE, detector="prominence-ish"),
        lambda: find_peaks(ENVELOPE, window=(0, 5)),  # window length does not match the curve
        lambda: find_peaks(np.zeros((3, 3))),
        lambda: find_troughs(10000, window=(10, 11)),
        lambda: find_peaks(ENVELOPE, max_count=0),
    ],
)
def test_bad_input_raises_value_error(call):
    with pytest.raises(ValueError):
        call()


# ---- one fast curve per base, and the model's own frequencies ----------------------------------------------


@pytest.mark.parametrize(
    "head_dim, bases, window",
    [
        (128, range(10000, 30001, 500), (1000, 4090)),  # the ToolLLaMA grid: every candidate
        (64, range(100000, 300001, 5000), (2000, 8180)),  # the SmolLM2 grid
        (128, range(500000, 1500001, 100000), (1219, 4986)),  # Llama-3.1's base range, a prompt window
        (128, range(500000, 1500001, 250000), (32000, 130880)),  # ... and its whole context
    ],
)
def test_base_extrema_on_the_fast_curve_equal_the_detectors_on_the_direct_curve(head_dim, bases, window):
    # base_extrema evaluates the waveform by matrix products (buckets.waveform.window_curve); the detectors run
    # on a curve summed term by term must pick exactly the same positions.
    low, high = window
    positions = np.arange(low, high + 1)
    rule = ExtremaRule()
    for base in bases:
        curve = attention_upper_bound(positions, base, head_dim)
        expected_peaks = find_peaks(curve, window=window, max_count=rule.max_count, min_separation=50,
                                    tolerance=rule.tolerance, lookahead=rule.lookahead, skip=rule.skip)
        expected_troughs = find_troughs(curve, window=window, max_count=rule.max_count, min_separation=60,
                                        tolerance=rule.tolerance, skip=rule.skip)
        found = base_extrema(base, head_dim, window, rule)
        assert found.peaks == tuple(expected_peaks.tolist()), base
        assert found.troughs == tuple(expected_troughs.tolist()), base


def llama31_rope():
    """Llama-3.1-8B's RoPE (llama3 scaling, factor 8) from its published config."""
    from buckets.rope import rope_spec_from_config
    from toolbench_eval.reference_models import reference_config

    return rope_spec_from_config(reference_config("llama-3.1-8b"))


def test_extrema_with_the_models_rope_follow_its_scaled_curve():
    from buckets.waveform import model_inverse_frequencies, window_curve

    rope = llama31_rope()
    window = (2000, 8180)
    scaled = base_extrema(500000, None, window, ExtremaRule(), rope)
    plain = base_extrema(500000, 128, window, ExtremaRule())
    assert scaled != plain  # llama3 scaling moves the extrema at ToolBench distances
    curve = window_curve(*window, model_inverse_frequencies(500000, rope))
    assert scaled.peaks == tuple(find_peaks(curve, window=window).tolist())
    assert scaled.troughs == tuple(find_troughs(curve, window=window).tolist())
    assert find_peaks(500000, window=window, rope=rope).tolist() == list(scaled.peaks)
    with pytest.raises(ValueError, match="does not match the model's RoPE"):
        base_extrema(500000, 64, window, ExtremaRule(), rope)
