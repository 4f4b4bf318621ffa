r"""The executable specification: LSTM and GRU written step by step from the papers'
equations, with every recurrent-site mask, in the plainest PyTorch.

Nothing here is fast; it is what the layers are tested against (``tests/rnn``). LSTM
(Hochreiter & Schmidhuber 1997, gate order ``i, f, g, o`` as ``nn.LSTM``), step ``t``::

    i, f, g, o = sigmoid, sigmoid, tanh, sigmoid(x_t W_ih^T + (h_{t-1} * m^h_t) W_hh^T + b)
    cnew = (f * c_{t-1} + i * (g * m^u_t)) * m^c_t       UpdateDropout, CellDropout
    hnew = o * tanh(cnew)
    c_t = d^c_t c_{t-1} + (1 - d^c_t) cnew;  h_t = d^h_t h_{t-1} + (1 - d^h_t) hnew   Zoneout

GRU (``nn.GRU``'s convention, gate order ``r, z, n``)::

    r, z = sigmoid(x W_ir + b_ir + hin W_hr + b_hr), sigmoid(x W_iz + b_iz + hin W_hz + b_hz)
    n = tanh(x W_in + b_in + r * (hin W_hn + b_hn));  hin = h_{t-1} * m^h_t
    hnew = (1 - z) * (n * m^u_t) + z * h_{t-1};  h_t = d^h_t h_{t-1} + (1 - d^h_t) hnew

Masks are ``(T, B, H)`` tensors or ``None`` (see :func:`expand` for per-sequence masks).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["expand", "gru_steps", "lstm_steps"]


def _zone(prev: Tensor, new: Tensor, weights: Tensor | None, t: int) -> Tensor:
    return weights[t] * prev + (1 - weights[t]) * new if weights is not None else new


def lstm_steps(x: Tensor, w_ih: Tensor, w_hh: Tensor, b: Tensor, h: Tensor, c: Tensor,
               update: Tensor | None = None, cell: Tensor | None = None,
               hmask: Tensor | None = None, zc: Tensor | None = None,
               zh: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Unrolled LSTM over ``x`` ``(T, B, I)`` from ``(h, c)``; ``b = b_ih + b_hh``.

    Returns ``(outputs (T, B, H), h_T, c_T)``.
    """
    outs = []
    for t in range(x.shape[0]):
        hin = h * hmask[t] if hmask is not None else h
        gates = x[t] @ w_ih.T + hin @ w_hh.T + b
        i, f, g, o = gates.chunk(4, dim=-1)
        i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
        if update is not None:
            g = g * update[t]
        cnew = f * c + i * g
        if cell is not None:
            cnew = cnew * cell[t]
        hnew = o * cnew.tanh()
        c = _zone(c, cnew, zc, t)
        h = _zone(h, hnew, zh, t)
        outs.append(h)
    return torch.stack(outs), h, c


def gru_steps(x: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor, h: Tensor,
              update: Tensor | None = None, hmask: Tensor | None = None,
              zh: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Unrolled GRU (PyTorch's convention) over ``x`` ``(T, B, I)`` from ``h``, with
    Semeniuta's update dropout on ``n``. Returns ``(outputs (T, B, H), h_T)``."""
    outs = []
    for t in range(x.shape[0]):
        hin = h * hmask[t] if hmask is not None else h
        xr, xz, xn = (x[t] @ w_ih.T + b_ih).chunk(3, dim=-1)
        hr, hz, hn = (hin @ w_hh.T + b_hh).chunk(3, dim=-1)
        r, z = (xr + hr).sigmoid(), (xz + hz).sigmoid()
        n = (xn + r * hn).tanh()
        if update is not None:
            n = n * update[t]
        hnew = (1 - z) * n + z * h
        h = _zone(h, hnew, zh, t)
        outs.append(h)
    return torch.stack(outs), h


def expand(mask: Tensor | None, steps: int) -> Tensor | None:
    """A ``(1|T, B, H)`` mask as ``(T, B, H)`` (a per-sequence mask repeated over time)."""
    if mask is None:
        return None
    return mask.expand(steps, *mask.shape[1:])
