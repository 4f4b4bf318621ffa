"""``WeightDrop`` as a module: DropConnect on a weight matrix (Wan 2013; Merity 2017)."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_rnn_reg.mode import mc_dropout, no_dropout
from lightning_rnn_reg.regularizers import WeightDrop

RATES = [0.1, 0.5, 0.8]


def band(p: float, n: int) -> float:
    """Five standard deviations of the empirical frequency of n Bernoulli(p) draws."""
    return 5.0 * math.sqrt(p * (1.0 - p) / n)


def test_default_is_elementwise():
    assert WeightDrop(0.5).variational is False


@pytest.mark.parametrize("p", RATES)
def test_drop_fraction_matches_p(p):
    w = WeightDrop(p)(torch.ones(400, 500))
    assert abs((w == 0).double().mean().item() - p) < band(p, w.numel())


@pytest.mark.parametrize("p", RATES)
def test_kept_values_are_exactly_scaled(p):
    w = WeightDrop(p)(torch.ones(40, 50, dtype=torch.float64))
    assert set(w.unique().tolist()) == {0.0, 1.0 / (1.0 - p)}


def test_elementwise_mask_is_not_row_structured():
    w = WeightDrop(0.5)(torch.ones(40, 50))
    assert not torch.equal(w, w[:, :1].expand_as(w))


@pytest.mark.parametrize("p", RATES)
def test_variational_row_drop_fraction_matches_p(p):
    w = WeightDrop(p, variational=True)(torch.ones(200_000, 2))
    assert abs((w[:, 0] == 0).double().mean().item() - p) < band(p, w.shape[0])


@pytest.mark.parametrize("p", RATES)
def test_variational_kept_values_are_exactly_scaled(p):
    w = WeightDrop(p, variational=True)(torch.ones(400, 5, dtype=torch.float64))
    assert set(w.unique().tolist()) == {0.0, 1.0 / (1.0 - p)}


def test_variational_drops_whole_rows():
    w = WeightDrop(0.5, variational=True)(torch.ones(400, 30))
    assert torch.equal(w, w[:, :1].expand_as(w))


def test_fresh_mask_on_every_call():
    drop = WeightDrop(0.5)
    w = torch.ones(40, 50)
    assert not torch.equal(drop(w), drop(w))


def test_raw_weight_is_untouched():
    raw = torch.randn(40, 50)
    copy = raw.clone()
    WeightDrop(0.5)(raw)
    assert torch.equal(raw, copy)


def test_gradient_reaches_raw_weight_through_the_mask():
    raw = torch.nn.Parameter(torch.randn(40, 50))
    dropped = WeightDrop(0.5)(raw)
    dropped.sum().backward()
    assert raw.grad is not None
    torch.testing.assert_close(raw.grad, torch.where(dropped != 0, 2.0, 0.0))


@pytest.mark.parametrize("variational", [False, True])
def test_eval_returns_raw_weight_without_drawing(variational):
    raw = torch.randn(40, 50)
    drop = WeightDrop(0.5, variational=variational).eval()
    state = torch.get_rng_state()
    assert drop(raw) is raw
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("variational", [False, True])
def test_zero_rate_returns_raw_weight_without_drawing(variational):
    raw = torch.randn(40, 50)
    drop = WeightDrop(0.0, variational=variational).train()
    state = torch.get_rng_state()
    assert drop(raw) is raw
    assert torch.equal(torch.get_rng_state(), state)


def test_is_identity_only_without_rate_or_stochasticity():
    assert WeightDrop(0.0).train().is_identity()
    assert WeightDrop(0.5).eval().is_identity()
    assert not WeightDrop(0.5).train().is_identity()


def test_no_dropout_returns_raw_weight_in_train():
    raw = torch.randn(40, 50)
    drop = WeightDrop(0.5).train()
    with no_dropout():
        assert drop.is_identity()
        assert drop(raw) is raw


def test_mc_dropout_drops_in_eval():
    drop = WeightDrop(0.5).eval()
    with mc_dropout():
        assert not drop.is_identity()
        w = drop(torch.ones(40, 50))
    assert set(w.unique().tolist()) == {0.0, 2.0}
