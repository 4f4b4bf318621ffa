"""Module-level behaviour of ``RecurrentDropout`` / ``CellDropout`` / ``UpdateDropout``: the
masks they hand to the recurrent loop (the layer integration is tested with the layers)."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_rnn_reg.mode import mc_dropout, no_dropout
from lightning_rnn_reg.regularizers import CellDropout, RecurrentDropout, UpdateDropout

RATES = [0.1, 0.5, 0.8]
CLASSES = [RecurrentDropout, CellDropout, UpdateDropout]
KEYS = {RecurrentDropout: "h_mask", CellDropout: "cell_mask", UpdateDropout: "update_mask"}
LIKE = torch.empty(0)


def band(p: float, n: int) -> float:
    """Five standard deviations of the empirical frequency of n Bernoulli(p) draws."""
    return 5.0 * math.sqrt(p * (1.0 - p) / n)


def only_mask(reg, steps, batch, hidden, like=LIKE) -> torch.Tensor:
    masks = reg.loop_masks(steps, batch, hidden, like)
    assert list(masks) == [KEYS[type(reg)]]
    return masks[KEYS[type(reg)]]


@pytest.mark.parametrize(
    ("cls", "per_sequence"),
    [(RecurrentDropout, True), (CellDropout, True), (UpdateDropout, False)],
)
def test_default_per_sequence_follows_papers(cls, per_sequence):
    assert cls(0.3).per_sequence is per_sequence


@pytest.mark.parametrize(
    ("cls", "gru"), [(RecurrentDropout, True), (CellDropout, False), (UpdateDropout, True)]
)
def test_declared_cells(cls, gru):
    assert ("GRU" in cls.cells) is gru and "LSTM" in cls.cells


@pytest.mark.parametrize("cls", CLASSES)
def test_per_sequence_mask_shape_is_one_by_batch_by_hidden(cls):
    assert only_mask(cls(0.3, per_sequence=True), 7, 3, 5).shape == (1, 3, 5)


@pytest.mark.parametrize("cls", CLASSES)
def test_per_step_mask_shape_is_steps_by_batch_by_hidden(cls):
    assert only_mask(cls(0.3, per_sequence=False), 7, 3, 5).shape == (7, 3, 5)


@pytest.mark.parametrize("cls", CLASSES)
def test_mask_takes_dtype_of_like(cls):
    like = torch.empty(0, dtype=torch.float64)
    assert only_mask(cls(0.3), 2, 3, 4, like).dtype == torch.float64


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("p", RATES)
def test_drop_fraction_matches_p(cls, p):
    mask = only_mask(cls(p, per_sequence=True), 10, 400, 500)
    assert abs((mask == 0).double().mean().item() - p) < band(p, mask.numel())


@pytest.mark.parametrize("cls", CLASSES)
@pytest.mark.parametrize("p", RATES)
def test_kept_values_are_exactly_inverse_keep(cls, p):
    mask = only_mask(cls(p), 4, 50, 40, torch.empty(0, dtype=torch.float64))
    assert set(mask.unique().tolist()) == {0.0, 1.0 / (1.0 - p)}


@pytest.mark.parametrize("cls", CLASSES)
def test_per_sequence_masks_differ_across_examples(cls):
    mask = only_mask(cls(0.5, per_sequence=True), 7, 4, 100)
    assert not torch.equal(mask[0, 0], mask[0, 1])


@pytest.mark.parametrize("cls", CLASSES)
def test_per_step_masks_vary_over_time(cls):
    mask = only_mask(cls(0.5, per_sequence=False), 7, 4, 100)
    assert not torch.equal(mask[0], mask[1])


@pytest.mark.parametrize("cls", CLASSES)
def test_per_step_masks_differ_across_examples(cls):
    mask = only_mask(cls(0.5, per_sequence=False), 7, 4, 100)
    assert not torch.equal(mask[:, 0], mask[:, 1])


@pytest.mark.parametrize("cls", CLASSES)
def test_fresh_masks_on_every_call(cls):
    reg = cls(0.5)
    assert not torch.equal(only_mask(reg, 3, 4, 100), only_mask(reg, 3, 4, 100))


@pytest.mark.parametrize("cls", CLASSES)
def test_eval_gives_no_masks_and_draws_nothing(cls):
    reg = cls(0.5).eval()
    state = torch.get_rng_state()
    assert reg.loop_masks(7, 3, 5, LIKE) == {}
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("cls", CLASSES)
def test_zero_rate_gives_no_masks_and_draws_nothing(cls):
    reg = cls(0.0).train()
    state = torch.get_rng_state()
    assert reg.loop_masks(7, 3, 5, LIKE) == {}
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("cls", CLASSES)
def test_is_identity_only_without_rate_or_stochasticity(cls):
    assert cls(0.0).train().is_identity()
    assert cls(0.5).eval().is_identity()
    assert not cls(0.5).train().is_identity()


@pytest.mark.parametrize("cls", CLASSES)
def test_mc_dropout_gives_masks_in_eval(cls):
    reg = cls(0.5).eval()
    with mc_dropout():
        assert not reg.is_identity()
        assert only_mask(reg, 2, 3, 4).shape[1:] == (3, 4)


@pytest.mark.parametrize("cls", CLASSES)
def test_no_dropout_gives_no_masks_in_train(cls):
    reg = cls(0.5).train()
    with no_dropout():
        assert reg.is_identity()
        assert reg.loop_masks(7, 3, 5, LIKE) == {}
