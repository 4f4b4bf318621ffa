"""Regularizers inside lrr.LSTM / lrr.GRU follow their papers' equations (injected masks)."""

from __future__ import annotations

import pytest
import torch

import lightning_rnn_reg as lrr
from lightning_rnn_reg.rnn import loop_runner
from lightning_rnn_reg.rnn.reference import expand, gru_steps, lstm_steps

T, B, I, H = 5, 3, 4, 6


class _Injected:
    """Mixin: a recurrent regularizer whose masks are given by the test."""

    def __init__(self, masks: dict[str, torch.Tensor], **kw):
        super().__init__(**kw)
        self.injected = masks

    def loop_masks(self, steps, batch, hidden, like, gates=4):
        return dict(self.injected) if self.stochastic else super().loop_masks(
            steps, batch, hidden, like, gates)


class InjectedUpdate(_Injected, lrr.UpdateDropout):
    pass


class InjectedCell(_Injected, lrr.CellDropout):
    pass


class InjectedRecurrent(_Injected, lrr.RecurrentDropout):
    pass


class InjectedZoneout(_Injected, lrr.Zoneout):
    pass


def _scaled(shape, p):
    return (torch.rand(shape, dtype=torch.float64) > p).double() / (1 - p)


def _lstm(reg):
    layer = lrr.LSTM(I, H, regularizers=[reg]).double()
    w = (layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0 + layer.bias_hh_l0)
    return layer, w


def test_update_dropout_drops_the_candidate_only():
    mask = _scaled((T, B, H), 0.5)
    layer, (w_ih, w_hh, b) = _lstm(InjectedUpdate({"update_mask": mask}, p=0.5))
    x = torch.randn(T, B, I, dtype=torch.float64)
    out, (h, c) = layer(x)
    zeros = torch.zeros(B, H, dtype=torch.float64)
    ref_out, _, ref_c = lstm_steps(x, w_ih, w_hh, b, zeros, zeros, update=mask)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(c[0], ref_c)


def test_cell_dropout_drops_the_new_cell_state():
    mask = _scaled((1, B, H), 0.3)
    layer, (w_ih, w_hh, b) = _lstm(InjectedCell({"cell_mask": mask}, p=0.3))
    x = torch.randn(T, B, I, dtype=torch.float64)
    out, (h, c) = layer(x)
    zeros = torch.zeros(B, H, dtype=torch.float64)
    ref_out, _, ref_c = lstm_steps(x, w_ih, w_hh, b, zeros, zeros, cell=expand(mask, T))
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(c[0], ref_c)


def test_recurrent_dropout_drops_the_previous_hidden_state_in_the_product():
    mask = _scaled((1, B, H), 0.4)
    layer, (w_ih, w_hh, b) = _lstm(InjectedRecurrent({"h_mask": mask}, p=0.4))
    x = torch.randn(T, B, I, dtype=torch.float64)
    h0 = torch.randn(1, B, H, dtype=torch.float64)
    c0 = torch.randn(1, B, H, dtype=torch.float64)
    out, _ = layer(x, (h0, c0))
    ref_out, _, _ = lstm_steps(x, w_ih, w_hh, b, h0[0], c0[0], hmask=expand(mask, T))
    torch.testing.assert_close(out, ref_out)


def test_zoneout_keeps_previous_cell_and_hidden_where_drawn():
    zc = (torch.rand(T, B, H) < 0.5).double()
    zh = (torch.rand(T, B, H) < 0.3).double()
    layer, (w_ih, w_hh, b) = _lstm(InjectedZoneout({"zone_c": zc, "zone_h": zh}, cell=0.5,
                                                   hidden=0.3))
    x = torch.randn(T, B, I, dtype=torch.float64)
    out, (h, c) = layer(x)
    zeros = torch.zeros(B, H, dtype=torch.float64)
    ref_out, ref_h, ref_c = lstm_steps(x, w_ih, w_hh, b, zeros, zeros, zc=zc, zh=zh)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(c[0], ref_c)


