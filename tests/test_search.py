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

    import buckets.coverage
    import buckets.extrema
    import buckets.waveform

    for module in (buckets.waveform, buckets.extrema, search_module, buckets.coverage):
        outcome = doctest.testmod(module)
        assert outcome.attempted > 0 and outcome.failed == 0, module.__name__


def test_prominence_detector_search_is_a_valid_alternative():
    official = search_bases(6, model_base=10000, head_dim=128, position_scale=2)
    prominent = search_bases(6, model_base=10000, head_dim=128, position_scale=2, detector="prominence")
    assert prominent.settings.rule.detector == "prominence"
    assert prominent.bases[0] == 10000 and len(set(prominent.bases)) == 6
    # Spread-out extrema let every pick cover more pairs than the official detector's picks do.
    assert sum(p.cover for p in prominent.picks[1:]) > sum(p.cover for p in official.picks[1:])


# ---- stopping early, the model's RoPE, coverage and advice -------------------------------------------------


def test_a_stopped_search_keeps_its_partial_result():
    with pytest.raises(NoCoverageError) as caught:
        search_bases(7, initial=[10000], step=2000)
    partial = caught.value.partial
    assert not partial.complete and len(partial.bases) == 4 and partial.bases[0] == 10000
    assert partial.stopped == str(caught.value)
    returned = search_bases(7, initial=[10000], step=2000, allow_partial=True)
    assert returned == partial
    data = json.loads(json.dumps(returned.to_dict()))
    assert data["complete"] is False and "bucket 5 of 7" in data["stopped"]
    assert "Stopped after 4 of 7" in returned.to_markdown()
    # A complete result carries neither key: its JSON is what it always was.
    assert "complete" not in search_bases(2, **SMALL).to_dict()


def test_pair_start_without_coverage_keeps_an_empty_partial(monkeypatch):
    monkeypatch.setattr(search_module, "base_extrema", lambda base, *args: FAKE[10])
    partial = search_bases(2, initial=[], min_base=10, max_base=40, step=10, allow_partial=True)
    assert partial.bases == () and "pair start" in partial.stopped


def llama31_rope():
    """Llama-3.1-8B's RoPE (llama3 scaling, factor 8) from its published config."""
    from buckets.rope import rope_spec_from_config
    from toolbench_eval.reference_models import reference_config

    return rope_spec_from_config(reference_config("llama-3.1-8b"))


def test_search_with_the_models_rope_records_it_and_picks_brute_force_best():
    rope = llama31_rope()
    window = window_for_context(4883)
    result = search_bases(4, model_base=500000, rope=rope, min_base=500000, max_base=1500000, step=25000,
                          window=window)
    assert result.complete and result.settings.head_dim == 128 and result.settings.position_scale == 1.0
    peaks, troughs = list(result.picks[0].peaks), list(result.picks[0].troughs)
    for k, pick in enumerate(result.picks[1:], start=1):
        scores = {}
        for base in range(500000, 1500001, 25000):
            if base not in result.bases[:k]:
                found = base_extrema(base, None, window, result.settings.rule, rope)
                scores[base] = brute_score(peaks, troughs, found.peaks, found.troughs, 3)
        best = max(scores.values(), key=lambda s: (s[0], -s[1]))
        assert scores[pick.base] == best
        peaks, troughs = merge_extrema(peaks, troughs, pick.peaks, pick.troughs)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["settings"]["rope"]["rope_type"] == "llama3" and data["settings"]["rope"]["factor"] == 8.0
    assert "model RoPE llama3 (factor 8" in result.to_markdown()
    plain = search_bases(4, model_base=500000, head_dim=128, min_base=500000, max_base=1500000, step=25000,
                         window=window)
    assert plain.bases != result.bases and "rope" not in plain.to_dict()["settings"]
    assert search_bases(allow_partial=True, **result.settings.arguments()) == result


def test_set_coverage_counts_what_another_bases_peak_covers():
    from buckets.coverage import set_coverage

    bases = [10000, 18000, 20500, 15500, 16000, 19000]  # the ToolLLaMA search result
    coverage = set_coverage(bases, 128, (1000, 4090), 3)
    found = {b: base_extrema(b, 128, (1000, 4090)) for b in bases}
    covered = [t for b in bases for t in found[b].troughs
               if any(abs(p - t) <= 3 for other in bases if other != b for p in found[other].peaks)]
    assert coverage.covered == len(covered) == 7 and coverage.total == 36
    assert coverage.covered_troughs == tuple(sorted(covered))
    assert len(coverage.uncovered_troughs) == 29
    assert coverage.reach == max(p for b in bases for p in found[b].peaks) + 3
    summary = coverage.summary(position_scale=2)
    assert "cover 7 of 36 troughs" in summary and f"troughs in {coverage.reach + 1}-4090" in summary
    assert "(token distances" in summary and coverage.to_dict()["covered"] == 7


def test_advice_for_a_stopped_search_names_settings_that_were_seen_to_work():
    from buckets.search_advice import alternatives, explain_stop

    partial = search_bases(6, window=window_for_context(4883), allow_partial=True)  # base 10000, d 128
    assert not partial.complete and len(partial.bases) == 3
    tried = alternatives(partial.settings)
    assert any(a.complete for a in tried)
    for alternative in tried:  # each outcome is what the search really gives with that one change
        again = search_bases(allow_partial=True, **{**partial.settings.arguments(), **alternative.arguments})
        assert (again.bases, again.complete) == (alternative.bases, alternative.complete)
    message = explain_stop(partial, tried)
    assert "found 3 of 6 bases" in message and "What the bases found cover" in message
    working = next(a for a in tried if a.complete)
    assert working.change in message and "bases=10000,23500,20500" in message
    assert "n=3" in message
