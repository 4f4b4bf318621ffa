"""With ``lengths=``, a nan or inf at a padded position never reaches a state, an output or a
gradient, on either path (as nn.LSTM with packing)."""

from __future__ import annotations

import pytest
import torch

import lightning_rnn_reg as lrr

INPUT, HIDDEN, STEPS, BATCH = 4, 5, 6, 3
LENGTHS = torch.tensor([6, 2, 4])
CONFIGS = {
    "loop, no regularizer": ([], "loop"),
    "RecurrentDropout": ([lrr.RecurrentDropout(0.3)], "auto"),
    "UpdateDropout": ([lrr.UpdateDropout(0.3)], "auto"),
    "Zoneout": ([lrr.Zoneout(cell=0.3, hidden=0.2)], "auto"),
    "fused with input dropout": ([lrr.LockedDropout(0.3, at="input")], "auto"),
}


def _poisoned(x: torch.Tensor, value: float) -> torch.Tensor:
    bad = x.clone()
    for b, length in enumerate(LENGTHS.tolist()):
        bad[length:, b] = value
    return bad


def _run(layer, x, seed=7):
    for p in layer.parameters():
        p.grad = None
    x = x.clone().requires_grad_()
    torch.manual_seed(seed)
    out, state = layer(x, lengths=LENGTHS)
    states = list(state) if isinstance(state, tuple) else [state]
    (out.square().sum() + sum(s.square().sum() for s in states)).backward()
    return out, states, [p.grad.clone() for p in layer.parameters()], x.grad


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_non_finite_padding_changes_nothing(kind, name, value):
    regs, path = CONFIGS[name]
    if kind == "GRU" and name == "Zoneout":
        regs = [lrr.Zoneout(hidden=0.2)]
    cls = lrr.LSTM if kind == "LSTM" else lrr.GRU
    layer = cls(INPUT, HIDDEN, 2, bidirectional=True, regularizers=regs, path=path)
    x = torch.randn(STEPS, BATCH, INPUT)
    clean = _run(layer, x)
    dirty = _run(layer, _poisoned(x, value))
    torch.testing.assert_close(dirty[0], clean[0], atol=0, rtol=0)
    for a, b in zip(dirty[1], clean[1], strict=True):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    for a, b in zip(dirty[2], clean[2], strict=True):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    assert torch.isfinite(dirty[3]).all()
    padded = ~(torch.arange(STEPS).unsqueeze(1) < LENGTHS.unsqueeze(0))
    assert (dirty[0][padded] == 0).all()
    assert (dirty[3][padded] == 0).all()