def test_zoneout_eval_uses_the_expectation():
    layer, (w_ih, w_hh, b) = _lstm(lrr.Zoneout(cell=0.5, hidden=0.05))
    layer.eval()
    x = torch.randn(T, B, I, dtype=torch.float64)
    out, (h, c) = layer(x)
    zeros = torch.zeros(B, H, dtype=torch.float64)
    zc = torch.full((T, B, H), 0.5, dtype=torch.float64)
    zh = torch.full((T, B, H), 0.05, dtype=torch.float64)
    ref_out, _, ref_c = lstm_steps(x, w_ih, w_hh, b, zeros, zeros, zc=zc, zh=zh)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(c[0], ref_c)


def test_zoneout_tiny_hand_computed_case():
    """One unit, weights zero: gates are sigmoid/tanh of the biases only."""
    layer = lrr.LSTM(1, 1, regularizers=[InjectedZoneout(
        {"zone_c": torch.tensor([[[0.0]], [[1.0]]]), "zone_h": torch.tensor([[[1.0]], [[0.0]]])},
        cell=0.5, hidden=0.5)]).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.zero_()
        layer.bias_ih_l0.copy_(torch.tensor([0.0, 0.0, 1.0, 0.0]))  # i, f, g, o
    x = torch.zeros(2, 1, 1, dtype=torch.float64)
    out, (h, c) = layer(x)
    g = torch.tanh(torch.tensor(1.0, dtype=torch.float64))
    c1 = 0.5 * g                     # step 1: cell updated (zone_c 0), hidden kept (zone_h 1)
    h1 = 0.0
    c2 = c1                          # step 2: cell kept, hidden updated from c~_2
    c2_new = 0.5 * c1 + 0.5 * g
    h2 = 0.5 * torch.tanh(c2_new)
    torch.testing.assert_close(out.flatten(), torch.stack([torch.tensor(h1).double(), h2]))
    torch.testing.assert_close(c.flatten(), c2.reshape(1))


def test_weight_drop_uses_masked_recurrent_weight():
    class FixedWeightDrop(lrr.WeightDrop):
        def forward(self, weight):
            return weight * self.mask if self.stochastic else weight

    reg = FixedWeightDrop(0.5)
    layer = lrr.LSTM(I, H, regularizers=[reg]).double()
    reg.mask = _scaled(layer.weight_hh_l0.shape, 0.5)
    ref = torch.nn.LSTM(I, H).double()
    ref.load_state_dict(layer.state_dict())
    with torch.no_grad():
        ref.weight_hh_l0.mul_(reg.mask)
    x = torch.randn(T, B, I, dtype=torch.float64)
    torch.testing.assert_close(layer(x)[0], ref(x)[0])
    layer.eval()
    ref.load_state_dict(layer.state_dict())
    torch.testing.assert_close(layer(x)[0], ref(x)[0])


def test_gru_update_and_recurrent_dropout_and_zoneout_follow_equations():
    update = _scaled((T, B, H), 0.25)
    hmask = _scaled((1, B, H), 0.25)
    zh = (torch.rand(T, B, H) < 0.2).double()
    layer = lrr.GRU(I, H, regularizers=[
        InjectedUpdate({"update_mask": update}, p=0.25),
        InjectedRecurrent({"h_mask": hmask}, p=0.25),
        InjectedZoneout({"zone_h": zh}, hidden=0.2),
    ]).double()
    x = torch.randn(T, B, I, dtype=torch.float64)
    out, h = layer(x)
    zeros = torch.zeros(B, H, dtype=torch.float64)
    ref_out, ref_h = gru_steps(x, layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0,
                               layer.bias_hh_l0, zeros, update=update,
                               hmask=expand(hmask, T), zh=zh)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(h[0], ref_h)


def _saturated_lstm(reg, g_value=0.5):
    """One-unit LSTM with input and forget gates saturated open and a constant candidate."""
    layer = lrr.LSTM(1, 1, regularizers=[reg]).double()
    with torch.no_grad():
        for p in layer.parameters():
            p.zero_()
        layer.bias_ih_l0.copy_(torch.tensor([60.0, 60.0, float(torch.atanh(torch.tensor(g_value))),
                                             0.0]))
    return layer


