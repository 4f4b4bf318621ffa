"""Activation regularization (AR) and temporal activation regularization (TAR), Merity et al.
2017: ``alpha * mean(h^2)`` on the dropped last-layer output and ``beta * mean((h_t - h_{t-1})^2)``
on the undropped one; both 0 at eval.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from lightning_rnn_reg import functional as LF
from lightning_rnn_reg.regularizers.base import Regularizer


class ActivationRegularization(Regularizer):
    """AR, Merity et al. 2017: ``alpha * mean(h^2)`` over the dropped last-layer output ``h``.

    Added to the training loss; ``0`` at eval. ``mask`` (valid positions) excludes padding.

    Example::

        ar = lrr.ActivationRegularization(alpha=2.0)
        loss = loss + ar(dropped_output)
    """

    site = "loss"
    rate_names: ClassVar[tuple[str, ...]] = ("alpha",)
    rate_upper: ClassVar[float | None] = None

    def __init__(self, alpha: float = 2.0) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, h: Tensor, mask: Tensor | None = None) -> Tensor:
        if not self.training:
            return h.new_zeros(())
        return LF.activation_regularization(h, self.alpha, mask)


class TemporalActivationRegularization(Regularizer):
    """TAR, Merity et al. 2017: ``beta * mean((h_t - h_{t-1})^2)`` over the undropped last-layer
    output ``h`` (``(T, B, H)``, or ``(B, T, H)`` with ``batch_first``).

    ``0`` at eval and when ``T == 1`` (never NaN).

    Example::

        tar = lrr.TemporalActivationRegularization(beta=1.0)
        loss = loss + tar(raw_output)
    """

    site = "loss"
    rate_names: ClassVar[tuple[str, ...]] = ("beta",)
    rate_upper: ClassVar[float | None] = None

    def __init__(self, beta: float = 1.0, batch_first: bool = False) -> None:
        super().__init__()
        self.beta = beta
        self.batch_first = batch_first

    def forward(self, h: Tensor, mask: Tensor | None = None) -> Tensor:
        if not self.training:
            return h.new_zeros(())
        return LF.temporal_activation_regularization(h, self.beta, mask, self.batch_first)
