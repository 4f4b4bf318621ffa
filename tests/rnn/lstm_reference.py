"""Step-by-step LSTM / GRU written from the equations, for checking the layers by hand."""

from __future__ import annotations

import torch
from torch import Tensor


def lstm_steps(x, w_ih, w_hh, b, h, c, update=None, cell=None, hmask=None, zc=None, zh=None):
    """Unrolled LSTM following the papers' equations; masks are (T, B, H) tensors or None."""
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
        c = zc[t] * c + (1 - zc[t]) * cnew if zc is not None else cnew
        h = zh[t] * h + (1 - zh[t]) * hnew if zh is not None else hnew
        outs.append(h)
    return torch.stack(outs), h, c


def gru_steps(x, w_ih, w_hh, b_ih, b_hh, h, update=None, hmask=None, zh=None):
    """Unrolled GRU (PyTorch's convention) with Semeniuta's update dropout on n."""
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
        h = zh[t] * h + (1 - zh[t]) * hnew if zh is not None else hnew
        outs.append(h)
    return torch.stack(outs), h


def expand(mask: Tensor | None, steps: int) -> Tensor | None:
    """A (1|T, B, H) mask as (T, B, H)."""
    if mask is None:
        return None
    return mask.expand(steps, *mask.shape[1:])
