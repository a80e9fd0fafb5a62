"""Greedy complementary base search: scoring, merging, invariants by brute force, errors, helpers."""

import json
import math

import pytest

import buckets.search as search_module
from buckets.extrema import Extrema, base_extrema
from buckets.search import (
    NoCoverageError,
    arithmetic_bases,
    candidate_score,
    cover_score,
    default_search_range,
    merge_extrema,
    random_bases,
    search_bases,
    window_for_context,
)


def brute_score(peaks, troughs, cand_peaks, cand_troughs, tol):
    """Pairs counted by plain double loops, as upstream's caculate_cover does."""
    pairs = [(p, t) for p in cand_peaks for t in troughs if abs(p - t) <= tol]
    pairs += [(p, t) for p in peaks for t in cand_troughs if abs(p - t) <= tol]
    cover = len(pairs)
    return cover, (sum((p - t) ** 2 for p, t in pairs) / cover if cover else math.inf)


def test_cover_score_counts_pairs_with_multiplicity():
    assert cover_score([100, 200], [98, 103, 300], 3) == (2, 13.0)
    assert cover_score([100, 100], [101], 3) == (2, 2.0)  # a duplicated peak counts twice
    assert cover_score([100], [104], 3) == (0, 0.0)
    assert cover_score([], [1], 3) == (0, 0.0)


def test_candidate_score_counts_both_directions():
    assert candidate_score([500], [100], [101], [499, 900], 3) == (2, 1.0)
    assert candidate_score([500], [100], [200], [900], 3) == (0, math.inf)


def test_merge_keeps_duplicates_and_drops_positions_in_both_lists():
    assert merge_extrema([10, 30], [20], [20, 40], [30, 50]) == ([10, 40], [50])
    assert merge_extrema([10], [20], [10], [21]) == ([10, 10], [20, 21])


SMALL = {
    "model_base": 10000,
    "head_dim": 128,
    "min_base": 10000,
    "max_base": 20000,
    "step": 500,
    "window": (1000, 4090),
}


def test_search_invariants_and_each_pick_is_the_brute_force_best():
    result = search_bases(5, **SMALL)
    assert result.bases[0] == 10000 and result.picks[0].origin == "initial"
    assert len(result.bases) == 5 and len(set(result.bases)) == 5
    candidates = list(range(10000, 20001, 500))
    peaks, troughs = list(result.picks[0].peaks), list(result.picks[0].troughs)
    for k, pick in enumerate(result.picks[1:], start=1):
        chosen = result.bases[:k]
        scores = {}
        for base in candidates:
            if base in chosen:
                continue
            found = base_extrema(base, 128, (1000, 4090))
            scores[base] = brute_score(peaks, troughs, found.peaks, found.troughs, 3)
        best_cover = max(cover for cover, _ in scores.values())
        best_offset = min(offset for cover, offset in scores.values() if cover == best_cover)
        first_best = min(b for b, s in scores.items() if s == (best_cover, best_offset))
        assert pick.base == first_best
        assert (pick.cover, pick.mean_squared_offset) == (best_cover, pytest.approx(best_offset))
        peaks, troughs = merge_extrema(peaks, troughs, pick.peaks, pick.troughs)
    assert (list(result.merged_peaks), list(result.merged_troughs)) == (peaks, troughs)


def test_search_is_deterministic():
    assert search_bases(4, **SMALL) == search_bases(4, **SMALL)


def test_toolllama_setting_matches_upstream_rules():
    # Cross-checked once against a transcription of upstream base_choose_method1 (initial [10000]).
    result = search_bases(6, model_base=10000, head_dim=128, position_scale=2)
    assert result.bases == (10000, 18000, 20500, 15500, 16000, 19000)
    assert [p.cover for p in result.picks[1:]] == [1, 2, 1, 1, 1]
    # The released initial set [10000, 18000, 19000] (published: [10000, 17500, 18000, 19000, 20000, 25000],
    # which upstream hand-edited, so it is not expected here).
    released = search_bases(6, initial=[10000, 18000, 19000])
    assert released.bases == (10000, 18000, 19000, 20500, 24500, 24000)


def test_initial_set_is_kept_in_order():
    result = search_bases(4, initial=[14000, 10000], **{k: v for k, v in SMALL.items() if k != "model_base"})
    assert result.bases[:2] == (14000, 10000)
    assert [p.origin for p in result.picks] == ["initial", "initial", "greedy", "greedy"]


def test_pair_start_picks_the_brute_force_best_pair():
    kwargs = {"head_dim": 128, "min_base": 10000, "max_base": 14000, "step": 500, "window": (1000, 4090)}
    result = search_bases(2, initial=[], **kwargs)
    b1, b2 = result.bases
    assert b1 < b2 and [p.origin for p in result.picks] == ["pair", "pair"]
    candidates = list(range(10000, 14001, 500))
    scores = {}
    for i, x in enumerate(candidates):
        for y in candidates[i + 1 :]:
            fx, fy = base_extrema(x, 128, (1000, 4090)), base_extrema(y, 128, (1000, 4090))
            scores[(x, y)] = brute_score(fx.peaks, fx.troughs, fy.peaks, fy.troughs, 3)
    best_cover = max(c for c, _ in scores.values())
    best_offset = min(o for c, o in scores.values() if c == best_cover)
    assert scores[(b1, b2)] == (best_cover, pytest.approx(best_offset))
    assert result.picks[1].cover == best_cover


