"""The hand-written LSTM / GRU recurrences (``lightning_rnn_reg.rnn.loop``) against a naive
autograd reference written from the equations, against ``nn.LSTM`` / ``nn.GRU``, and by
``gradcheck``."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from lightning_rnn_reg.rnn.loop import gru_recurrence, lstm_recurrence

T, B, H = 5, 3, 4
LSTM_KEYS = ("h_mask", "update_mask", "cell_mask", "zone_c", "zone_h")
GRU_KEYS = ("h_mask", "update_mask", "zone_h")


# ----------------------------------------------------------------------------------------------
# naive references (plain autograd, straight from the equations)
# ----------------------------------------------------------------------------------------------


def _at(mask: Tensor | None, t: int) -> Tensor | None:
    if mask is None:
        return None
    return mask[t] if mask.shape[0] > 1 else mask[0]


def ref_lstm(xw, w_hh, h0, c0, h_mask=None, update_mask=None, cell_mask=None, zone_c=None,
             zone_h=None):
    h, c, outs = h0, c0, []
    for t in range(xw.shape[0]):
        hm, um, cm = _at(h_mask, t), _at(update_mask, t), _at(cell_mask, t)
        zc, zh = _at(zone_c, t), _at(zone_h, t)
        hin = h * hm if hm is not None else h
        gates = xw[t] + hin @ w_hh.T
        i, f, g, o = gates.chunk(4, dim=-1)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        if um is not None:
            g = g * um
        cnew = f * c + i * g
        if cm is not None:
            cnew = cnew * cm
        hnew = o * torch.tanh(cnew)
        c = zc * c + (1 - zc) * cnew if zc is not None else cnew
        h = zh * h + (1 - zh) * hnew if zh is not None else hnew
        outs.append(h)
    return torch.stack(outs), h, c


def ref_gru(xw, w_hh, b_hh, h0, h_mask=None, update_mask=None, zone_h=None):
    h, outs = h0, []
    for t in range(xw.shape[0]):
        hm, um, zh = _at(h_mask, t), _at(update_mask, t), _at(zone_h, t)
        hin = h * hm if hm is not None else h
        hh = hin @ w_hh.T + b_hh
        xr, xz, xn = xw[t].chunk(3, dim=-1)
        hr, hz, hn = hh.chunk(3, dim=-1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        if um is not None:
            n = n * um
        hnew = (1 - z) * n + z * h
        h = zh * h + (1 - zh) * hnew if zh is not None else hnew
        outs.append(h)
    return torch.stack(outs), h


# ----------------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------------


def _make_mask(key: str, shape: tuple[int, ...], gen: torch.Generator, fractional: bool,
               dtype: torch.dtype) -> Tensor:
    if key.startswith("zone"):
        if fractional:
            return torch.rand(shape, generator=gen, dtype=dtype)
        return (torch.rand(shape, generator=gen, dtype=dtype) < 0.4).to(dtype)
    keep = (torch.rand(shape, generator=gen, dtype=dtype) < 0.7).to(dtype)
    return keep / 0.7


def _inputs(kind: str, steps: int, batch: int, keys: tuple[str, ...], mask_shape: str,
            fractional: bool, dtype: torch.dtype = torch.float64, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    gates = 4 if kind == "lstm" else 3
    scale = 0.6

    def rnd(*shape: int) -> Tensor:
        return (torch.randn(shape, generator=gen, dtype=dtype) * scale).requires_grad_()

    tensors = {"xw": rnd(steps, batch, gates * H), "w_hh": rnd(gates * H, H)}
    if kind == "gru":
        tensors["b_hh"] = rnd(gates * H)
    tensors["h0"] = rnd(batch, H)
    if kind == "lstm":
        tensors["c0"] = rnd(batch, H)
    shape = {"step": (steps, batch, H), "seq": (1, batch, H), "step1": (steps, batch, 1),
             "seq1": (1, batch, 1)}[mask_shape]
    masks = {key: _make_mask(key, shape, gen, fractional, dtype) for key in keys}
    return tensors, masks


def _compare(kind: str, tensors: dict[str, Tensor], masks: dict[str, Tensor],
             atol: float = 1e-10, rtol: float = 1e-10) -> None:
    fn, ref = (lstm_recurrence, ref_lstm) if kind == "lstm" else (gru_recurrence, ref_gru)
    args = list(tensors.values())
    ours = fn(*args, **masks)
    theirs = ref(*args, **masks)
    gen = torch.Generator().manual_seed(123)
    weights = [torch.randn(o.shape, generator=gen, dtype=o.dtype) for o in ours]
    loss_ours = sum((o * w).sum() for o, w in zip(ours, weights, strict=True))
    loss_ref = sum((o * w).sum() for o, w in zip(theirs, weights, strict=True))
    g_ours = torch.autograd.grad(loss_ours, args)
    g_ref = torch.autograd.grad(loss_ref, args)
    for name, a, b in zip(["out", "h", "c"], ours, theirs, strict=False):
        torch.testing.assert_close(a, b, atol=atol, rtol=rtol, msg=f"{kind} {name}")
    for name, a, b in zip(tensors, g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b, atol=atol, rtol=rtol, msg=f"{kind} grad {name}")


# ----------------------------------------------------------------------------------------------
# against the reference (float64, 1e-10)
# ----------------------------------------------------------------------------------------------

LSTM_SETS = [(), *((k,) for k in LSTM_KEYS), LSTM_KEYS,
             ("h_mask", "zone_c", "zone_h"), ("update_mask", "cell_mask")]
GRU_SETS = [(), *((k,) for k in GRU_KEYS), GRU_KEYS]


@pytest.mark.parametrize("mask_shape", ["step", "seq", "step1", "seq1"])
@pytest.mark.parametrize("keys", LSTM_SETS, ids=lambda k: "+".join(k) or "none")
def test_lstm_matches_reference(keys, mask_shape):
    if not keys and mask_shape != "step":
        pytest.skip("no masks: one shape is enough")
    tensors, masks = _inputs("lstm", T, B, keys, mask_shape, fractional=False)
    _compare("lstm", tensors, masks)


@pytest.mark.parametrize("mask_shape", ["step", "seq", "step1", "seq1"])
@pytest.mark.parametrize("keys", GRU_SETS, ids=lambda k: "+".join(k) or "none")
def test_gru_matches_reference(keys, mask_shape):
    if not keys and mask_shape != "step":
        pytest.skip("no masks: one shape is enough")
    tensors, masks = _inputs("gru", T, B, keys, mask_shape, fractional=False)
    _compare("gru", tensors, masks)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("mask_shape", ["step", "seq"])
def test_fractional_zoneout(kind, mask_shape):
    keys = LSTM_KEYS if kind == "lstm" else GRU_KEYS
    tensors, masks = _inputs(kind, T, B, keys, mask_shape, fractional=True)
    _compare(kind, tensors, masks)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize(("steps", "batch"), [(1, B), (T, 1), (1, 1)])
@pytest.mark.parametrize("with_masks", [False, True])
def test_small_shapes(kind, steps, batch, with_masks):
    keys = (LSTM_KEYS if kind == "lstm" else GRU_KEYS) if with_masks else ()
    tensors, masks = _inputs(kind, steps, batch, keys, "step", fractional=True)
    _compare(kind, tensors, masks)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_zone_one_freezes_state(kind):
    """``zone = 1`` (what the layers use at padded steps) keeps the state exactly."""
    keys = ("zone_c", "zone_h") if kind == "lstm" else ("zone_h",)
    tensors, masks = _inputs(kind, T, B, keys, "step", fractional=True)
    for key in keys:
        masks[key][2:] = 1.0
    _compare(kind, tensors, masks)
    fn = lstm_recurrence if kind == "lstm" else gru_recurrence
    outs = fn(*tensors.values(), **masks)
    assert torch.equal(outs[0][-1], outs[0][1])
    if kind == "lstm":
        _, _, c1 = fn(*(v[:2] if k == "xw" else v for k, v in tensors.items()),
                      **{k: m[:2] for k, m in masks.items()})
        assert torch.equal(outs[2], c1)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_partial_gradients_and_unused_outputs(kind):
    """Only some inputs need grad; only ``h_T`` (or only ``out``) is used."""
    keys = LSTM_KEYS if kind == "lstm" else GRU_KEYS
    tensors, masks = _inputs(kind, T, B, keys, "step", fractional=True)
    fn, ref = (lstm_recurrence, ref_lstm) if kind == "lstm" else (gru_recurrence, ref_gru)
    for name, tensor in tensors.items():
        tensor.requires_grad_(name in ("w_hh", "h0"))
    args = list(tensors.values())
    for pick in (0, 1):
        (g_ours,) = torch.autograd.grad(fn(*args, **masks)[pick].sum(), [tensors["w_hh"]])
        (g_ref,) = torch.autograd.grad(ref(*args, **masks)[pick].sum(), [tensors["w_hh"]])
        torch.testing.assert_close(g_ours, g_ref, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_expanded_initial_state(kind):
    tensors, masks = _inputs(kind, T, B, ("h_mask",), "seq", fractional=False)
    base = torch.randn(1, H, dtype=torch.float64, requires_grad=True)
    tensors["h0"] = base.expand(B, H)
    if kind == "lstm":
        tensors["c0"] = base.t().expand(H, B).t()  # non-contiguous, stride 0
    fn, ref = (lstm_recurrence, ref_lstm) if kind == "lstm" else (gru_recurrence, ref_gru)
    args = list(tensors.values())
    (g_ours,) = torch.autograd.grad(fn(*args, **masks)[0].sum(), [base])
    (g_ref,) = torch.autograd.grad(ref(*args, **masks)[0].sum(), [base])
    torch.testing.assert_close(g_ours, g_ref, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_non_contiguous_xw_and_weights(kind):
    """xw from a batch-first input (time not outermost in memory), a transposed-copy w_hh."""
    keys = LSTM_KEYS if kind == "lstm" else GRU_KEYS
    tensors, masks = _inputs(kind, T, B, keys, "step", fractional=True)
    base = tensors["xw"].detach().transpose(0, 1).contiguous().requires_grad_()
    tensors["xw"] = base.transpose(0, 1)
    w_base = tensors["w_hh"].detach().t().contiguous().requires_grad_()
    tensors["w_hh"] = w_base.t()
    assert not tensors["xw"].is_contiguous() and not tensors["w_hh"].is_contiguous()
    _compare(kind, tensors, masks)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_gradcheck(kind):
    keys = LSTM_KEYS if kind == "lstm" else GRU_KEYS
    gen = torch.Generator().manual_seed(5)
    steps, batch, hidden, gates = 3, 2, 2, 4 if kind == "lstm" else 3
    dt = torch.float64

    def rnd(*shape: int) -> Tensor:
        return torch.randn(shape, generator=gen, dtype=dt).requires_grad_()

    xw, w_hh, h0 = rnd(steps, batch, gates * hidden), rnd(gates * hidden, hidden), rnd(batch,
                                                                                      hidden)
    masks = {k: (torch.rand(steps, batch, hidden, generator=gen, dtype=dt) if k.startswith("zone")
                 else (torch.rand(steps, batch, hidden, generator=gen, dtype=dt) < 0.7) / 0.7)
             for k in keys}
    masks = {k: m.to(dt) for k, m in masks.items()}
    if kind == "lstm":
        c0 = rnd(batch, hidden)
        inputs = (xw, w_hh, h0, c0)
        assert torch.autograd.gradcheck(lambda *a: lstm_recurrence(*a, **masks), inputs)
    else:
        b_hh = rnd(gates * hidden)
        inputs = (xw, w_hh, b_hh, h0)
        assert torch.autograd.gradcheck(lambda *a: gru_recurrence(*a, **masks), inputs)


# ----------------------------------------------------------------------------------------------
# against nn.LSTM / nn.GRU (float32)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_equals_torch_module(kind):
    torch.manual_seed(3)
    inp, steps, batch, hidden = 7, 6, 4, 5
    module = (nn.LSTM if kind == "lstm" else nn.GRU)(inp, hidden)
    x = torch.randn(steps, batch, inp, requires_grad=True)
    h0 = torch.randn(1, batch, hidden, requires_grad=True)
    c0 = torch.randn(1, batch, hidden, requires_grad=True)
    w_ih, w_hh = module.weight_ih_l0, module.weight_hh_l0
    b_ih, b_hh = module.bias_ih_l0, module.bias_hh_l0
    if kind == "lstm":
        ref_out, (ref_h, ref_c) = module(x, (h0, c0))
        xw = torch.nn.functional.linear(x, w_ih, b_ih + b_hh)
        out, h, c = lstm_recurrence(xw, w_hh, h0[0], c0[0])
        pairs = [(out, ref_out), (h, ref_h[0]), (c, ref_c[0])]
        leaves = [x, h0, c0, w_ih, w_hh, b_ih, b_hh]
    else:
        ref_out, ref_h = module(x, h0)
        xw = torch.nn.functional.linear(x, w_ih, b_ih)
        out, h = gru_recurrence(xw, w_hh, b_hh, h0[0])
        pairs = [(out, ref_out), (h, ref_h[0])]
        leaves = [x, h0, w_ih, w_hh, b_ih, b_hh]
    for ours, ref in pairs:
        torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)
    weights = [torch.randn(ref.shape) for _, ref in pairs]
    loss_ours = sum((o * w).sum() for (o, _), w in zip(pairs, weights, strict=True))
    loss_ref = sum((r * w).sum() for (_, r), w in zip(pairs, weights, strict=True))
    g_ours = torch.autograd.grad(loss_ours, leaves)
    g_ref = torch.autograd.grad(loss_ref, leaves)
    for a, b in zip(g_ours, g_ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------------------------
# forward-only path, errors
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("with_masks", [False, True])
def test_no_grad_same_values(kind, dtype, with_masks):
    keys = (LSTM_KEYS if kind == "lstm" else GRU_KEYS) if with_masks else ()
    tensors, masks = _inputs(kind, T, B, keys, "step", fractional=True, dtype=dtype)
    fn = lstm_recurrence if kind == "lstm" else gru_recurrence
    with_graph = fn(*tensors.values(), **masks)
    with torch.no_grad():
        plain = fn(*tensors.values(), **masks)
    with torch.inference_mode():
        inference = fn(*tensors.values(), **masks)
    for a, b, c in zip(with_graph, plain, inference, strict=True):
        assert not b.requires_grad
        assert torch.equal(a, b)
        assert torch.equal(a, c)


def test_outputs_are_not_views_and_can_be_modified():
    tensors, masks = _inputs("lstm", T, B, ("h_mask",), "step", fractional=False)
    out, h, c = lstm_recurrence(*tensors.values(), **masks)
    h.mul_(2)
    c.add_(1)
    (out * 2).sum().backward()
    assert tensors["w_hh"].grad is not None


def test_bad_mask_shape_raises():
    tensors, _ = _inputs("lstm", T, B, (), "step", fractional=False)
    with pytest.raises(ValueError, match="h_mask"):
        lstm_recurrence(*tensors.values(), h_mask=torch.ones(T, B, H + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="w_hh"):
        lstm_recurrence(tensors["xw"], tensors["w_hh"][:-1], tensors["h0"], tensors["c0"])


def test_mask_requiring_grad_gets_no_gradient():
    tensors, masks = _inputs("gru", T, B, ("update_mask",), "step", fractional=False)
    mask = masks["update_mask"].requires_grad_()
    out, _ = gru_recurrence(*tensors.values(), update_mask=mask)
    out.sum().backward()
    assert mask.grad is None
