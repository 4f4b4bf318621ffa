"""Zoneout (Krueger et al. 2016): units keep their previous value at random.

``c_t = d^c * c_{t-1} + (1 - d^c) * c~_t`` and ``h_t = d^h * h_{t-1} + (1 - d^h) * h~_t`` with
``d ~ Bernoulli(z)`` per unit and step in training, ``h~_t = o * tanh(c~_t)``; at test time
the expectation ``d = z``.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from lightning_rnn_reg import functional as LF
from lightning_rnn_reg.loop_masks import LoopMasks
from lightning_rnn_reg.mask_stats import records_masks
from lightning_rnn_reg.regularizers.base import RecurrentSiteRegularizer


class Zoneout(RecurrentSiteRegularizer):
    """Zoneout on the cell and hidden states, Krueger et al. 2016.

    Train: ``c_t = d_c * c_{t-1} + (1 - d_c) * c~_t``, ``d_c ~ Bernoulli(cell)``, and the same
    for ``h`` with ``d_h ~ Bernoulli(hidden)``; a fresh draw per step by default
    (``per_sequence=True`` shares it over the sequence). Eval: ``c_t = cell * c_{t-1} +
    (1 - cell) * c~_t`` (the expectation), likewise for ``h``. GRU has no cell: only
    ``hidden`` may be non-zero there.

    Example::

        rnn = lrr.LSTM(50, 1000, regularizers=[lrr.Zoneout(cell=0.5, hidden=0.05)])
    """

    rate_names: ClassVar[tuple[str, ...]] = ("cell", "hidden")
    mask_fields: ClassVar[tuple[str, ...]] = ("zone_c", "zone_h")

    def __init__(self, cell: float = 0.0, hidden: float = 0.0, per_sequence: bool = False) -> None:
        super().__init__()
        self.cell = cell
        self.hidden = hidden
        self.per_sequence = per_sequence

    def is_identity(self) -> bool:
        return self.cell == 0.0 and self.hidden == 0.0

    @property
    def eval_is_plain(self) -> bool:
        return self.is_identity()  # eval keeps p of the old state: not an nn.LSTM

    def check_cell(self, cell: str) -> None:
        super().check_cell(cell)
        if cell == "GRU" and self.cell > 0.0:
            raise ValueError("GRU: Zoneout(cell=...) zones out an LSTM cell state; GRU has "
                             "none (use Zoneout(hidden=...))")

    @records_masks
    def loop_masks(self, steps: int, batch: int, hidden: int, like: Tensor,
                   gates: int = 4) -> LoopMasks:
        """Zoneout weights for the loop: ``zone_c`` / ``zone_h`` of shape ``(1|T, B, H)``
        (Bernoulli draws) or one-element tensors holding the rate (eval)."""
        shape = (1 if self.per_sequence else steps, batch, hidden)
        zone_c = zone_h = None
        if self.cell > 0.0 and self.hidden > 0.0:  # both from one draw
            zone_c, zone_h = LF.zoneout_weight_pair(shape, self.cell, self.hidden,
                                                    self.training, like)
            return LoopMasks(zone_c=zone_c, zone_h=zone_h)
        if self.cell > 0.0:
            zone_c = LF.zoneout_weights(shape, self.cell, self.training, like)
        if self.hidden > 0.0:
            zone_h = LF.zoneout_weights(shape, self.hidden, self.training, like)
        return LoopMasks(zone_c=zone_c, zone_h=zone_h)

    def _extra_options(self) -> dict[str, object]:
        return {"per_sequence": self.per_sequence}
