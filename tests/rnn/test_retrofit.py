"""lrr.regularize / lrr.to_torch: nn.LSTM / nn.GRU submodules swapped for lrr layers (and
back) in place, keeping the same Parameter objects, state_dict and numbers."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

import lightning_rnn_reg as lrr

KINDS = {"LSTM": (nn.LSTM, lrr.LSTM), "GRU": (nn.GRU, lrr.GRU)}
INPUT, HIDDEN = 5, 6


class Net(nn.Module):
    """embedding -> encoder (2-layer bidirectional, batch-first) -> decoder -> linear."""

    def __init__(self, kind: str = "LSTM") -> None:
        super().__init__()
        torch_kind = KINDS[kind][0]
        self.embedding = nn.Embedding(11, INPUT)
        self.encoder = torch_kind(INPUT, HIDDEN, 2, batch_first=True, bidirectional=True)
        self.decoder = nn.Sequential(torch_kind(2 * HIDDEN, HIDDEN, batch_first=True))
        self.head = nn.Linear(HIDDEN, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x, _ = self.encoder(self.embedding(ids))
        x, _ = self.decoder[0](x)
        return self.head(x)


def _ids(seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 11, (4, 9), generator=torch.Generator().manual_seed(seed))


def _lrr_layers(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if isinstance(m, (lrr.LSTM, lrr.GRU))}


# ------------------------------------------------------------------------- regularize
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_regularize_keeps_the_same_parameter_objects(kind: str) -> None:
    model = Net(kind)
    before = dict(model.named_parameters())
    assert lrr.regularize(model, [lrr.WeightDrop(0.5)]) is model
    assert isinstance(model.encoder, KINDS[kind][1])
    assert isinstance(model.decoder[0], KINDS[kind][1])
    after = dict(model.named_parameters())
    assert after.keys() == before.keys()
    assert all(after[name] is before[name] for name in before)
    assert not any(p.is_meta for p in model.parameters())


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_regularize_keeps_state_dict_keys_and_values(kind: str) -> None:
    model = Net(kind)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lrr.regularize(model, [lrr.LockedDropout(0.3, at="output"), lrr.WeightDrop(0.5)])
    after = model.state_dict()
    assert list(after) == list(before)  # the same keys in the same order
    assert all(torch.equal(after[k], before[k]) for k in before)
    Net(kind).load_state_dict(after)  # loads into the unmodified model, strictly


def test_an_optimizer_built_before_the_swap_updates_the_new_layers() -> None:
    model = Net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    lrr.regularize(model, [lrr.LockedDropout(0.3, at="output")])
    start = model.encoder.weight_hh_l0_reverse.detach().clone()
    model(_ids()).square().mean().backward()
    assert model.encoder.weight_hh_l0_reverse.grad is not None
    optimizer.step()
    assert not torch.equal(model.encoder.weight_hh_l0_reverse, start)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("training", [True, False])
def test_without_regularizers_outputs_equal_the_torch_layers(kind: str, training: bool) -> None:
    model = Net(kind).train(training)
    expected = model(_ids())
    lrr.regularize(model, [])
    assert isinstance(model.encoder, KINDS[kind][1])
    torch.testing.assert_close(model(_ids()), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_regularizers_act_in_train_mode_only(kind: str) -> None:
    model = Net(kind)
    plain = model(_ids())
    lrr.regularize(model, [lrr.LockedDropout(0.5, at="input"), lrr.RecurrentDropout(0.5)])
    assert model.encoder.path == "loop"
    assert not torch.allclose(model(_ids()), plain, atol=1e-3)
    model.eval()
    torch.testing.assert_close(model(_ids()), plain, rtol=0, atol=1e-6)


def test_regularize_keeps_the_train_or_eval_mode() -> None:
    model = Net().eval()
    lrr.regularize(model, [lrr.LockedDropout(0.3)])
    assert not model.encoder.training
    assert not any(reg.training for reg in model.encoder.regularizers)
    model.train()
    assert model.encoder.regularizers[0].training


def test_each_layer_gets_its_own_copy_of_the_regularizers() -> None:
    model = Net()
    given = lrr.LockedDropout(0.3, at="input")
    lrr.regularize(model, [given])
    encoder_reg, decoder_reg = model.encoder.regularizers[0], model.decoder[0].regularizers[0]
    assert isinstance(encoder_reg, lrr.LockedDropout) and encoder_reg.p == 0.3
    assert encoder_reg is not decoder_reg and given not in (encoder_reg, decoder_reg)
    encoder_reg.p = 0.1
    assert decoder_reg.p == 0.3 and given.p == 0.3


def test_include_exact_name_replaces_only_that_layer() -> None:
    model = Net()
    lrr.regularize(model, [lrr.WeightDrop(0.5)], include="encoder")
    assert set(_lrr_layers(model)) == {"encoder"}
    assert type(model.decoder[0]) is nn.LSTM


def test_include_fnmatch_pattern_matches_qualified_names() -> None:
    model = Net()
    lrr.regularize(model, [lrr.WeightDrop(0.5)], include=["decoder.*"])
    assert set(_lrr_layers(model)) == {"decoder.0"}


def test_a_layer_shared_under_two_names_becomes_one_lrr_layer() -> None:
    model = Net()
    model.alias = model.encoder
    lrr.regularize(model, [lrr.WeightDrop(0.5)])
    assert isinstance(model.alias, lrr.LSTM) and model.alias is model.encoder


def test_applying_regularize_twice_leaves_the_lrr_layers_alone() -> None:
    model = Net()
    lrr.regularize(model, [lrr.WeightDrop(0.5)], include="encoder")
    encoder = model.encoder
    lrr.regularize(model, [lrr.LockedDropout(0.2)], include=["encoder", "decoder.0"])
    assert model.encoder is encoder
    assert [type(r) for r in encoder.regularizers] == [lrr.WeightDrop]
    assert [type(r) for r in model.decoder[0].regularizers] == [lrr.LockedDropout]


def test_dropout_and_proj_size_are_passed_on_or_refused_by_name() -> None:
    accepted = inspect.signature(lrr.LSTM).parameters
    for option, value in (("dropout", 0.25), ("proj_size", 3)):
        model = nn.Sequential(nn.LSTM(INPUT, HIDDEN, 2, **{option: value}))
        if option in accepted:  # lrr.LSTM takes it (once it does): passed on
            lrr.regularize(model, [])
            assert getattr(model[0], option) == value
        else:
            with pytest.raises(ValueError, match=rf"'0' is an nn.LSTM with {option}={value}"):
                lrr.regularize(model, [])
            assert type(model[0]) is nn.LSTM


# -------------------------------------------------------------------- regularize errors
def test_no_recurrent_layer_is_an_error_naming_the_model_class() -> None:
    with pytest.raises(ValueError, match=r"Sequential holds no nn\.LSTM or nn\.GRU"):
        lrr.regularize(nn.Sequential(nn.Linear(2, 2), nn.RNN(2, 2)), [lrr.WeightDrop(0.5)])


def test_a_pattern_matching_no_recurrent_layer_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"'head' matches no recurrent layer of Net; its "
                                         r"recurrent layers: \['encoder', 'decoder.0'\]"):
        lrr.regularize(Net(), [lrr.WeightDrop(0.5)], include=["encoder", "head"])


def test_a_model_that_is_itself_a_recurrent_layer_is_refused() -> None:
    for layer in (nn.LSTM(2, 3), nn.GRU(2, 3), lrr.LSTM(2, 3)):
        with pytest.raises(TypeError, match=r"the model is itself a .* cannot be replaced"):
            lrr.regularize(layer, [lrr.WeightDrop(0.5)])


def test_a_regularizer_the_layer_kind_cannot_run_is_an_error_naming_the_submodule() -> None:
    model = Net("GRU")
    before = dict(model.named_modules())
    with pytest.raises(ValueError, match="'encoder': GRU: CellDropout acts on an LSTM cell"):
        lrr.regularize(model, [lrr.CellDropout(0.2)])
    assert dict(model.named_modules()) == before  # nothing replaced


def test_a_between_dropout_on_a_one_layer_lstm_names_the_submodule() -> None:
    with pytest.raises(ValueError, match=r"'decoder.0': LSTM: LockedDropout\(at='between'\) "
                                         "needs num_layers >= 2"):
        lrr.regularize(Net(), [lrr.LockedDropout(0.2, at="between")])
    lrr.regularize(Net(), [lrr.LockedDropout(0.2, at="between")], include="encoder")


def test_a_loss_or_embedding_site_regularizer_is_an_error() -> None:
    for reg in (lrr.EmbeddingDropout(0.1), lrr.ActivationRegularization(1.0)):
        with pytest.raises(ValueError, match=r"'encoder': LSTM: .* which a recurrent layer"):
            lrr.regularize(Net(), [reg])


def test_a_non_regularizer_in_the_list_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"regularizers\[1\] must be a lightning_rnn_reg "
                                        "Regularizer .* got Dropout"):
        lrr.regularize(Net(), [lrr.WeightDrop(0.5), nn.Dropout(0.5)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="must be a list of lightning_rnn_reg Regularizer"):
        lrr.regularize(Net(), lrr.WeightDrop(0.5))  # type: ignore[arg-type]


def test_a_subclass_of_nn_lstm_is_refused() -> None:
    class MyLSTM(nn.LSTM):
        pass

    with pytest.raises(ValueError, match=r"'0' is a .*MyLSTM, a subclass of nn\.LSTM"):
        lrr.regularize(nn.Sequential(MyLSTM(2, 3)), [])


def test_a_layer_with_hooks_is_refused() -> None:
    model = Net()
    model.encoder.register_forward_hook(lambda *args: None)
    with pytest.raises(ValueError, match="'encoder' has forward or backward hooks"):
        lrr.regularize(model, [])


def test_bad_include_values_are_errors() -> None:
    with pytest.raises(ValueError, match="include is empty"):
        lrr.regularize(Net(), [], include=[])
    with pytest.raises(TypeError, match="include patterns must be non-empty strings"):
        lrr.regularize(Net(), [], include=["encoder", 3])  # type: ignore[list-item]


# --------------------------------------------------------------------------- to_torch
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_to_torch_round_trip_gives_torch_layers_with_the_same_parameters(kind: str) -> None:
    model = Net(kind)
    before = dict(model.named_parameters())
    regs = [lrr.LockedDropout(0.3, at="input"), lrr.WeightDrop(0.5), lrr.UpdateDropout(0.3),
            lrr.RecurrentDropout(0.2)]
    lrr.regularize(model, regs)
    model.eval()
    expected = model(_ids())
    assert lrr.to_torch(model) is model
    assert type(model.encoder) is KINDS[kind][0] and type(model.decoder[0]) is KINDS[kind][0]
    assert model.encoder.dropout == 0.0 and model.encoder.batch_first
    assert model.encoder.bidirectional and model.encoder.num_layers == 2
    after = dict(model.named_parameters())
    assert after.keys() == before.keys()
    assert all(after[name] is before[name] for name in before)
    torch.testing.assert_close(model(_ids()), expected, rtol=0, atol=1e-6)


def test_to_torch_of_an_lrr_layer_returns_a_new_torch_layer() -> None:
    layer = lrr.LSTM(INPUT, HIDDEN, 2, regularizers=[lrr.WeightDrop(0.5)]).eval()
    x = torch.randn(7, 3, INPUT)
    expected = layer(x)[0]
    plain = lrr.to_torch(layer)
    assert type(plain) is nn.LSTM and plain is not layer
    assert plain.weight_hh_l1 is layer.weight_hh_l1
    torch.testing.assert_close(plain(x)[0], expected, rtol=0, atol=1e-6)


def test_to_torch_refuses_zoneout_naming_the_layer() -> None:
    model = Net()
    lrr.regularize(model, [lrr.Zoneout(cell=0.1, hidden=0.05)], include="decoder.0")
    with pytest.raises(ValueError, match=r"'decoder\.0' .* holds Zoneout.* no nn\.LSTM"):
        lrr.to_torch(model)
    assert isinstance(model.decoder[0], lrr.LSTM)  # left as it was


def test_to_torch_converts_a_zoneout_with_zero_rates() -> None:
    model = Net()
    lrr.regularize(model, [lrr.Zoneout(cell=0.0, hidden=0.0)])
    model.eval()
    expected = model(_ids())
    lrr.to_torch(model)
    torch.testing.assert_close(model(_ids()), expected, rtol=0, atol=1e-6)


def test_to_torch_of_a_model_without_lrr_layers_is_an_error() -> None:
    with pytest.raises(ValueError, match="Net holds no lightning_rnn_reg LSTM or GRU"):
        lrr.to_torch(Net())
