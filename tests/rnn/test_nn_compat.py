"""Code written for nn.LSTM / nn.GRU runs unchanged on lrr.LSTM / lrr.GRU: positional
arguments, ``dropout``, ``proj_size``, ``flatten_parameters`` / ``all_weights``, export."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import lightning_rnn_reg as lrr

INPUT, HIDDEN, PROJ, STEPS, BATCH = 5, 7, 3, 6, 4


def test_positional_arguments_follow_nn_lstm_order():
    # (input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, proj_size)
    ours = lrr.LSTM(INPUT, HIDDEN, 2, False, True, 0.25, True, PROJ)
    ref = nn.LSTM(INPUT, HIDDEN, 2, False, True, 0.25, True, PROJ)
    assert (ours.num_layers, ours.bias, ours.batch_first, ours.dropout, ours.bidirectional,
            ours.proj_size) == (2, False, True, 0.25, True, PROJ)
    assert {k: v.shape for k, v in ours.state_dict().items()} == \
        {k: v.shape for k, v in ref.state_dict().items()}


def test_gru_positional_arguments_follow_nn_gru_order():
    ours = lrr.GRU(INPUT, HIDDEN, 2, True, True, 0.1, True)
    assert (ours.num_layers, ours.batch_first, ours.dropout, ours.bidirectional) == \
        (2, True, 0.1, True)
    assert ours.proj_size == 0


def test_seed_gives_nn_lstm_weights_with_projections():
    torch.manual_seed(3)
    ref = nn.LSTM(INPUT, HIDDEN, 2, proj_size=PROJ, bidirectional=True)
    torch.manual_seed(3)
    ours = lrr.LSTM(INPUT, HIDDEN, 2, proj_size=PROJ, bidirectional=True)
    for (name, a), (ref_name, b) in zip(ours.named_parameters(), ref.named_parameters(),
                                        strict=True):
        assert name == ref_name
        assert torch.equal(a, b)


def test_dropout_is_per_step_dropout_between_layers():
    layer = lrr.LSTM(INPUT, HIDDEN, 3, dropout=0.4)
    between = [reg for reg in layer.regularizers if isinstance(reg, lrr.Dropout)]
    assert len(between) == 1
    assert (between[0].p, between[0].site) == (0.4, "between")
    assert layer.path == "fused"


def test_dropout_acts_in_train_and_not_in_eval():
    ref = nn.LSTM(INPUT, HIDDEN, 2)
    layer = lrr.LSTM(INPUT, HIDDEN, 2, dropout=0.5)
    layer.load_state_dict(ref.state_dict())
    x = torch.randn(STEPS, BATCH, INPUT)
    assert not torch.allclose(layer(x)[0], ref(x)[0], atol=1e-4)
    layer.eval()
    torch.testing.assert_close(layer(x)[0], ref(x)[0], atol=1e-5, rtol=1e-5)


def test_dropout_equals_an_explicit_between_dropout():
    a = lrr.LSTM(INPUT, HIDDEN, 2, dropout=0.3)
    b = lrr.LSTM(INPUT, HIDDEN, 2, regularizers=[lrr.Dropout(0.3, at="between")])
    b.load_state_dict(a.state_dict())
    x = torch.randn(STEPS, BATCH, INPUT)
    torch.manual_seed(5)
    out_a = a(x)[0]
    torch.manual_seed(5)
    torch.testing.assert_close(out_a, b(x)[0])


def test_dropout_composes_with_a_loop_regularizer():
    layer = lrr.LSTM(INPUT, HIDDEN, 2, dropout=0.3, regularizers=[lrr.UpdateDropout(0.2)])
    assert layer.path == "loop"
    assert {type(reg).__name__ for reg in layer.regularizers} == {"Dropout", "UpdateDropout"}


def test_dropout_on_one_layer_warns_as_nn_lstm_and_does_nothing():
    with pytest.warns(UserWarning, match="num_layers=1"):
        layer = lrr.LSTM(INPUT, HIDDEN, 1, dropout=0.5)
    assert len(layer.regularizers) == 0


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, "0.2", True])
def test_out_of_range_dropout_raises(bad):
    with pytest.raises(ValueError, match="dropout must be a number in"):
        lrr.LSTM(INPUT, HIDDEN, 2, dropout=bad)


def test_unknown_keyword_error_does_not_name_a_private_class():
    with pytest.raises(TypeError) as info:
        lrr.LSTM(INPUT, HIDDEN, projection=3)
    assert "_RecurrentLayer" not in str(info.value)
    assert "LSTM" in str(info.value)
    with pytest.raises(TypeError) as info:
        lrr.GRU(INPUT, HIDDEN, 1, True, False, 0.0, False, 3)  # nn.GRU has no proj_size
    assert "_RecurrentLayer" not in str(info.value)


def _projected_pair(num_layers: int, bidirectional: bool, regularizers=()):
    ref = nn.LSTM(INPUT, HIDDEN, num_layers, bidirectional=bidirectional, proj_size=PROJ)
    ours = lrr.LSTM(INPUT, HIDDEN, num_layers, bidirectional=bidirectional, proj_size=PROJ,
                    regularizers=list(regularizers))
    ours.load_state_dict(ref.state_dict())
    return ours, ref


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_proj_size_matches_nn_lstm_values_and_gradients(num_layers, bidirectional):
    ours, ref = _projected_pair(num_layers, bidirectional)
    d = 2 if bidirectional else 1
    x = torch.randn(STEPS, BATCH, INPUT)
    h0 = torch.randn(num_layers * d, BATCH, PROJ)
    c0 = torch.randn(num_layers * d, BATCH, HIDDEN)
    out, (h, c) = ours(x, (h0, c0))
    ref_out, (ref_h, ref_c) = ref(x, (h0, c0))
    assert out.shape == (STEPS, BATCH, d * PROJ)
    for a, b in ((out, ref_out), (h, ref_h), (c, ref_c)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    (out.sum() + h.sum() + c.sum()).backward()
    (ref_out.sum() + ref_h.sum() + ref_c.sum()).backward()
    for (name, a), b in zip(ours.named_parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-5, msg=name)


def test_proj_size_with_lengths_matches_packed_nn_lstm():
    ours, ref = _projected_pair(2, True)
    x = torch.randn(STEPS, BATCH, INPUT)
    lengths = torch.tensor([6, 2, 4, 1])
    out, (h, c) = ours(x, lengths=lengths)
    packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
    ref_packed, (ref_h, ref_c) = ref(packed)
    ref_out, _ = pad_packed_sequence(ref_packed, total_length=STEPS)
    for a, b in ((out, ref_out), (h, ref_h), (c, ref_c)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_proj_size_with_between_dropout_and_weight_drop_runs_fused_at_eval_as_nn_lstm():
    ours, ref = _projected_pair(2, False, [lrr.LockedDropout(0.3, at="between"),
                                           lrr.WeightDrop(0.5)])
    x = torch.randn(STEPS, BATCH, INPUT)
    out = ours(x)[0]
    assert out.shape == (STEPS, BATCH, PROJ)
    out.sum().backward()
    assert ours.weight_hh_l1.grad is not None and ours.weight_hr_l1.grad is not None
    ours.eval()
    torch.testing.assert_close(ours(x)[0], ref(x)[0], atol=1e-5, rtol=1e-5)


def test_proj_size_state_of_the_wrong_size_names_the_expected_shape():
    layer = lrr.LSTM(INPUT, HIDDEN, proj_size=PROJ)
    x = torch.randn(STEPS, BATCH, INPUT)
    with pytest.raises(ValueError, match=rf"h_0 of shape \(1, {BATCH}, {PROJ}\)"):
        layer(x, (torch.zeros(1, BATCH, HIDDEN), torch.zeros(1, BATCH, HIDDEN)))


def test_proj_size_with_a_recurrent_regularizer_is_refused_naming_the_path():
    with pytest.raises(ValueError, match="proj_size > 0 runs on the fused path only") as info:
        lrr.LSTM(INPUT, HIDDEN, proj_size=PROJ, regularizers=[lrr.RecurrentDropout(0.2)])
    assert "_RecurrentLayer" not in str(info.value)
    with pytest.raises(ValueError, match="path='loop' does not implement projections"):
        lrr.LSTM(INPUT, HIDDEN, proj_size=PROJ, path="loop")


@pytest.mark.parametrize("bad", [-1, HIDDEN, 2.0])
def test_bad_proj_size_raises(bad):
    with pytest.raises(ValueError, match="proj_size"):
        lrr.LSTM(INPUT, HIDDEN, proj_size=bad)


def test_flatten_parameters_is_a_no_op():
    layer = lrr.LSTM(INPUT, HIDDEN, 2, regularizers=[lrr.WeightDrop(0.5)])
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    assert layer.flatten_parameters() is None
    assert all(torch.equal(before[k], v) for k, v in layer.state_dict().items())


@pytest.mark.parametrize("options", [{}, {"bidirectional": True, "num_layers": 2},
                                     {"proj_size": PROJ, "num_layers": 2}, {"bias": False}])
def test_weight_lists_match_nn_lstm(options):
    ours, ref = lrr.LSTM(INPUT, HIDDEN, **options), nn.LSTM(INPUT, HIDDEN, **options)
    assert ours._flat_weights_names == ref._flat_weights_names
    assert ours._all_weights == ref._all_weights
    shapes = [[w.shape for w in ws] for ws in ours.all_weights]
    assert shapes == [[w.shape for w in ws] for ws in ref.all_weights]
    assert ours.all_weights[0][0] is ours.weight_ih_l0


def test_gru_weight_lists_match_nn_gru():
    ours, ref = lrr.GRU(INPUT, HIDDEN, 2, bidirectional=True), nn.GRU(INPUT, HIDDEN, 2,
                                                                       bidirectional=True)
    assert ours._flat_weights_names == ref._flat_weights_names
    assert ours._all_weights == ref._all_weights


class _Tagger(nn.Module):
    def __init__(self, rnn: nn.Module) -> None:
        super().__init__()
        self.rnn, self.head = rnn, nn.Linear(2 * HIDDEN, 3)

    def forward(self, x):
        return self.head(self.rnn(x)[0])


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_eval_model_exports_with_torch_export_and_runs_as_eager(kind):
    cls = lrr.LSTM if kind == "LSTM" else lrr.GRU
    regs = [lrr.LockedDropout(0.3, at="input"), lrr.Dropout(0.3, at="between"),
            lrr.WeightDrop(0.5), lrr.UpdateDropout(0.25), lrr.RecurrentDropout(0.2)]
    model = _Tagger(cls(INPUT, HIDDEN, 2, batch_first=True, bidirectional=True,
                        regularizers=regs)).eval()
    x = torch.randn(BATCH, STEPS, INPUT)
    program = torch.export.export(model, (x,))
    torch.testing.assert_close(program.module()(x), model(x), atol=1e-6, rtol=1e-6)
    other = torch.randn(BATCH, STEPS, INPUT)
    torch.testing.assert_close(program.module()(other), model(other), atol=1e-6, rtol=1e-6)
