"""The loop runner: one layer of the stack through the custom recurrence
(:mod:`lightning_rnn_reg.rnn.loop`), for regularizers that act inside it.

Per direction: the input projection of every step in one product (``xw = x W_ih^T + b``),
the recurrent-site regularizers' masks gathered into one
:class:`~lightning_rnn_reg.loop_masks.LoopMasks` (each regularizer fills the fields it
declares), then the loop. The reverse direction runs on each sequence reversed within its
length. Padding never reaches a state or a gradient, even a nan or inf there: padded inputs
become zeros (gradient 0), padded steps keep the state exactly (zoneout weight 1), padded
outputs are zeros.

Under autocast the projection comes out in the low dtype; the recurrence runs in the
parameters' dtype (float32): as accurate as nn.LSTM's AMP kernel or better (the docs give
the measurement).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_rnn_reg.loop_masks import LoopMasks
from lightning_rnn_reg.regularizers.base import RecurrentSiteRegularizer
from lightning_rnn_reg.rnn.fused import Result
from lightning_rnn_reg.rnn.loop import gru_recurrence, lstm_recurrence

#: One direction: ``(x, {kind: tensor}, h0, c0, masks) -> (out, h_T, c_T | None)``.
_Direction = Callable[[Tensor, dict[str, Tensor], Tensor, Tensor | None, LoopMasks], Result]


def _lstm_direction(x: Tensor, weights: dict[str, Tensor], h0: Tensor, c0: Tensor | None,
                    masks: LoopMasks) -> Result:
    assert c0 is not None  # an LSTM always has c_0
    w_hh = weights["weight_hh"]
    b_ih, b_hh = weights.get("bias_ih"), weights.get("bias_hh")
    bias = b_ih + b_hh if b_ih is not None and b_hh is not None else None
    xw = F.linear(x, weights["weight_ih"], bias).to(w_hh.dtype)
    return lstm_recurrence(xw, w_hh, h0.to(w_hh.dtype), c0.to(w_hh.dtype), masks=masks)


def _gru_direction(x: Tensor, weights: dict[str, Tensor], h0: Tensor, c0: Tensor | None,
                   masks: LoopMasks) -> Result:
    w_hh = weights["weight_hh"]
    xw = F.linear(x, weights["weight_ih"], weights.get("bias_ih")).to(w_hh.dtype)
    b_hh = weights.get("bias_hh")
    if b_hh is None:
        b_hh = w_hh.new_zeros(w_hh.shape[0])
    out, h = gru_recurrence(xw, w_hh, b_hh, h0.to(w_hh.dtype), masks=masks)
    return out, h, None


_DIRECTIONS: dict[str, _Direction] = {"LSTM": _lstm_direction, "GRU": _gru_direction}
#: The state each cell keeps at a padded step.
_STATE_FIELDS = {"LSTM": ("zone_c", "zone_h"), "GRU": ("zone_h",)}


class LoopRunner:
    """Runs layers of one forward call through the loop (built per call)."""

    def __init__(self, cell: str, gates: int, hidden_size: int,
                 regularizers: Sequence[RecurrentSiteRegularizer]) -> None:
        self.cell = cell
        self.gates = gates
        self.hidden_size = hidden_size
        self.regularizers = regularizers

    def run_layer(self, layer: int, directions: list[dict[str, Tensor]], x: Tensor,
                  h0: Tensor, c0: Tensor | None, lengths: Tensor | None) -> Result:
        """Layer ``layer`` (both directions); ``lengths`` as the fused runner's."""
        steps, batch = x.shape[0], x.shape[1]
        valid = None
        if lengths is not None:
            time = torch.arange(steps, device=x.device).unsqueeze(1)
            valid = (time < lengths.to(x.device).unsqueeze(0)).unsqueeze(-1)
            x = torch.where(valid, x, x.new_zeros(()))
        outs, hs, cs = [], [], []
        for direction, weights in enumerate(directions):
            reverse = _reverse_index(steps, batch, lengths, x.device) if direction else None
            inp = x if reverse is None else _gather_time(x, reverse)
            masks = self._masks(steps, batch, x, valid)
            c0_d = c0[direction] if c0 is not None else None
            out, h, c = _DIRECTIONS[self.cell](inp, weights, h0[direction], c0_d, masks)
            if reverse is not None:
                out = _gather_time(out, reverse)
            if valid is not None:
                out = torch.where(valid, out, out.new_zeros(()))
            outs.append(out)
            hs.append(h)
            if c is not None:
                cs.append(c)
        output = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)
        return output, torch.stack(hs), torch.stack(cs) if cs else None

    def _masks(self, steps: int, batch: int, x: Tensor, valid: Tensor | None) -> LoopMasks:
        masks = LoopMasks()
        for reg in self.regularizers:
            masks = masks.merge(reg.loop_masks(steps, batch, self.hidden_size, x, self.gates))
        if valid is None:
            return masks
        keep = valid.to(x.dtype)  # at a padded step d = 1: lerp(new, prev, 1) is prev exactly
        frozen = {name: 1.0 - keep if masks.get(name) is None else 1.0 - (1.0 - masks[name]) * keep
                  for name in _STATE_FIELDS[self.cell]}
        return masks.with_fields(**frozen)


def _reverse_index(steps: int, batch: int, lengths: Tensor | None, device: torch.device) -> Tensor:
    """``(T, B)`` time index that reverses each sequence within its length (an involution)."""
    t = torch.arange(steps, device=device).unsqueeze(1).expand(steps, batch)
    if lengths is None:
        return steps - 1 - t
    length = lengths.to(device).unsqueeze(0)
    return torch.where(t < length, length - 1 - t, t)


def _gather_time(x: Tensor, index: Tensor) -> Tensor:
    return x.gather(0, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
