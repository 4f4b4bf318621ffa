"""Stochastic mode: ``mc_dropout()`` / ``no_dropout()`` override train/eval, nest and restore."""

from __future__ import annotations

import threading

import pytest
import torch

from lightning_rnn_reg.mode import is_stochastic, mc_dropout, no_dropout, stochastic_mode
from lightning_rnn_reg.regularizers import LockedDropout


def test_default_mode_follows_training_flag():
    assert stochastic_mode() == "default"
    assert is_stochastic(True) is True
    assert is_stochastic(False) is False


def test_mc_dropout_makes_eval_stochastic():
    with mc_dropout():
        assert is_stochastic(False) is True


def test_no_dropout_makes_train_deterministic():
    with no_dropout():
        assert is_stochastic(True) is False


def test_mc_dropout_keeps_module_masks_on_in_eval():
    drop = LockedDropout(0.5).eval()
    x = torch.ones(5, 20, 30)
    with mc_dropout():
        y = drop(x)
    assert (y == 0).any()
    assert set(y.unique().tolist()) == {0.0, 2.0}


def test_mc_dropout_draws_fresh_masks_per_pass():
    drop = LockedDropout(0.5).eval()
    x = torch.ones(5, 20, 30)
    with mc_dropout():
        assert not torch.equal(drop(x), drop(x))


def test_no_dropout_makes_module_identity_in_train():
    drop = LockedDropout(0.5).train()
    x = torch.randn(5, 20, 30)
    with no_dropout():
        assert torch.equal(drop(x), x)


def test_no_dropout_lets_gradients_flow_like_identity():
    drop = LockedDropout(0.5).train()
    x = torch.randn(5, 20, 30, requires_grad=True)
    weight = torch.randn(5, 20, 30)
    with no_dropout():
        (drop(x) * weight).sum().backward()
    assert x.grad is not None
    assert torch.equal(x.grad, weight)


def test_module_stochastic_property_follows_mode():
    drop = LockedDropout(0.5)
    drop.train()
    with no_dropout():
        assert drop.stochastic is False
    drop.eval()
    with mc_dropout():
        assert drop.stochastic is True
    assert drop.stochastic is False


def test_no_dropout_inside_mc_dropout_wins():
    with mc_dropout(), no_dropout():
        assert stochastic_mode() == "off"
        assert is_stochastic(False) is False


def test_mc_dropout_inside_no_dropout_wins():
    with no_dropout(), mc_dropout():
        assert stochastic_mode() == "mc"
        assert is_stochastic(False) is True


def test_leaving_inner_context_restores_outer_mode():
    with mc_dropout():
        with no_dropout():
            pass
        assert stochastic_mode() == "mc"
    assert stochastic_mode() == "default"


@pytest.mark.parametrize("context", [mc_dropout, no_dropout])
def test_mode_is_restored_after_exception(context):
    class BoomError(Exception):
        pass

    with pytest.raises(BoomError), context():
        raise BoomError
    assert stochastic_mode() == "default"


def test_nested_modes_restored_after_exception():
    with pytest.raises(RuntimeError), mc_dropout():
        try:
            with no_dropout():
                raise RuntimeError("inner")
        finally:
            assert stochastic_mode() == "mc"
    assert stochastic_mode() == "default"


def test_override_is_not_visible_in_other_threads():
    seen = []
    with no_dropout():
        thread = threading.Thread(target=lambda: seen.append(stochastic_mode()))
        thread.start()
        thread.join()
    assert seen == ["default"]
