r"""The loop recurrences written in plain differentiable tensor ops, for ``torch.func``.

:mod:`lightning_rnn_reg.rnn.loop` runs the LSTM / GRU recurrence as one
:class:`torch.autograd.Function` with a hand-written backward and preallocated buffers, which
is fast but cannot be transformed by ``torch.func`` (``jacrev``, ``jacfwd``, ``vmap``,
``hessian``): those need every op to be a traceable, out-of-place PyTorch op. While a
``torch.func`` transform is active, :func:`lstm_recurrence` / :func:`gru_recurrence` in
``loop.py`` run these functions instead. They compute the same equations (the module
docstring of ``loop.py``)::

    LSTM:  a = xw_t + (h_{t-1} * m^h_t) @ W_hh^T;  i, f, o = sigmoid(a_i, a_f, a_o);  g = tanh(a_g)
           cnew = (f * c_{t-1} + i * (g * m^u_t)) * m^c_t;  hnew = o * tanh(cnew)
           c_t = d^c_t c_{t-1} + (1 - d^c_t) cnew;  h_t = d^h_t h_{t-1} + (1 - d^h_t) hnew
    GRU:   hh = (h_{t-1} * m^h_t) @ W_hh^T + b_hh;  r, z = sigmoid(xw_rz + hh_rz)
           n = tanh(xw_n + r * hh_n);  hnew = (1 - z) (n * m^u_t) + z h_{t-1}
           h_t = d^h_t h_{t-1} + (1 - d^h_t) hnew

Masks are ``None`` or tensors broadcastable to ``(T, B, H)`` with 3 dimensions, as in
``loop.py``; they are constants (no gradient).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_rnn_reg.loop_masks import LoopMasks


def _step(mask: Tensor | None, t: int) -> Tensor | None:
    if mask is None:
        return None
    return mask[t] if mask.shape[0] > 1 else mask[0]


def _zone(prev: Tensor, new: Tensor, weight: Tensor | None) -> Tensor:
    return new if weight is None else weight * prev + (1.0 - weight) * new


def _recurrent_product(h: Tensor, w_hh: Tensor, masks: LoopMasks, t: int) -> Tensor:
    """``hin @ W_hh^T`` with the tied mask (one for all gates) or one mask per gate."""
    gate_masks = _step(masks.gate_h_mask, t)
    if gate_masks is not None:
        rows = w_hh.chunk(gate_masks.shape[0], dim=0)
        return torch.cat([(h * m) @ w.t() for m, w in zip(gate_masks, rows, strict=True)], -1)
    mask = _step(masks.h_mask, t)
    return (h if mask is None else h * mask) @ w_hh.t()


def lstm_recurrence_composable(
    xw: Tensor, w_hh: Tensor, h0: Tensor, c0: Tensor, masks: LoopMasks,
) -> tuple[Tensor, Tensor, Tensor]:
    """LSTM loop in plain ops; returns ``(out, h_T, c_T)`` as ``loop.lstm_recurrence``."""
    um, cm = masks.update_mask, masks.cell_mask
    zc, zh = masks.zone_c, masks.zone_h
    h, c = h0, c0
    outs = []
    for t in range(xw.shape[0]):
        a_i, a_f, a_g, a_o = (xw[t] + _recurrent_product(h, w_hh, masks, t)).chunk(4, dim=-1)
        g = torch.tanh(a_g)
        update = _step(um, t)
        if update is not None:
            g = g * update
        cnew = torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * g
        cell = _step(cm, t)
        if cell is not None:
            cnew = cnew * cell
        hnew = torch.sigmoid(a_o) * torch.tanh(cnew)
        c = _zone(c, cnew, _step(zc, t))
        h = _zone(h, hnew, _step(zh, t))
        outs.append(h)
    return torch.stack(outs), h, c


def gru_recurrence_composable(
    xw: Tensor, w_hh: Tensor, b_hh: Tensor, h0: Tensor, masks: LoopMasks,
) -> tuple[Tensor, Tensor]:
    """GRU loop in plain ops; returns ``(out, h_T)`` as ``loop.gru_recurrence``."""
    um, zh = masks.update_mask, masks.zone_h
    h = h0
    outs = []
    for t in range(xw.shape[0]):
        x_r, x_z, x_n = xw[t].chunk(3, dim=-1)
        h_r, h_z, h_n = (_recurrent_product(h, w_hh, masks, t) + b_hh).chunk(3, dim=-1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        update = _step(um, t)
        if update is not None:
            n = n * update
        hnew = (1.0 - z) * n + z * h
        h = _zone(h, hnew, _step(zh, t))
        outs.append(h)
    return torch.stack(outs), h
