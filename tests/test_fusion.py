"""Fusion rules: shapes, normalisation, the official formula, float32 computation."""

import math

import pytest
import torch

from buckets.fusion import FUSION_RULES, fuse

RULES = sorted(FUSION_RULES)


@pytest.fixture
def logits():
    torch.manual_seed(0)
    return torch.randn(3, 4, 11) * 3  # batch 3, N=4 buckets, V=11


@pytest.mark.parametrize("rule", RULES)
def test_shapes_weights_sum_to_one_and_result_is_a_distribution(rule, logits):
    fused, weights = fuse(logits, rule)
    assert fused.shape == (3, 11) and weights.shape == (3, 4)
    assert fused.dtype == weights.dtype == torch.float32
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    assert (weights >= 0).all()
    torch.testing.assert_close(fused.exp().sum(-1), torch.ones(3))


@pytest.mark.parametrize("rule", RULES)
def test_identical_buckets_give_the_single_bucket_distribution(rule):
    torch.manual_seed(1)
    one = torch.randn(2, 1, 9)
    fused, weights = fuse(one.expand(2, 5, 9), rule)
    torch.testing.assert_close(fused, torch.log_softmax(one[:, 0], -1))
    torch.testing.assert_close(weights, torch.full((2, 5), 0.2))


@pytest.mark.parametrize("rule", RULES)
def test_single_bucket_is_its_own_log_softmax(rule, logits):
    fused, weights = fuse(logits[:, :1], rule)
    torch.testing.assert_close(fused, torch.log_softmax(logits[:, 0], -1))
    assert torch.equal(weights, torch.ones(3, 1))


@pytest.mark.parametrize("buckets", [1, 4])
@pytest.mark.parametrize("rule", RULES)
def test_unnormalised_scores_differ_from_log_probabilities_by_one_constant_per_row(rule, buckets, logits):
    normalised, weights = fuse(logits[:, :buckets], rule)
    scores, same_weights = fuse(logits[:, :buckets], rule, normalize=False)
    shift = scores - normalised
    torch.testing.assert_close(shift, shift[:, :1].expand_as(shift))  # so argmax and softmax(x / T) agree
    assert torch.equal(scores.argmax(-1), normalised.argmax(-1)) and torch.equal(weights, same_weights)


def test_max_logit_matches_the_official_formula_by_hand():
    # Two buckets over three tokens. Official: w = softmax(max logits); z = w @ logits.
    logits = torch.tensor([[4.0, 1.0, 0.0], [0.0, 2.0, 3.0]])
    fused, weights = fuse(logits, "max_logit")
    w0 = math.exp(4) / (math.exp(4) + math.exp(3))
    assert weights.tolist() == pytest.approx([w0, 1 - w0], abs=1e-6)
    z = [w0 * 4.0, w0 * 1.0 + (1 - w0) * 2.0, (1 - w0) * 3.0]
    log_norm = math.log(sum(math.exp(v) for v in z))
    assert fused.tolist() == pytest.approx([v - log_norm for v in z], abs=1e-6)
    # The official code does exactly this matrix product (in float32):
    official = torch.mm(torch.softmax(logits.max(-1).values, -1).unsqueeze(0), logits)
    torch.testing.assert_close(fused, torch.log_softmax(official[0], -1))


def test_prob_mixture_is_the_weighted_sum_of_probabilities(logits):
    fused, weights = fuse(logits, "prob_mixture")
    expected = (weights.unsqueeze(-1) * torch.softmax(logits, -1)).sum(-2)
    torch.testing.assert_close(fused.exp(), expected)


def test_prob_mixture_differs_from_log_linear_pooling():
    logits = torch.tensor([[5.0, 0.0], [0.0, 5.0]])  # two confident buckets that disagree
    mixture, _ = fuse(logits, "prob_mixture")
    pooled, _ = fuse(logits, "max_logit")
    assert mixture.exp().tolist() == pytest.approx([0.5, 0.5], abs=1e-2)
    assert pooled.exp().tolist() == pytest.approx([0.5, 0.5], abs=1e-6)
    skewed = torch.tensor([[6.0, 0.0], [0.0, 1.0]])
    assert not torch.allclose(fuse(skewed, "prob_mixture")[0], fuse(skewed, "max_logit")[0], atol=1e-3)


def test_entropy_weights_favour_the_confident_bucket():
    sharp = torch.tensor([10.0, 0.0, 0.0, 0.0])
    flat = torch.zeros(4)
    _, weights = fuse(torch.stack([flat, sharp]), "entropy")
    assert weights[1] > weights[0]
    probs = torch.softmax(torch.stack([flat, sharp]), -1)
    entropy = -(probs * probs.log()).sum(-1)
    torch.testing.assert_close(weights, torch.softmax(-entropy, -1))


def test_entropy_handles_masked_vocabulary_without_nan():
    logits = torch.tensor([[2.0, float("-inf"), 0.0], [0.0, float("-inf"), 1.0]])
    fused, weights = fuse(logits, "entropy")
    assert torch.isfinite(weights).all()
    assert fused[1] == float("-inf") and torch.isfinite(fused[[0, 2]]).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_logits_are_fused_in_float32(dtype, logits):
    fused, weights = fuse(logits.to(dtype), "max_logit")
    assert fused.dtype == torch.float32 and weights.dtype == torch.float32
    reference, _ = fuse(logits.to(dtype).float(), "max_logit")
    torch.testing.assert_close(fused, reference)


def test_unknown_rule_names_the_choices():
    with pytest.raises(ValueError, match="unknown fusion rule 'mean'.*entropy, max_logit, prob_mixture"):
        fuse(torch.zeros(2, 3), "mean")


def test_rejects_a_vector_without_a_bucket_axis():
    with pytest.raises(ValueError, match=r"\[\.\.\., N, V\]"):
        fuse(torch.zeros(5), "max_logit")
