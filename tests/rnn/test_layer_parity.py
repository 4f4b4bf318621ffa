"""Both paths of lrr.LSTM / lrr.GRU equal nn.LSTM / nn.GRU with the same weights (1e-5)."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import lightning_rnn_reg as lrr

KINDS = {"LSTM": (lrr.LSTM, nn.LSTM), "GRU": (lrr.GRU, nn.GRU)}
INPUT, HIDDEN, STEPS, BATCH = 5, 6, 7, 4


def _pair(kind: str, num_layers: int, bidirectional: bool, batch_first: bool, path: str):
    ours_cls, ref_cls = KINDS[kind]
    ref = ref_cls(INPUT, HIDDEN, num_layers, bidirectional=bidirectional, batch_first=batch_first)
    ours = ours_cls(INPUT, HIDDEN, num_layers, bidirectional=bidirectional,
                    batch_first=batch_first, path=path)
    ours.load_state_dict(ref.state_dict())
    return ours, ref


def _run(module, x, state, lengths, batch_first):
    if lengths is None:
        return module(x, state)
    if isinstance(module, (lrr.LSTM, lrr.GRU)):
        return module(x, state, lengths=lengths)
    packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
    out, new_state = module(packed, state)
    total = x.shape[1] if batch_first else x.shape[0]
    out, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=total)
    return out, new_state


def _flat(state):
    return list(state) if isinstance(state, tuple) else [state]


CASES = list(itertools.product(
    ["LSTM", "GRU"], ["fused", "loop"], [1, 2], [False, True], [False, True], [False, True],
    [False, True],
))


@pytest.mark.parametrize(
    ("kind", "path", "num_layers", "bidirectional", "batch_first", "with_lengths", "with_state"),
    CASES,
)
def test_forward_and_gradients_equal_torch(
    kind, path, num_layers, bidirectional, batch_first, with_lengths, with_state
):
    torch.manual_seed(1)
    ours, ref = _pair(kind, num_layers, bidirectional, batch_first, path)
    shape = (BATCH, STEPS, INPUT) if batch_first else (STEPS, BATCH, INPUT)
    x = torch.randn(shape)
    lengths = torch.tensor([7, 3, 5, 1]) if with_lengths else None
    state = None
    if with_state:
        layers = num_layers * (2 if bidirectional else 1)
        state = torch.randn(layers, BATCH, HIDDEN)
        if kind == "LSTM":
            state = (state, torch.randn(layers, BATCH, HIDDEN))
    results = []
    for module in (ours, ref):
        xi = x.clone().requires_grad_()
        si = None
        if state is not None:
            si = tuple(s.clone().requires_grad_() for s in _flat(state))
            si = si if kind == "LSTM" else si[0]
        out, new_state = _run(module, xi, si, lengths, batch_first)
        loss = out.pow(2).sum() + sum(s.pow(3).sum() for s in _flat(new_state))
        loss.backward()
        grads = [xi.grad] + [p.grad for p in module.parameters()]
        grads += [s.grad for s in _flat(si)] if si is not None else []
        results.append((out, _flat(new_state), grads))
    (out1, st1, g1), (out2, st2, g2) = results
    torch.testing.assert_close(out1, out2, atol=1e-5, rtol=1e-5)
    for a, b in zip(st1, st2, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_same_seed_gives_same_weights_as_torch(kind):
    ours_cls, ref_cls = KINDS[kind]
    torch.manual_seed(3)
    ref = ref_cls(INPUT, HIDDEN, 2, bidirectional=True)
    torch.manual_seed(3)
    ours = ours_cls(INPUT, HIDDEN, 2, bidirectional=True)
    for (n1, p1), (n2, p2) in zip(ref.named_parameters(), ours.named_parameters(), strict=True):
        assert n1 == n2
        assert torch.equal(p1, p2)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("bias", [True, False])
def test_state_dict_keys_and_shapes_equal_torch(kind, bias):
    ours_cls, ref_cls = KINDS[kind]
    ref = ref_cls(INPUT, HIDDEN, 2, bidirectional=True, bias=bias)
    ours = ours_cls(INPUT, HIDDEN, 2, bidirectional=True, bias=bias,
                    regularizers=[lrr.WeightDrop(0.5), lrr.LockedDropout(0.2, at="between")])
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in ref.state_dict().items()
    }


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("path", ["fused", "loop"])
def test_packed_sequence_in_gives_torch_packed_sequence_out(kind, path):
    ours, ref = _pair(kind, 2, True, False, path)
    x = torch.randn(STEPS, BATCH, INPUT)
    packed = pack_padded_sequence(x, torch.tensor([2, 7, 7, 4]), enforce_sorted=False)
    out1, st1 = ours(packed)
    out2, st2 = ref(packed)
    torch.testing.assert_close(out1.data, out2.data, atol=1e-5, rtol=1e-5)
    assert torch.equal(out1.batch_sizes, out2.batch_sizes)
    assert torch.equal(out1.unsorted_indices, out2.unsorted_indices)
    for a, b in zip(_flat(st1), _flat(st2), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
@pytest.mark.parametrize("path", ["fused", "loop"])
def test_unbatched_input_equals_torch(kind, path):
    ours, ref = _pair(kind, 1, False, False, path)
    x = torch.randn(STEPS, INPUT)
    out1, st1 = ours(x)
    out2, st2 = ref(x)
    torch.testing.assert_close(out1, out2, atol=1e-5, rtol=1e-5)
    for a, b in zip(_flat(st1), _flat(st2), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_float64_loop_matches_torch_tightly():
    ours, ref = _pair("LSTM", 2, True, False, "loop")
    ours.double()
    ref.double()
    x = torch.randn(STEPS, BATCH, INPUT, dtype=torch.float64)
    torch.testing.assert_close(ours(x)[0], ref(x)[0], atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("layer_class", [lrr.LSTM, lrr.GRU])
def test_layer_pickles_for_spawned_processes_and_deep_copies(layer_class) -> None:
    """ddp_spawn pickles the model with torch's ForkingPickler; the fused kernel's
    meta-device shells are not carried (torch 2.4 cannot share a meta storage) but rebuilt,
    and the copy computes exactly what the original does."""
    import copy
    import pickle
    from multiprocessing.reduction import ForkingPickler

    import torch.multiprocessing  # registers torch's reductions with ForkingPickler

    layer = layer_class(4, 5, 2, regularizers=[lrr.WeightDrop(0.5)]).eval()
    x = torch.randn(3, 2, 4)
    expected = layer(x)[0]
    for twin in (pickle.loads(ForkingPickler.dumps(layer)), copy.deepcopy(layer)):
        kernels = twin._kernels
        shells = (kernels.stack, kernels.first, kernels.later)
        assert all(p.device.type == "meta" for shell in shells for p in shell.parameters())
        assert torch.equal(twin.eval()(x)[0], expected)
