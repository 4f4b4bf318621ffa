"""``Dropout`` (per step, Zaremba 2014) and ``LockedDropout`` (per sequence, Gal 2016)."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_rnn_reg.mode import mc_dropout, no_dropout
from lightning_rnn_reg.regularizers import Dropout, LockedDropout

RATES = [0.1, 0.5, 0.8]
CLASSES = [Dropout, LockedDropout]


def band(p: float, n: int) -> float:
    """Five standard deviations of the empirical frequency of n Bernoulli(p) draws."""
    return 5.0 * math.sqrt(p * (1.0 - p) / n)


@pytest.mark.parametrize("p", RATES)
def test_dropout_drop_fraction_matches_p(p):
    y = Dropout(p)(torch.ones(2, 400, 250))
    assert abs((y == 0).double().mean().item() - p) < band(p, y.numel())


@pytest.mark.parametrize("p", RATES)
def test_locked_dropout_drop_fraction_matches_p(p):
    y = LockedDropout(p)(torch.ones(3, 400, 500))
    assert abs((y[0] == 0).double().mean().item() - p) < band(p, y[0].numel())


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("p", RATES)
def test_kept_values_are_exactly_inverse_keep(cls, p):
    y = cls(p)(torch.ones(3, 50, 40, dtype=torch.float64))
    assert set(y.unique().tolist()) == {0.0, 1.0 / (1.0 - p)}


@pytest.mark.parametrize("cls", CLASSES)
def test_gradient_is_the_mask(cls):
    x = torch.randn(4, 6, 8, requires_grad=True)
    y = cls(0.5)(x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.where(y != 0, 2.0, 0.0))


def test_dropout_masks_vary_over_time():
    y = Dropout(0.5)(torch.ones(2, 4, 100))
    assert not torch.equal(y[0], y[1])


def test_dropout_masks_differ_across_examples():
    y = Dropout(0.5)(torch.ones(2, 4, 100))
    assert not torch.equal(y[0, 0], y[0, 1])


def test_locked_dropout_mask_constant_over_time():
    y = LockedDropout(0.5)(torch.ones(7, 4, 100))
    assert torch.equal(y, y[:1].expand_as(y))


def test_locked_dropout_masks_differ_across_examples():
    y = LockedDropout(0.5)(torch.ones(7, 4, 100))
    assert not torch.equal(y[0, 0], y[0, 1])


def test_locked_dropout_batch_first_shares_mask_over_axis_one():
    y = LockedDropout(0.5, batch_first=True)(torch.ones(4, 7, 100))
    assert torch.equal(y, y[:, :1].expand_as(y))
    assert not torch.equal(y[0, 0], y[1, 0])


def test_locked_dropout_drop_uses_explicit_layout():
    drop = LockedDropout(0.5)  # module says time-major; the caller says batch-first
    y = drop.drop(torch.ones(4, 7, 100), batch_first=True)
    assert torch.equal(y, y[:, :1].expand_as(y))


@pytest.mark.parametrize("cls", CLASSES)
def test_eval_is_identity_without_drawing(cls):
    x = torch.randn(5, 3, 4)
    drop = cls(0.5).eval()
    state = torch.get_rng_state()
    assert drop(x) is x
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("cls", CLASSES)
def test_zero_rate_is_identity_without_drawing(cls):
    x = torch.randn(5, 3, 4)
    drop = cls(0.0).train()
    state = torch.get_rng_state()
    assert drop(x) is x
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("cls", CLASSES)
def test_mc_dropout_keeps_masks_in_eval(cls):
    drop = cls(0.5).eval()
    with mc_dropout():
        y = drop(torch.ones(5, 20, 30))
    assert set(y.unique().tolist()) == {0.0, 2.0}


@pytest.mark.parametrize("cls", CLASSES)
def test_no_dropout_is_identity_in_train(cls):
    x = torch.randn(5, 3, 4)
    drop = cls(0.5).train()
    with no_dropout():
        assert drop(x) is x


@pytest.mark.parametrize("cls", CLASSES)
def test_rate_change_takes_effect_on_next_call(cls):
    drop = cls(0.1)
    drop.p = 0.8
    y = drop(torch.ones(2, 400, 250))
    assert abs((y[0] == 0).double().mean().item() - 0.8) < band(0.8, y[0].numel())


@pytest.mark.parametrize("cls", CLASSES)
def test_default_site_is_input(cls):
    assert cls(0.3).at == "input"
