"""Mask statistics: the recorded fraction is the one of the masks actually drawn, per rate, and
recording changes neither the outputs nor the random stream."""

from __future__ import annotations

import pytest
import torch

import lightning_rnn_reg as lrr
from lightning_rnn_reg.mask_stats import MaskStats


def _recorded(reg: lrr.Regularizer, call):
    reg.mask_stats = MaskStats()
    out = call()
    stats, reg.mask_stats = reg.mask_stats, None
    return out, stats


def _zero_fraction(t: torch.Tensor) -> float:
    return int((t == 0).sum()) / t.numel()


def _one_fraction(t: torch.Tensor) -> float:
    return int((t == 1).sum()) / t.numel()


@pytest.mark.parametrize("shape", [(5, 3, 7), (40, 30, 20)])  # small draw and fast 16-bit path
def test_dropout_fraction_is_the_fraction_of_zeros_in_its_mask(shape):
    reg = lrr.Dropout(0.3)
    y, stats = _recorded(reg, lambda: reg(torch.ones(shape)))
    assert stats.fraction(0.3) == _zero_fraction(y)
    assert stats.rates() == [0.3]


def test_locked_dropout_counts_one_unit_per_sequence_and_feature():
    reg = lrr.LockedDropout(0.4)
    y, stats = _recorded(reg, lambda: reg(torch.ones(6, 50, 20)))
    assert stats.fraction(0.4) == _zero_fraction(y[0])


def test_embedding_dropout_counts_word_types_per_sequence():
    embedding = torch.nn.Embedding(60, 3)
    torch.nn.init.ones_(embedding.weight)
    ids = torch.randperm(60).view(6, 10)  # no word twice: one type per position
    reg = lrr.EmbeddingDropout(0.25)
    y, stats = _recorded(reg, lambda: reg(embedding, ids))
    assert stats.fraction(0.25) == _zero_fraction(y[..., 0])


def test_weight_drop_fraction_is_the_fraction_of_dropped_weights():
    reg = lrr.WeightDrop(0.5)
    y, stats = _recorded(reg, lambda: reg(torch.ones(64, 16)))
    assert stats.fraction(0.5) == _zero_fraction(y)


def test_recurrent_dropout_fraction_matches_its_loop_mask():
    reg = lrr.RecurrentDropout(0.2)
    masks, stats = _recorded(reg, lambda: reg.loop_masks(7, 9, 11, torch.ones(1)))
    assert stats.fraction(0.2) == _zero_fraction(masks["h_mask"])


def test_zoneout_records_cell_and_hidden_separately():
    reg = lrr.Zoneout(cell=0.5, hidden=0.05)
    masks, stats = _recorded(reg, lambda: reg.loop_masks(20, 8, 16, torch.ones(1)))
    assert stats.fraction(0.5) == _one_fraction(masks["zone_c"])  # share of units kept
    assert stats.fraction(0.05) == _one_fraction(masks["zone_h"])
    assert abs(stats.fraction(0.5) - 0.5) < 0.05 and stats.fraction(0.05) < 0.1


def test_recording_changes_neither_outputs_nor_the_random_stream():
    x = torch.randn(12, 4, 10)
    layer = lrr.LSTM(10, 10, 2, regularizers=[lrr.Dropout(0.3, at="between"),
                                              lrr.Zoneout(cell=0.2, hidden=0.1),
                                              lrr.WeightDrop(0.4)])
    torch.manual_seed(7)
    plain = layer(x)[0]
    plain_state = torch.get_rng_state()
    for reg in layer.regularizers:
        reg.mask_stats = MaskStats()
    torch.manual_seed(7)
    recorded = layer(x)[0]
    assert torch.equal(plain, recorded)
    assert torch.equal(plain_state, torch.get_rng_state())
    assert all(reg.mask_stats.rates() for reg in layer.regularizers)


def test_nothing_is_recorded_without_stats_or_without_draws():
    reg = lrr.Dropout(0.3)
    stats = MaskStats()
    other = lrr.Dropout(0.3)
    other.mask_stats = stats
    reg(torch.ones(4, 4))  # reg records nowhere, not into other's stats
    assert stats.rates() == [] and stats.fraction(0.3) is None
    other.eval()
    other(torch.ones(4, 4))  # eval: no mask drawn
    assert stats.fraction(0.3) is None
