"""Activation dropouts: per-step ``Dropout`` (Zaremba 2014) and per-sequence ``LockedDropout``
(Gal & Ghahramani 2016; Merity 2017).

Train: ``x_t * m_t / (1 - p)`` (a fresh ``m_t`` at each step) or ``x_t * m / (1 - p)`` (one
``m`` for the whole sequence); eval: ``x``.
"""

from __future__ import annotations

from torch import Tensor

from lightning_rnn_reg import functional as LF
from lightning_rnn_reg.mask_stats import records_masks
from lightning_rnn_reg.regularizers.base import ActivationDropoutBase


class Dropout(ActivationDropoutBase):
    """Per-step dropout on vertical (non-recurrent) connections, Zaremba et al. 2014.

    ``y_t = x_t * m_t / (1 - p)``, ``m_t ~ Bernoulli(1 - p)`` drawn afresh for every element
    and time step; identity at eval. ``at`` is where a layer applies it: ``"input"`` (the
    input of the first layer), ``"between"`` (between stacked layers) or ``"output"`` (the
    last layer's output).

    Shapes: any; called directly it is ordinary elementwise dropout.

    Example::

        rnn = lrr.LSTM(200, 200, 2, regularizers=[lrr.Dropout(0.5, at="between"),
                                                  lrr.Dropout(0.5, at="output")])
    """

    @records_masks
    def drop(self, x: Tensor, batch_first: bool) -> Tensor:
        return LF.dropout(x, self.p, self.training)


class LockedDropout(ActivationDropoutBase):
    """Locked (variational) dropout, Gal & Ghahramani 2016; Merity et al. 2017.

    ``y_t = x_t * m / (1 - p)``, one ``m ~ Bernoulli(1 - p)`` per sequence and feature,
    shared by every time step; identity at eval.

    Shapes: ``(T, B, F)``, or ``(B, T, F)`` with ``batch_first=True``.

    Example::

        drop = lrr.LockedDropout(0.4, at="input")
        y = drop(torch.randn(35, 20, 400))      # same mask at all 35 steps
    """

    @records_masks
    def drop(self, x: Tensor, batch_first: bool) -> Tensor:
        return LF.locked_dropout(x, self.p, self.training, batch_first)