@pytest.mark.parametrize("steps", [10, 50, 200])
def test_update_dropout_keeps_expected_cell_equal_to_undropped_sum(steps):
    """Semeniuta 2016 sec. 3: with f = i = 1, E[c_T] = sum of the candidates at any length."""
    torch.manual_seed(0)
    layer = _saturated_lstm(lrr.UpdateDropout(0.5))
    x = torch.zeros(steps, 20000, 1, dtype=torch.float64)
    _, (_, c_train) = layer(x)
    layer.eval()
    _, (_, c_eval) = layer(x)
    expected = 0.5 * steps
    torch.testing.assert_close(c_eval, torch.full_like(c_eval, expected))
    # mean of 20000 sums of `steps` iid terms in {0, 1}: std of the mean = sqrt(steps)*0.5/141
    tolerance = 6 * (steps**0.5) * 0.5 / (20000**0.5)
    assert abs(c_train.mean().item() - expected) < tolerance


def test_cell_dropout_per_sequence_grows_by_inverse_keep_per_step():
    """Moon 2015 per-sequence: c_t = (c_{t-1} + g) / (1-p) for kept units, so the train-time
    cell grows geometrically while the eval cell is the plain sum (the scaling problem)."""
    p, g, steps = 0.5, 0.5, 12
    layer = _saturated_lstm(lrr.CellDropout(p), g)
    x = torch.zeros(steps, 400, 1, dtype=torch.float64)
    _, (_, c_train) = layer(x)
    kept = c_train[c_train != 0]
    assert 100 < kept.numel() < 300
    scale = 1 / (1 - p)
    expected = sum(g * scale**k for k in range(1, steps + 1))
    torch.testing.assert_close(kept, torch.full_like(kept, expected))
    layer.eval()
    _, (_, c_eval) = layer(x)
    torch.testing.assert_close(c_eval, torch.full_like(c_eval, g * steps))
    assert expected / (g * steps) > 100  # train and test cells disagree by orders of magnitude


@pytest.mark.parametrize("regs, expected", [
    ([], "fused"),
    ([lrr.LockedDropout(0.3), lrr.WeightDrop(0.5), lrr.Dropout(0.2, at="output")], "fused"),
    ([lrr.UpdateDropout(0.2)], "loop"),
    ([lrr.RecurrentDropout(0.2)], "loop"),
    ([lrr.CellDropout(0.2)], "loop"),
    ([lrr.Zoneout(0.1, 0.1)], "loop"),
])
def test_path_reports_fused_or_loop(regs, expected):
    assert lrr.LSTM(I, H, regularizers=regs).path == expected


def test_path_loop_can_be_forced():
    assert lrr.LSTM(I, H, path="loop").path == "loop"


def test_eval_runs_fused_kernel_when_update_dropout_is_inactive(monkeypatch):
    layer = lrr.LSTM(I, H, regularizers=[lrr.UpdateDropout(0.3), lrr.RecurrentDropout(0.2)])
    layer.eval()

    def fail(*args, **kwargs):
        raise AssertionError("loop path used in eval")

    monkeypatch.setattr(loop_runner, "lstm_recurrence", fail)
    layer(torch.randn(T, B, I))
    with pytest.raises(AssertionError, match="loop path used"), lrr.mc_dropout():
        layer(torch.randn(T, B, I))


def test_weight_drop_keeps_the_onednn_kernel():
    if not torch.backends.mkldnn.is_available():
        pytest.skip("oneDNN is not available in this torch build")
    layer = lrr.LSTM(I, H, 2, regularizers=[lrr.WeightDrop(0.5)])
    x = torch.randn(T, B, I)
    with torch.profiler.profile() as prof:
        layer(x)[0].sum().backward()
    names = {event.key for event in prof.key_averages()}
    assert "aten::mkldnn_rnn_layer" in names
    assert "aten::mkldnn_rnn_layer_backward" in names


