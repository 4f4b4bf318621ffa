"""Bad input to lrr.LSTM / lrr.GRU gets a clear, specific error."""

from __future__ import annotations

import pytest
import torch

import lightning_rnn_reg as lrr


@pytest.mark.parametrize("reg, match", [
    (lambda: lrr.EmbeddingDropout(0.1), "site 'embedding'"),
    (lambda: lrr.ActivationRegularization(2.0), "site 'loss'"),
    (lambda: lrr.FraternalDropout(0.1), "site 'loss'"),
    (lambda: torch.nn.Dropout(0.5), "Regularizer objects"),
])
def test_regularizer_at_a_site_the_layer_cannot_serve_raises(reg, match):
    with pytest.raises((ValueError, TypeError), match=match):
        lrr.LSTM(4, 6, 2, regularizers=[reg()])


def test_cell_dropout_on_gru_raises():
    with pytest.raises(ValueError, match="GRU has none"):
        lrr.GRU(4, 6, regularizers=[lrr.CellDropout(0.3)])


def test_gru_zoneout_of_a_cell_raises_at_construction():
    with pytest.raises(ValueError, match=r"Zoneout\(cell=\.\.\.\).*GRU has none"):
        lrr.GRU(4, 6, regularizers=[lrr.Zoneout(cell=0.3, hidden=0.1)])


def test_gru_zoneout_of_the_hidden_state_only_is_accepted():
    layer = lrr.GRU(4, 6, regularizers=[lrr.Zoneout(hidden=0.1)])
    assert layer(torch.randn(3, 2, 4))[0].shape == (3, 2, 6)


def test_between_dropout_on_a_single_layer_raises():
    with pytest.raises(ValueError, match="num_layers >= 2"):
        lrr.LSTM(4, 6, 1, regularizers=[lrr.LockedDropout(0.3, at="between")])


def test_fused_path_with_a_recurrent_regularizer_raises():
    with pytest.raises(ValueError, match="path='fused'"):
        lrr.LSTM(4, 6, regularizers=[lrr.UpdateDropout(0.3)], path="fused")


def test_unknown_path_raises():
    with pytest.raises(ValueError, match="path must be one of"):
        lrr.LSTM(4, 6, path="cudnn")


def test_two_regularizers_setting_the_same_mask_raise():
    with pytest.raises(ValueError, match="update_mask"):
        lrr.LSTM(4, 6, regularizers=[lrr.UpdateDropout(0.3), lrr.UpdateDropout(0.2)])


def test_two_weight_drops_raise():
    with pytest.raises(ValueError, match="both set the weight 'weight_hh'"):
        lrr.LSTM(4, 6, regularizers=[lrr.WeightDrop(0.3), lrr.WeightDrop(0.2)])


@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_non_positive_sizes_raise(size):
    with pytest.raises(ValueError, match="hidden_size must be a positive int"):
        lrr.LSTM(4, size)


@pytest.mark.parametrize("shape", [(4,), (2, 3, 4, 1)])
def test_wrong_input_rank_raises(shape):
    with pytest.raises(ValueError, match="rank 3"):
        lrr.LSTM(4, 6)(torch.randn(shape))


def test_wrong_input_size_raises():
    with pytest.raises(ValueError, match="input_size=4, got 5"):
        lrr.LSTM(4, 6)(torch.randn(3, 2, 5))


def test_input_dtype_mismatch_raises():
    with pytest.raises(ValueError, match="dtype"):
        lrr.LSTM(4, 6)(torch.randn(3, 2, 4, dtype=torch.float64))


def test_wrong_initial_state_shape_raises():
    layer = lrr.LSTM(4, 6, 2)
    h = torch.zeros(1, 2, 6)
    with pytest.raises(ValueError, match=r"expected h_0 of shape \(2, 2, 6\)"):
        layer(torch.randn(3, 2, 4), (h, h))


def test_lstm_state_must_be_a_pair():
    with pytest.raises(ValueError, match="tuple"):
        lrr.LSTM(4, 6)(torch.randn(3, 2, 4), torch.zeros(1, 2, 6))


@pytest.mark.parametrize("lengths, match", [
    (torch.tensor([3, 4]), r"lie in \[1, 3\]"),
    (torch.tensor([0, 2]), r"lie in \[1, 3\]"),
    (torch.tensor([3, 2, 1]), r"shape \(2,\)"),
    (torch.tensor([3.0, 2.0]), "integers"),
])
def test_bad_lengths_raise(lengths, match):
    for path in ("fused", "loop"):
        with pytest.raises(ValueError, match=match):
            lrr.LSTM(4, 6, path=path)(torch.randn(3, 2, 4), lengths=lengths)


def test_out_of_range_rate_on_a_layer_regularizer_raises_on_assignment():
    reg = lrr.UpdateDropout(0.3)
    lrr.LSTM(4, 6, regularizers=[reg])
    with pytest.raises(ValueError, match="p must be in"):
        reg.p = 1.0
