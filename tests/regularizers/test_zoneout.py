"""Zoneout (Krueger 2016): the weights ``Zoneout.loop_masks`` hands to the recurrent loop and
``functional.zoneout`` (the layer integration is tested with the layers)."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_rnn_reg import functional as LF
from lightning_rnn_reg.mode import mc_dropout, no_dropout
from lightning_rnn_reg.regularizers import Zoneout

N = 200_000
RATES = [0.1, 0.5, 0.8]
LIKE = torch.empty(0)


def band(p: float, n: int = N) -> float:
    """Five standard deviations of the empirical frequency of n Bernoulli(p) draws."""
    return 5.0 * math.sqrt(p * (1.0 - p) / n)


# --- Zoneout.loop_masks -----------------------------------------------------------------


def test_default_is_per_step():
    assert Zoneout(cell=0.1).per_sequence is False


@pytest.mark.parametrize(
    ("rates", "keys"),
    [
        ({"cell": 0.3}, ["zone_c"]),
        ({"hidden": 0.3}, ["zone_h"]),
        ({"cell": 0.3, "hidden": 0.1}, ["zone_c", "zone_h"]),
    ],
)
def test_masks_only_for_non_zero_rates(rates, keys):
    assert sorted(Zoneout(**rates).loop_masks(4, 3, 5, LIKE)) == keys


def test_per_step_shape_is_steps_by_batch_by_hidden():
    masks = Zoneout(cell=0.3, hidden=0.1).loop_masks(7, 3, 5, LIKE)
    assert masks["zone_c"].shape == masks["zone_h"].shape == (7, 3, 5)


def test_per_sequence_shape_is_one_by_batch_by_hidden():
    masks = Zoneout(cell=0.3, hidden=0.1, per_sequence=True).loop_masks(7, 3, 5, LIKE)
    assert masks["zone_c"].shape == masks["zone_h"].shape == (1, 3, 5)


@pytest.mark.parametrize("name", ["cell", "hidden"])
@pytest.mark.parametrize("p", RATES)
def test_train_weights_are_zero_one_with_probability_rate(name, p):
    (d,) = Zoneout(**{name: p}).loop_masks(1, 400, 500, LIKE).values()
    assert set(d.unique().tolist()) == {0.0, 1.0}
    assert abs(d.double().mean().item() - p) < band(p, d.numel())


def test_cell_and_hidden_draws_are_independent():
    masks = Zoneout(cell=0.5, hidden=0.5).loop_masks(4, 8, 100, LIKE)
    assert not torch.equal(masks["zone_c"], masks["zone_h"])


def test_per_step_weights_vary_over_time():
    d = Zoneout(cell=0.5).loop_masks(4, 8, 100, LIKE)["zone_c"]
    assert not torch.equal(d[0], d[1])


def test_weights_differ_across_examples():
    d = Zoneout(cell=0.5, per_sequence=True).loop_masks(4, 8, 100, LIKE)["zone_c"]
    assert not torch.equal(d[0, 0], d[0, 1])


def test_eval_weights_equal_the_rates():
    masks = Zoneout(cell=0.5, hidden=0.05).eval().loop_masks(7, 3, 5, LIKE)
    assert masks["zone_c"].numel() == masks["zone_h"].numel() == 1
    assert masks["zone_c"].item() == 0.5
    assert masks["zone_h"].item() == pytest.approx(0.05)


def test_eval_weights_broadcast_against_the_state():
    d = Zoneout(cell=0.5).eval().loop_masks(7, 3, 5, LIKE)["zone_c"]
    assert torch.broadcast_shapes(d.shape, (7, 3, 5)) == (7, 3, 5)


def test_eval_draws_nothing():
    reg = Zoneout(cell=0.5, hidden=0.05).eval()
    state = torch.get_rng_state()
    reg.loop_masks(7, 3, 5, LIKE)
    assert torch.equal(torch.get_rng_state(), state)


def test_zero_rates_give_no_weights_and_draw_nothing():
    reg = Zoneout().train()
    state = torch.get_rng_state()
    assert reg.loop_masks(7, 3, 5, LIKE) == {}
    assert torch.equal(torch.get_rng_state(), state)


def test_is_identity_only_when_both_rates_are_zero():
    assert Zoneout().is_identity()
    assert not Zoneout(hidden=0.1).is_identity()
    assert not Zoneout(cell=0.1).eval().is_identity()  # eval applies the expectation


def test_weights_take_dtype_of_like():
    like = torch.empty(0, dtype=torch.float64)
    assert Zoneout(cell=0.3).loop_masks(2, 3, 4, like)["zone_c"].dtype == torch.float64
    assert Zoneout(cell=0.3).eval().loop_masks(2, 3, 4, like)["zone_c"].dtype == torch.float64


def test_no_dropout_in_train_gives_expectation():
    reg = Zoneout(cell=0.3).train()
    with no_dropout():
        d = reg.loop_masks(7, 3, 5, LIKE)["zone_c"]
    assert d.numel() == 1 and d.item() == pytest.approx(0.3)


def test_mc_dropout_in_eval_gives_bernoulli_weights():
    reg = Zoneout(cell=0.3).eval()
    with mc_dropout():
        d = reg.loop_masks(7, 30, 50, LIKE)["zone_c"]
    assert d.shape == (7, 30, 50)
    assert set(d.unique().tolist()) == {0.0, 1.0}


# --- functional.zoneout -----------------------------------------------------------------


@pytest.mark.parametrize("p", RATES)
def test_zoneout_weights_are_bernoulli_rate_in_train(p):
    d = LF.zoneout_weights((N,), p, True, LIKE)
    assert set(d.unique().tolist()) == {0.0, 1.0}
    assert abs(d.double().mean().item() - p) < band(p)


def test_zoneout_weights_in_eval_are_broadcastable_rate():
    d = LF.zoneout_weights((5, 3, 4), 0.3, False, torch.empty(0, dtype=torch.float64))
    assert d.shape == (1, 1, 1)
    assert d.item() == 0.3


@pytest.mark.parametrize("p", RATES)
def test_zoneout_train_keeps_previous_value_with_probability_p(p):
    prev, new = torch.zeros(N), torch.ones(N)
    out = LF.zoneout(prev, new, p)
    assert set(out.unique().tolist()) == {0.0, 1.0}
    assert abs((out == 0).double().mean().item() - p) < band(p)


def test_zoneout_train_output_is_prev_or_new_exactly():
    prev, new = torch.randn(6, 4, 50), torch.randn(6, 4, 50)
    out = LF.zoneout(prev, new, 0.5)
    assert torch.all((out == prev) | (out == new))


def test_zoneout_eval_is_expectation():
    prev = torch.randn(5, 3, 4, dtype=torch.float64)
    new = torch.randn(5, 3, 4, dtype=torch.float64)
    out = LF.zoneout(prev, new, 0.3, training=False)
    torch.testing.assert_close(out, 0.3 * prev + 0.7 * new, rtol=1e-12, atol=1e-12)


def test_zoneout_eval_draws_nothing():
    prev, new = torch.randn(5, 3, 4), torch.randn(5, 3, 4)
    state = torch.get_rng_state()
    LF.zoneout(prev, new, 0.3, training=False)
    assert torch.equal(torch.get_rng_state(), state)


def test_zoneout_zero_rate_returns_new_without_drawing():
    prev, new = torch.randn(5, 3, 4), torch.randn(5, 3, 4)
    state = torch.get_rng_state()
    assert LF.zoneout(prev, new, 0.0) is new
    assert torch.equal(torch.get_rng_state(), state)


def test_zoneout_no_dropout_in_train_is_expectation():
    prev = torch.randn(5, 3, 4, dtype=torch.float64)
    new = torch.randn(5, 3, 4, dtype=torch.float64)
    with no_dropout():
        out = LF.zoneout(prev, new, 0.3, training=True)
    torch.testing.assert_close(out, 0.3 * prev + 0.7 * new, rtol=1e-12, atol=1e-12)


def test_zoneout_mc_dropout_in_eval_is_stochastic():
    prev, new = torch.zeros(1000), torch.ones(1000)
    with mc_dropout():
        out = LF.zoneout(prev, new, 0.3, training=False)
    assert set(out.unique().tolist()) == {0.0, 1.0}


def test_zoneout_gradient_splits_between_prev_and_new():
    prev = torch.randn(6, 4, 50, requires_grad=True)
    new = torch.randn(6, 4, 50, requires_grad=True)
    LF.zoneout(prev, new, 0.5).sum().backward()
    torch.testing.assert_close(prev.grad + new.grad, torch.ones(6, 4, 50))
    assert set(prev.grad.unique().tolist()) == {0.0, 1.0}