def test_weight_drop_gradients_reach_raw_weight_and_eval_uses_it():
    layer = lrr.LSTM(I, H, 2, regularizers=[lrr.WeightDrop(0.5)])
    ref = torch.nn.LSTM(I, H, 2)
    ref.load_state_dict(layer.state_dict())
    x = torch.randn(T, B, I)
    layer(x)[0].sum().backward()
    assert layer.weight_hh_l1.grad is not None and layer.weight_hh_l1.grad.abs().sum() > 0
    train_out = layer(x)[0]
    layer.eval()
    torch.testing.assert_close(layer(x)[0], ref(x)[0])
    layer.train()
    assert not torch.allclose(layer(x)[0], train_out)  # fresh mask per forward
    assert set(layer.state_dict()) == set(ref.state_dict())


def test_weight_drop_mask_differs_between_forward_calls():
    layer = lrr.LSTM(I, H, regularizers=[lrr.WeightDrop(0.5)])
    x = torch.randn(T, B, I)
    assert not torch.allclose(layer(x)[0], layer(x)[0])


ALL_REGS = [
    lambda: lrr.LockedDropout(0.3, at="input"), lambda: lrr.Dropout(0.3, at="between"),
    lambda: lrr.LockedDropout(0.3, at="output"), lambda: lrr.WeightDrop(0.4),
    lambda: lrr.RecurrentDropout(0.3), lambda: lrr.UpdateDropout(0.3),
    lambda: lrr.Zoneout(0.2, 0.1),
]


@pytest.mark.parametrize("bidirectional", [False, True])
def test_padding_never_leaks_into_states_or_outputs(bidirectional):
    layer = lrr.LSTM(I, H, 2, bidirectional=bidirectional, regularizers=[f() for f in ALL_REGS])
    lengths = torch.tensor([5, 2, 4])
    x = torch.randn(T, B, I)
    garbage = x.clone()
    for b, n in enumerate(lengths):
        garbage[n:, b] = 100 * torch.randn(T - n, I)
    torch.manual_seed(7)
    out1, (h1, c1) = layer(x, lengths=lengths)
    torch.manual_seed(7)
    out2, (h2, c2) = layer(garbage, lengths=lengths)
    torch.testing.assert_close(out1, out2)
    torch.testing.assert_close(h1, h2)
    torch.testing.assert_close(c1, c2)
    for b, n in enumerate(lengths):
        assert torch.all(out1[n:, b] == 0)


def test_padded_example_equals_the_same_example_alone_in_eval():
    layer = lrr.LSTM(I, H, 2, bidirectional=True, regularizers=[f() for f in ALL_REGS]).eval()
    lengths = torch.tensor([5, 2, 4])
    x = torch.randn(T, B, I)
    out, (h, c) = layer(x, lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        alone, (hb, cb) = layer(x[:n, b:b + 1])
        torch.testing.assert_close(out[:n, b:b + 1], alone)
        torch.testing.assert_close(h[:, b:b + 1], hb)
        torch.testing.assert_close(c[:, b:b + 1], cb)


def test_per_sequence_masks_differ_between_examples_in_a_layer():
    layer = lrr.LSTM(I, H, regularizers=[lrr.RecurrentDropout(0.5)])
    x = torch.randn(T, 1, I).expand(T, 2, I).contiguous()
    out, _ = layer(x)
    assert not torch.allclose(out[:, 0], out[:, 1])


def test_mc_dropout_makes_eval_stochastic_and_no_dropout_makes_train_deterministic():
    layer = lrr.LSTM(I, H, 2, regularizers=[f() for f in ALL_REGS])
    x = torch.randn(T, B, I)
    layer.train()
    with lrr.no_dropout():
        a, b = layer(x)[0], layer(x)[0]
    torch.testing.assert_close(a, b)
    layer.eval()
    torch.testing.assert_close(layer(x)[0], a)
    with lrr.mc_dropout():
        assert not torch.allclose(layer(x)[0], layer(x)[0])
