"""Contract harnesses run for every concrete regularizer from its entry in ``harness.CASES``
(torchmetrics' MetricTester style): the eval rule, the train-time mask statistics, rate 0,
the stochastic-mode switches, mask recording, pickling, ``state_dict`` and ``repr``.

Per-class behaviour beyond the contract (mask shapes, per-step versus per-sequence, the
papers' equations inside a layer) stays in the per-class modules and ``tests/rnn``.
"""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from harness import CASES, B, H, T, covered, recurrent_masks

import lightning_rnn_reg as lrr
from lightning_rnn_reg.loop_masks import FIELDS
from lightning_rnn_reg.mask_stats import MaskStats

CLASSES = covered()
DRAWING = [cls for cls in CLASSES if CASES[cls.__name__].draw is not None]
RATE = 0.3
DRAW_RATES = [0.2, 0.6]
RECURRENT = [cls for cls in CLASSES if CASES[cls.__name__].site == "recurrent"]
WEIGHTS = [cls for cls in CLASSES if CASES[cls.__name__].site == "weights"]


def _ids(cls: type) -> str:
    return cls.__name__


def _band(p: float, n: int) -> float:
    """Five standard deviations of the empirical frequency of ``n`` Bernoulli(p) draws."""
    return 5.0 * math.sqrt(p * (1.0 - p) / n)


def _run(case, reg):
    return case.call(reg, case.inputs(reg))


@pytest.mark.parametrize("cls", CLASSES, ids=_ids)
def test_eval_is_deterministic_draws_nothing_and_follows_the_eval_rule(cls):
    case = CASES[cls.__name__]
    reg = case.build(RATE).eval()
    inputs = case.inputs(reg)
    state = torch.get_rng_state()
    first, second = case.call(reg, inputs), case.call(reg, inputs)
    assert torch.equal(torch.get_rng_state(), state), "eval drew random numbers"
    assert torch.equal(first, second)
    torch.testing.assert_close(first, case.eval_rule(reg, inputs))


@pytest.mark.parametrize("cls", CLASSES, ids=_ids)
def test_zero_rate_in_train_draws_nothing_and_is_the_identity(cls):
    case = CASES[cls.__name__]
    reg = case.build(0.0).train()
    inputs = case.inputs(reg)
    state = torch.get_rng_state()
    out = case.call(reg, inputs)
    assert torch.equal(torch.get_rng_state(), state), "rate 0 drew random numbers"
    torch.testing.assert_close(out, case.zero_rate(reg, inputs))


@pytest.mark.parametrize("cls", DRAWING, ids=_ids)
@pytest.mark.parametrize("p", DRAW_RATES)
def test_train_masks_keep_one_minus_p_of_the_units(cls, p):
    case = CASES[cls.__name__]
    masks = case.draw(case.build(p).train())
    assert masks
    for mask in masks:
        kept = (mask != 0).double().mean().item()
        assert abs(kept - (1.0 - p)) < _band(p, mask.numel())


@pytest.mark.parametrize("cls", DRAWING, ids=_ids)
@pytest.mark.parametrize("p", DRAW_RATES)
def test_train_masks_scale_kept_units_by_inverse_keep(cls, p):
    case = CASES[cls.__name__]
    expected = {0.0, 1.0 / (1.0 - p) if case.scaled else 1.0}
    for mask in case.draw(case.build(p).train()):
        assert set(mask.unique().tolist()) == expected


@pytest.mark.parametrize("cls", DRAWING, ids=_ids)
def test_train_masks_are_fresh_on_every_call(cls):
    case = CASES[cls.__name__]
    reg = case.build(0.5).train()
    first, second = case.draw(reg), case.draw(reg)
    assert not all(torch.equal(a, b) for a, b in zip(first, second, strict=True))


@pytest.mark.parametrize("cls", DRAWING, ids=_ids)
def test_drawn_masks_are_recorded_into_mask_stats(cls):
    case = CASES[cls.__name__]
    reg = case.build(RATE).train()
    reg.mask_stats = MaskStats()
    masks = case.draw(reg)
    stats, reg.mask_stats = reg.mask_stats, None
    assert stats.rates() == [RATE]
    dropped = sum(int((mask == 0).sum()) for mask in masks)
    assert stats.fraction(RATE) == dropped / sum(mask.numel() for mask in masks)


@pytest.mark.parametrize("cls", DRAWING, ids=_ids)
def test_no_dropout_in_train_draws_nothing_and_follows_the_eval_rule(cls):
    case = CASES[cls.__name__]
    reg = case.build(RATE).train()
    inputs = case.inputs(reg)
    state = torch.get_rng_state()
    with lrr.no_dropout():
        out = case.call(reg, inputs)
    assert torch.equal(torch.get_rng_state(), state)
    torch.testing.assert_close(out, case.eval_rule(reg, inputs))


@pytest.mark.parametrize("cls", DRAWING, ids=_ids)
def test_mc_dropout_in_eval_draws_masks(cls):
    case = CASES[cls.__name__]
    reg = case.build(RATE).eval()
    inputs = case.inputs(reg)
    state = torch.get_rng_state()
    with lrr.mc_dropout():
        case.call(reg, inputs)
    assert not torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("cls", CLASSES, ids=_ids)
def test_pickle_round_trip_keeps_type_rates_options_and_mode(cls):
    reg = CASES[cls.__name__].build(RATE).eval()
    copy = pickle.loads(pickle.dumps(reg))
    assert type(copy) is cls
    assert copy.rates == reg.rates
    assert copy.spec() == reg.spec()
    assert copy.training is False


@pytest.mark.parametrize("cls", CLASSES, ids=_ids)
def test_spec_and_state_dict_rebuild_a_regularizer_that_behaves_the_same(cls):
    """What a checkpoint keeps: the spec (hyperparameters) and the ``state_dict`` (tensors)."""
    case = CASES[cls.__name__]
    reg = case.build(RATE).train()
    fresh = lrr.Regularizer.from_spec(reg.spec())
    fresh.load_state_dict(reg.state_dict())  # strict: same keys
    assert fresh.rates == reg.rates
    for key, value in reg.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value)
    torch.manual_seed(1)
    expected = _run(case, reg)
    torch.manual_seed(1)
    torch.testing.assert_close(_run(case, fresh), expected, rtol=0, atol=0)


@pytest.mark.parametrize("cls", CLASSES, ids=_ids)
def test_repr_shows_every_rate(cls):
    reg = CASES[cls.__name__].build(RATE)
    text = repr(reg)
    assert text.startswith(f"{cls.__name__}(")
    for name, value in reg.rates.items():
        assert f"{name}={value:g}" in text


@pytest.mark.parametrize("cls", RECURRENT, ids=_ids)
def test_recurrent_site_declares_cells_and_fills_only_its_mask_fields(cls):
    assert cls.cells and set(cls.cells) <= {"LSTM", "GRU"}
    assert cls.mask_fields and set(cls.mask_fields) <= set(FIELDS)
    reg = CASES[cls.__name__].build(RATE).train()
    masks = recurrent_masks(reg, T, B, H, torch.empty(0))
    assert masks and set(masks) <= set(cls.mask_fields)


@pytest.mark.parametrize("cls", WEIGHTS, ids=_ids)
def test_weights_site_declares_the_weights_it_acts_on(cls):
    assert cls.weights and set(cls.weights) <= {"weight_hh", "weight_ih"}
