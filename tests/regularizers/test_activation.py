"""AR = alpha * mean(h^2) and TAR = beta * mean((h_t - h_{t-1})^2) (Merity 2017), by hand."""

from __future__ import annotations

import pytest
import torch

from lightning_rnn_reg import functional as LF
from lightning_rnn_reg.mode import mc_dropout, no_dropout
from lightning_rnn_reg.regularizers import (
    ActivationRegularization,
    TemporalActivationRegularization,
)

AR_H = torch.tensor([[[1.0, 2.0]], [[3.0, 4.0]]])  # (T=2, B=1, H=2)
TAR_H = torch.tensor([[[0.0, 1.0]], [[1.0, 3.0]], [[3.0, 3.0]]])  # (T=3, B=1, H=2)


def test_ar_is_alpha_times_mean_square():
    # squares 1, 4, 9, 16 -> mean 7.5
    assert ActivationRegularization(alpha=2.0)(AR_H).item() == 15.0


def test_ar_is_a_scalar():
    assert ActivationRegularization(alpha=2.0)(torch.randn(5, 3, 4)).shape == ()


def test_ar_mask_excludes_padding():
    h = torch.tensor(
        [
            [[1.0, 2.0], [3.0, 4.0]],
            [[5.0, 6.0], [100.0, 100.0]],
            [[7.0, 8.0], [-100.0, 100.0]],
        ]
    )  # (T=3, B=2, H=2); the second sequence has length 1
    mask = torch.tensor([[True, True], [True, False], [True, False]])
    # valid squares 1, 4, 9, 16, 25, 36, 49, 64 -> sum 204 over 8 entries
    assert ActivationRegularization(alpha=0.5)(h, mask).item() == 0.5 * 204 / 8


def test_ar_gradient_is_two_alpha_h_over_count():
    h = AR_H.clone().requires_grad_(True)
    ActivationRegularization(alpha=2.0)(h).backward()
    torch.testing.assert_close(h.grad, 2.0 * 2.0 * AR_H / 4)


def test_ar_zero_in_eval():
    ar = ActivationRegularization(alpha=2.0).eval()
    out = ar(AR_H)
    assert out.shape == () and out.item() == 0.0


def test_ar_with_zero_alpha_is_zero():
    assert ActivationRegularization(alpha=0.0)(AR_H).item() == 0.0


def test_tar_is_beta_times_mean_square_difference():
    # differences (1, 2), (2, 0) -> squares 1, 4, 4, 0 -> mean 2.25
    assert TemporalActivationRegularization(beta=2.0)(TAR_H).item() == 4.5


def test_tar_batch_first_matches_time_major():
    h = torch.randn(6, 3, 4)
    time_major = TemporalActivationRegularization(beta=1.5)(h)
    batch_first = TemporalActivationRegularization(beta=1.5, batch_first=True)(h.transpose(0, 1))
    torch.testing.assert_close(batch_first, time_major)


def test_tar_hand_value_batch_first():
    h = TAR_H.transpose(0, 1)  # (B=1, T=3, H=2)
    assert TemporalActivationRegularization(beta=2.0, batch_first=True)(h).item() == 4.5


def test_tar_single_step_is_zero_not_nan():
    out = TemporalActivationRegularization(beta=1.0)(torch.randn(1, 3, 4))
    assert out.item() == 0.0


def test_tar_single_step_with_mask_is_zero_not_nan():
    mask = torch.ones(1, 3, dtype=torch.bool)
    out = TemporalActivationRegularization(beta=1.0)(torch.randn(1, 3, 4), mask)
    assert out.item() == 0.0


def test_tar_mask_counts_only_pairs_of_valid_steps():
    h = torch.tensor([[[0.0], [2.0]], [[1.0], [5.0]], [[3.0], [100.0]]])  # (T=3, B=2, H=1)
    mask = torch.tensor([[True, True], [True, True], [True, False]])
    # valid pairs: seq 0 diffs 1, 2; seq 1 diff 3 -> squares 1, 4, 9 -> mean 14 / 3
    out = TemporalActivationRegularization(beta=3.0)(h, mask)
    assert out.item() == pytest.approx(14.0)


def test_tar_zero_in_eval():
    out = TemporalActivationRegularization(beta=2.0).eval()(TAR_H)
    assert out.shape == () and out.item() == 0.0


@pytest.mark.parametrize(
    "reg",
    [ActivationRegularization(2.0), TemporalActivationRegularization(2.0)],
    ids=lambda r: type(r).__name__,
)
def test_penalty_unaffected_by_no_dropout_in_train(reg):
    h = torch.randn(5, 3, 4)
    expected = reg.train()(h)
    with no_dropout():
        assert torch.equal(reg(h), expected)


@pytest.mark.parametrize(
    "reg",
    [ActivationRegularization(2.0), TemporalActivationRegularization(2.0)],
    ids=lambda r: type(r).__name__,
)
def test_penalty_stays_zero_in_eval_under_mc_dropout(reg):
    with mc_dropout():
        assert reg.eval()(torch.randn(5, 3, 4)).item() == 0.0


def test_functional_ar_matches_module():
    h = torch.randn(5, 3, 4)
    torch.testing.assert_close(
        LF.activation_regularization(h, 2.0), ActivationRegularization(2.0)(h)
    )


def test_functional_tar_matches_hand_value():
    assert LF.temporal_activation_regularization(TAR_H, 2.0).item() == 4.5
