"""Higher-order derivatives and torch.func transforms through the layers: the loop path
refuses create_graph=True with a clear error (never a silent None or wrong value), the fused
path passes gradgradcheck, and jacrev / vmap / hessian run on the loop path."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lightning_rnn_reg as lrr

KINDS = {"LSTM": lrr.LSTM, "GRU": lrr.GRU}


def _layer(kind: str, path: str, regs=()) -> nn.Module:
    return KINDS[kind](3, 4, 2, regularizers=list(regs), path=path).double()


@pytest.mark.parametrize("kind", list(KINDS))
def test_loop_double_backward_is_refused_naming_the_fix(kind):
    layer = _layer(kind, "loop")
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    out = layer(x)[0]
    with pytest.raises(RuntimeError, match="path='fused'"):
        torch.autograd.grad(out.square().sum(), layer.weight_hh_l0, create_graph=True)


@pytest.mark.parametrize("kind", list(KINDS))
def test_loop_double_backward_is_refused_with_a_grad_output_that_requires_grad(kind):
    layer = _layer(kind, "auto", [lrr.UpdateDropout(0.3)])
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    out = layer(x)[0]
    seed = torch.randn_like(out, requires_grad=True)
    with pytest.raises(RuntimeError, match="create_graph=True"):
        torch.autograd.grad(out, x, seed, create_graph=True)


@pytest.mark.parametrize("kind", list(KINDS))
def test_loop_gradgradcheck_is_refused_not_wrong(kind):
    layer = _layer(kind, "loop")
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"torch\.func"):
        torch.autograd.gradgradcheck(lambda a: layer(a)[0], (x,))


@pytest.mark.parametrize("kind", list(KINDS))
def test_fused_path_passes_gradgradcheck(kind):
    layer = _layer(kind, "fused", [lrr.LockedDropout(0.3, at="between")]).eval()
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda a: layer(a)[0], (x,))


@pytest.mark.parametrize("kind", list(KINDS))
def test_loop_first_derivative_without_create_graph_still_works(kind):
    layer = _layer(kind, "loop")
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: layer(a)[0], (x,))


@pytest.mark.parametrize("kind", list(KINDS))
def test_jacrev_on_the_loop_path_equals_autograd(kind):
    regs = [lrr.RecurrentDropout(0.3), lrr.UpdateDropout(0.2)]
    layer = _layer(kind, "auto", regs)
    assert layer.path == "loop"
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    torch.manual_seed(1)
    jac = torch.func.jacrev(lambda a: layer(a)[0])(x)
    torch.manual_seed(1)  # the same masks through the hand-written backward
    ref = torch.autograd.functional.jacobian(lambda a: layer(a)[0], x)
    torch.testing.assert_close(jac, ref)


@pytest.mark.parametrize("kind", list(KINDS))
def test_vmap_over_the_loop_path_equals_a_python_loop(kind):
    layer = _layer(kind, "loop").eval()
    xs = torch.randn(3, 4, 2, 3, dtype=torch.float64)
    mapped = torch.func.vmap(lambda a: layer(a)[0])(xs)
    torch.testing.assert_close(mapped, torch.stack([layer(a)[0] for a in xs]))


@pytest.mark.parametrize("kind", list(KINDS))
def test_hessian_through_the_loop_equals_the_fused_path(kind):
    loop, fused = _layer(kind, "loop"), _layer(kind, "fused")
    fused.load_state_dict(loop.state_dict())
    x = torch.randn(3, 1, 3, dtype=torch.float64)
    hessians = [torch.func.hessian(lambda a, m=m: m(a)[0].square().sum())(x)
                for m in (loop, fused)]
    torch.testing.assert_close(hessians[0], hessians[1])


def test_torch_func_grad_of_parameters_through_the_loop_equals_backward():
    layer = _layer("LSTM", "loop")
    params = dict(layer.named_parameters())
    x = torch.randn(4, 2, 3, dtype=torch.float64)

    def loss(p):
        return torch.func.functional_call(layer, p, (x,))[0].square().sum()

    grads = torch.func.grad(loss)(params)
    loss(params).backward()
    for name, p in params.items():
        torch.testing.assert_close(grads[name], p.grad, msg=name)
