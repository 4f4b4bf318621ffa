"""torch.compile: a compiled model trains exactly as eager (the loop runs outside the graph,
its hand-written backward unchanged)."""

from __future__ import annotations

import pytest
import torch

import lightning_rnn_reg as lrr


def _gradients(module, params, x, seed=11):
    for p in params:
        p.grad = None
    torch.manual_seed(seed)  # the same masks in both runs
    out = module(x)
    out = out[0] if isinstance(out, tuple) else out
    out.square().sum().backward()
    return out.detach(), [p.grad.clone() for p in params]


@pytest.mark.parametrize(("kind", "regs"), [
    ("LSTM", []),
    ("LSTM", [lrr.UpdateDropout(0.3), lrr.Zoneout(cell=0.2, hidden=0.1)]),
    ("GRU", [lrr.RecurrentDropout(0.3)]),
])
def test_compiled_loop_layer_gradients_equal_eager(kind, regs):
    torch._dynamo.reset()
    cls = lrr.LSTM if kind == "LSTM" else lrr.GRU
    layer = cls(4, 5, 2, regularizers=regs, path="loop")
    x = torch.randn(6, 3, 4)
    params = list(layer.parameters())
    eager_out, eager = _gradients(layer, params, x)
    compiled_out, compiled = _gradients(torch.compile(layer), params, x)
    torch.testing.assert_close(compiled_out, eager_out, atol=1e-5, rtol=1e-5)
    for a, b in zip(compiled, eager, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_compiled_language_model_with_a_loop_regularizer_has_eager_gradients():
    torch._dynamo.reset()
    model = lrr.LanguageModel(50, embedding_dim=8, hidden_size=12, num_layers=2,
                              regularizers=[lrr.LockedDropout(0.2, at="input"),
                                            lrr.UpdateDropout(0.25), lrr.WeightDrop(0.3)])
    assert {rnn.path for rnn in model.rnns} == {"loop"}
    tokens = torch.randint(0, 50, (7, 3))
    params = list(model.parameters())

    def logits(m):
        return lambda t: m(t)[0]

    eager_out, eager = _gradients(logits(model), params, tokens)
    compiled_out, compiled = _gradients(logits(torch.compile(model)), params, tokens)
    torch.testing.assert_close(compiled_out, eager_out, atol=1e-5, rtol=1e-5)
    for a, b in zip(compiled, eager, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
