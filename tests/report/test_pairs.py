"""Training twins of validation metrics, their value per epoch, and the gap (synthetic runs)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from lightning_rnn_reg.report import Run, ScalarSeries, gap_per_epoch, train_twin
from lightning_rnn_reg.report.pairs import objective_tag, train_per_epoch, val_per_epoch

# epoch 0 at steps 0..9, epoch 1 at steps 10..19 (Lightning logs `epoch` with each metric)
EPOCH = ScalarSeries((1, 9, 11, 19), (0.0, 0.0, 1.0, 1.0))


def _run(**scalars: ScalarSeries) -> Run:
    return Run("r", Path("r"), {"epoch": EPOCH,
                                **{tag.replace("__", "/"): s for tag, s in scalars.items()}})


def _steps(*values: float) -> ScalarSeries:
    """Training values at steps 1, 9, 11, 19: two per epoch."""
    return ScalarSeries((1, 9, 11, 19), values)


VAL = ScalarSeries((9, 19), (5.0, 4.0))


def test_train_twin_of_val_loss_is_the_cross_entropy():
    run = _run(val__loss=VAL, train__loss=_steps(1, 1, 1, 1), train__ce=_steps(1, 1, 1, 1))
    assert train_twin(run, "val/loss") == "train/ce"


def test_train_twin_of_val_loss_is_the_training_loss_without_a_cross_entropy():
    assert train_twin(_run(val__loss=VAL, train__loss=_steps(1, 1, 1, 1)),
                      "val/loss") == "train/loss"


def test_train_twin_of_val_ppl_is_the_logged_train_ppl():
    assert train_twin(_run(val__ppl=VAL, train__ppl=_steps(1, 1, 1, 1)), "val/ppl") == (
        "train/ppl")


def test_train_twin_is_none_for_a_metric_logged_for_validation_only():
    assert train_twin(_run(val__f1=VAL, train__loss=_steps(1, 1, 1, 1)), "val/f1") is None


def test_train_twin_finds_a_tag_lightning_logged_with_a_step_suffix():
    assert train_twin(_run(val__acc=VAL, train__acc_step=_steps(1, 1, 1, 1)),
                      "val/acc") == "train/acc_step"


def test_objective_tag_is_the_training_loss_only_where_a_penalty_term_was_logged():
    plain = _run(train__loss=_steps(1, 1, 1, 1), train__ce=_steps(1, 1, 1, 1))
    with_ar = _run(train__loss=_steps(1, 1, 1, 1), train__ce=_steps(1, 1, 1, 1),
                   train__ar=_steps(0, 0, 0, 0))
    assert (objective_tag(plain, "train/ce"), objective_tag(with_ar, "train/ce")) == (
        None, "train/loss")


def test_train_per_epoch_is_the_mean_of_the_steps_logged_in_each_epoch():
    per_epoch = train_per_epoch(_run(train__ce=_steps(6.0, 4.0, 3.0, 2.0)), "train/ce")
    assert per_epoch is not None
    assert (per_epoch.epochs, per_epoch.values) == ((1, 2), (5.0, 2.5))


def test_train_per_epoch_of_a_perplexity_is_the_geometric_mean():
    per_epoch = train_per_epoch(_run(train__ppl=_steps(100.0, 400.0, 9.0, 4.0)), "train/ppl")
    assert per_epoch is not None and per_epoch.values == pytest.approx((200.0, 6.0))


def test_train_per_epoch_of_a_perplexity_is_exp_of_the_mean_cross_entropy():
    ce = (5.0, 4.0, 3.5, 3.0)
    run = _run(train__ppl=_steps(*map(math.exp, ce)))
    per_epoch = train_per_epoch(run, "train/ppl")
    assert per_epoch is not None and per_epoch.values == pytest.approx(
        (math.exp(4.5), math.exp(3.25)))


def test_train_per_epoch_takes_the_logged_epoch_tag():
    run = _run(train__ce_step=_steps(6.0, 4.0, 3.0, 2.0),
               train__ce_epoch=ScalarSeries((9, 19), (4.7, 2.6)))
    per_epoch = train_per_epoch(run, "train/ce_step")
    assert per_epoch is not None and per_epoch.values == (4.7, 2.6)


def test_train_per_epoch_is_none_without_an_epoch_scalar():
    run = Run("r", Path("r"), {"train/ce": _steps(6.0, 4.0, 3.0, 2.0)})
    assert train_per_epoch(run, "train/ce") is None


def test_val_per_epoch_takes_the_last_validation_of_an_epoch():
    per_epoch = val_per_epoch(_run(val__loss=ScalarSeries((5, 9, 19), (7.0, 5.0, 4.0))),
                              "val/loss")
    assert per_epoch is not None and per_epoch.values == (5.0, 4.0)


def test_gap_is_validation_minus_training_per_epoch():
    gap = gap_per_epoch(_run(val__loss=VAL, train__ce=_steps(6.0, 4.0, 3.0, 2.0)),
                        "val/loss", "train/ce")
    assert gap is not None and (gap.epochs, gap.values) == ((1, 2), (0.0, 1.5))


def test_gap_leaves_out_an_epoch_without_validation():
    gap = gap_per_epoch(_run(val__loss=ScalarSeries((19,), (4.0,)),
                             train__ce=_steps(6.0, 4.0, 3.0, 2.0)), "val/loss", "train/ce")
    assert gap is not None and gap.epochs == (2,)
