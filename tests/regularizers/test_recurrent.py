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


# --- RecurrentDropout(per_gate=True): Gal & Ghahramani 2016's untied variant --------------
def _per_gate(p=0.5, gates=4, steps=7, batch=30, hidden=40, **kw) -> torch.Tensor:
    masks = RecurrentDropout(p, per_gate=True, **kw).loop_masks(steps, batch, hidden, LIKE, gates)
    assert list(masks) == ["gate_h_mask"]
    return masks["gate_h_mask"]


@pytest.mark.parametrize("gates", [4, 3])
def test_per_gate_draws_one_mask_per_gate_and_sequence(gates):
    assert _per_gate(gates=gates).shape == (1, gates, 30, 40)
    assert _per_gate(gates=gates, per_sequence=False).shape == (7, gates, 30, 40)


@pytest.mark.parametrize("p", RATES)
def test_per_gate_masks_keep_one_minus_p_scaled_by_its_inverse(p):
    mask = _per_gate(p, batch=50, hidden=80)
    kept = mask != 0
    assert abs(kept.double().mean().item() - (1 - p)) < band(1 - p, mask.numel())
    torch.testing.assert_close(mask[kept], torch.full_like(mask[kept], 1 / (1 - p)))


def test_per_gate_masks_are_independent_across_gates():
    mask = _per_gate(0.5)
    for k in range(1, 4):
        assert not torch.equal(mask[:, 0], mask[:, k])


def test_per_gate_draws_nothing_in_eval_or_at_p_zero():
    assert RecurrentDropout(0.3, per_gate=True).eval().loop_masks(7, 3, 5, LIKE, 4) == {}
    assert RecurrentDropout(0.0, per_gate=True).loop_masks(7, 3, 5, LIKE, 4) == {}


def _untied_reference(x, layer, mask):
    """Gal's untied LSTM by hand: gate k's recurrent input is h_{t-1} * mask[0, k]."""
    w_ih, w_hh = layer.weight_ih_l0, layer.weight_hh_l0
    b = layer.bias_ih_l0 + layer.bias_hh_l0
    hidden = w_hh.shape[1]
    h = c = torch.zeros(x.shape[1], hidden, dtype=x.dtype)
    outs = []
    for t in range(x.shape[0]):
        pre = [x[t] @ w_ih[k * hidden:(k + 1) * hidden].T
               + (h * mask[0, k]) @ w_hh[k * hidden:(k + 1) * hidden].T
               + b[k * hidden:(k + 1) * hidden] for k in range(4)]
        i, f, g, o = pre[0].sigmoid(), pre[1].sigmoid(), pre[2].tanh(), pre[3].sigmoid()
        c = f * c + i * g
        h = o * c.tanh()
        outs.append(h)
    return torch.stack(outs)


def test_untied_lstm_layer_follows_the_per_gate_equation():
    import lightning_rnn_reg as lrr

    reg = RecurrentDropout(0.4, per_gate=True)
    layer = lrr.LSTM(3, 5, regularizers=[reg]).double()
    x = torch.randn(6, 2, 3, dtype=torch.float64)
    torch.manual_seed(9)
    out = layer(x)[0]
    torch.manual_seed(9)  # the layer's one draw, for its one direction
    mask = reg.loop_masks(6, 2, 5, x, 4)["gate_h_mask"]
    torch.testing.assert_close(out, _untied_reference(x, layer, mask))


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_untied_layer_gradients_pass_gradcheck(kind):
    import lightning_rnn_reg as lrr

    cls = lrr.LSTM if kind == "LSTM" else lrr.GRU
    layer = cls(3, 4, regularizers=[RecurrentDropout(0.3, per_gate=True)]).double()
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)

    def run(inp):
        torch.manual_seed(2)  # the same masks on every evaluation
        return layer(inp)[0]

    assert torch.autograd.gradcheck(run, (x, ))


def test_untied_eval_is_the_plain_cell():
    import lightning_rnn_reg as lrr

    ref = torch.nn.LSTM(3, 5)
    layer = lrr.LSTM(3, 5, regularizers=[RecurrentDropout(0.4, per_gate=True)]).eval()
    layer.load_state_dict(ref.state_dict())
    x = torch.randn(6, 2, 3)
    torch.testing.assert_close(layer(x)[0], ref(x)[0], atol=1e-5, rtol=1e-5)


def test_tied_and_untied_recurrent_dropout_cannot_share_a_layer():
    import lightning_rnn_reg as lrr

    with pytest.raises(ValueError, match="both set the loop mask"):
        lrr.LSTM(3, 5, regularizers=[RecurrentDropout(0.2),
                                     RecurrentDropout(0.2, per_gate=True)])


def test_per_gate_round_trips_through_its_spec():
    from lightning_rnn_reg.regularizers.base import Regularizer

    rebuilt = Regularizer.from_spec(RecurrentDropout(0.3, per_gate=True).spec())
    assert isinstance(rebuilt, RecurrentDropout) and rebuilt.per_gate and rebuilt.p == 0.3
