"""Properties of the lab's attention variants: each equation checked on its own, then the whole model."""

from __future__ import annotations

import math

import pytest
import torch

from toolbench_eval.lab.attention import (
    ATTENTIONS,
    CopeAttention,
    DiffAttention,
    causal_mask,
    cope_positions,
    diff_lambda_init,
    diff_weights,
    interpolate_positions,
    rope_rotate,
    rope_tables,
    softmax_weights,
)
from toolbench_eval.lab.model import LabLlama, ModelConfig
from toolbench_eval.lab.train import TrainConfig, train

TINY = {"d_model": 32, "n_layers": 2, "n_heads": 4, "d_ff": 64, "npos_max": 16}


def test_cope_positions_with_open_gates_are_relative_positions():
    length = 7
    positions = cope_positions(torch.ones(length, length), causal_mask(length), npos_max=100)
    i, j = torch.meshgrid(torch.arange(length), torch.arange(length), indexing="ij")
    expected = torch.where(j <= i, i - j + 1, 0).float()
    assert torch.equal(positions, expected)


def test_cope_positions_count_only_open_gates_and_clamp():
    gates = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0], [1, 1, 0, 1]])
    positions = cope_positions(gates, causal_mask(4), npos_max=100)
    # query 3: gates to keys 0..3 are 1,1,0,1 -> p_3j = sum over t = j..3
    assert positions[3].tolist() == [3, 2, 1, 1]
    assert positions[2].tolist() == [2, 1, 1, 0]
    assert cope_positions(torch.ones(6, 6), causal_mask(6), npos_max=3).max() == 2


def test_cope_interpolation_between_integer_positions():
    logits = torch.tensor([[0.0, 10.0, 20.0, 30.0]])  # q·e[n] = 10 n
    positions = torch.tensor([[0.0, 1.0, 1.25, 2.5, 3.0]])
    assert interpolate_positions(logits.expand(1, 4), positions).tolist() == [[0.0, 10.0, 12.5, 25.0, 30.0]]


def test_cope_with_open_gates_depends_only_on_relative_position():
    """With the gates forced to 1, the position term of query i and key j is q_i·e[i - j + 1]."""
    torch.manual_seed(0)
    attention = CopeAttention(d_model=16, n_heads=2, npos_max=32).requires_grad_(False)
    q = torch.randn(5, 8)
    position_logits = q @ attention.position_embeddings.T
    positions = cope_positions(torch.ones(5, 5), causal_mask(5), 32)
    term = interpolate_positions(position_logits, positions)
    for i in range(5):
        for j in range(i + 1):
            assert term[i, j] == pytest.approx(float(q[i] @ attention.position_embeddings[i - j + 1]), abs=1e-5)


def test_diff_with_zero_lambda_is_softmax_attention():
    torch.manual_seed(0)
    scores_1, scores_2 = torch.randn(2, 3, 6, 6), torch.randn(2, 3, 6, 6)
    mask = causal_mask(6)
    assert torch.allclose(diff_weights(scores_1, scores_2, 0.0, mask), softmax_weights(scores_1, mask))
    expected = scores_1.masked_fill(~mask, -math.inf).softmax(-1)
    assert torch.allclose(softmax_weights(scores_1, mask), expected)


def test_diff_lambda_init_schedule_and_lambda_formula():
    assert diff_lambda_init(1) == pytest.approx(0.2)
    assert diff_lambda_init(2) == pytest.approx(0.8 - 0.6 * math.exp(-0.3))
    attention = DiffAttention(d_model=32, n_heads=4, layer=3).requires_grad_(False)
    expected = (math.exp(float(attention.lambda_q1 @ attention.lambda_k1))
                - math.exp(float(attention.lambda_q2 @ attention.lambda_k2)) + diff_lambda_init(3))
    assert float(attention.lam()) == pytest.approx(expected, rel=1e-5)


def test_rope_scores_depend_only_on_relative_offset():
    torch.manual_seed(0)
    cos, sin = rope_tables(64, 16)
    q, k = torch.randn(16), torch.randn(16)

    def score(m, n):
        return float(rope_rotate(q, cos[m], sin[m]) @ rope_rotate(k, cos[n], sin[n]))

    for shift in (1, 7, 30):
        assert score(10 + shift, 4 + shift) == pytest.approx(score(10, 4), abs=1e-4)
    assert torch.allclose(rope_rotate(q, cos[0], sin[0]), q)  # position 0 is the identity
    assert rope_rotate(q, cos[5], sin[5]).norm() == pytest.approx(float(q.norm()), rel=1e-5)  # a rotation


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_future_tokens_do_not_change_earlier_outputs(attention):
    torch.manual_seed(0)
    model = LabLlama(ModelConfig(vocab_size=64, attention=attention, **TINY)).eval()
    tokens = torch.randint(0, 64, (2, 12))
    changed = tokens.clone()
    changed[:, 8:] = torch.randint(0, 64, (2, 4))
    with torch.no_grad():
        assert torch.allclose(model(tokens)[:, :8], model(changed)[:, :8], atol=1e-5)
        assert not torch.allclose(model(tokens)[:, 8:], model(changed)[:, 8:], atol=1e-5)


def test_unknown_attention_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown attention 'alibi'"):
        ModelConfig(vocab_size=64, attention="alibi")


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_model_trains_and_loss_decreases(attention):
    record = train(TrainConfig(task="kv", attention=attention, steps=40, batch_size=16, warmup_steps=5),
                   progress=False, curve_every=10)
    curve = record["loss_curve"]  # mean loss of steps 0-9, 10-19, ...
    assert curve[-1] < curve[0]
    assert curve[-1] < math.log(64)  # below a uniform guess over the vocabulary
    assert record["steps"] == 40 and record["tokens_seen"] > 0