FAKE = {  # pairs (20, 30): cover 2, offset 4; (30, 40): cover 2, offset 9; everything else 0
    10: Extrema((100,), (500,)),
    20: Extrema((1000,), (2000,)),
    30: Extrema((2002, 3000), (998, 4000)),
    40: Extrema((4003,), (2997,)),
}


def test_pair_start_fixes_upstream_stale_tie_break(monkeypatch):
    monkeypatch.setattr(search_module, "base_extrema", lambda base, *args: FAKE[base])
    kwargs = {"initial": [], "min_base": 10, "max_base": 40, "step": 10}
    assert search_bases(2, **kwargs).bases == (20, 30)
    # Upstream forgets the offset of a strictly better pair, so (30, 40) with the larger offset wins there.
    assert search_bases(2, upstream_pair_tiebreak=True, **kwargs).bases == (30, 40)


def test_no_coverage_raises_a_clear_error():
    with pytest.raises(NoCoverageError) as caught:
        search_bases(7, initial=[10000], step=2000)  # upstream appends None here and crashes
    message = str(caught.value)
    assert "bucket 5 of 7" in message and "tolerance" in message and "step" in message
    assert isinstance(caught.value, ValueError)


def test_pair_start_without_any_coverage_raises(monkeypatch):
    monkeypatch.setattr(search_module, "base_extrema", lambda base, *args: FAKE[10])
    with pytest.raises(NoCoverageError, match="pair start"):
        search_bases(2, initial=[], min_base=10, max_base=40, step=10)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": 0},
        {"n": 2, "initial": [10000, 12000, 14000]},
        {"n": 3, "initial": [10000, 10000]},
        {"n": 1, "initial": []},
        {"n": 2, "min_base": 20000, "max_base": 10000},
        {"n": 2, "step": 0},
        {"n": 2, "tolerance": -1},
        {"n": 2, "window": (10, 5)},
    ],
)
def test_bad_arguments_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        search_bases(**kwargs)


def test_n_equal_to_the_initial_set_returns_it():
    assert search_bases(2, initial=[10000, 20000]).bases == (10000, 20000)


def test_result_serialises_with_token_distances():
    result = search_bases(2, position_scale=2, **{k: v for k, v in SMALL.items()})
    data = json.loads(json.dumps(result.to_dict()))
    assert data["bases"] == list(result.bases)
    pick = data["picks"][1]
    assert pick["peaks_tokens"] == [2 * p for p in pick["peaks"]]
    assert data["settings"]["window_tokens"] == [2000, 8180]
    markdown = result.to_markdown()
    assert "| 1 | 10000 | initial |" in markdown and "token distances 2000-8180" in markdown


def test_window_for_context_is_proportional_to_the_official_window():
    assert window_for_context(8192, position_scale=2) == (1000, 4090)
    assert window_for_context(8192) == (2000, 8180)
    assert window_for_context(4096) == (1000, 4090)
    with pytest.raises(ValueError):
        window_for_context(0)


def test_default_search_range():
    assert default_search_range(10000) == (10000, 30000, 500)
    assert default_search_range(500000) == (500000, 1500000, 25000)


def test_arithmetic_and_random_bases():
    assert arithmetic_bases(6, 10000, 25000) == [10000, 13000, 16000, 19000, 22000, 25000]
    assert arithmetic_bases(1, 10000, 25000) == [10000]
    drawn = random_bases(6, 10000, 30000, 500, seed=7)
    assert drawn == random_bases(6, 10000, 30000, 500, seed=7)
    assert drawn != random_bases(6, 10000, 30000, 500, seed=8)
    assert drawn == sorted(set(drawn)) and len(drawn) == 6
    assert all(b in range(10000, 30001, 500) for b in drawn)
    with pytest.raises(ValueError):
        random_bases(50, 10000, 30000, 500, seed=0)


def test_docstring_examples_run():
    import doctest

    import buckets.extrema
    import buckets.plot
    import buckets.waveform

    for module in (buckets.waveform, buckets.extrema, search_module, buckets.plot):
        outcome = doctest.testmod(module)
        assert outcome.attempted > 0 and outcome.failed == 0, module.__name__


def test_prominence_detector_search_is_a_valid_alternative():
    official = search_bases(6, model_base=10000, head_dim=128, position_scale=2)
    prominent = search_bases(6, model_base=10000, head_dim=128, position_scale=2, detector="prominence")
    assert prominent.settings.rule.detector == "prominence"
    assert prominent.bases[0] == 10000 and len(set(prominent.bases)) == 6
    # Spread-out extrema let every pick cover more pairs than the official detector's picks do.
    assert sum(p.cover for p in prominent.picks[1:]) > sum(p.cover for p in official.picks[1:])
