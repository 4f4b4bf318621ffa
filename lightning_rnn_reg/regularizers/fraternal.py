"""Fraternal dropout (Zolna et al. 2017): two passes with independent masks,
``L = (CE(z1, y) + CE(z2, y)) / 2 + kappa * mean((z1 - z2)^2)`` on pre-softmax outputs.
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from lightning_rnn_reg import functional as LF
from lightning_rnn_reg.regularizers.base import Regularizer


class FraternalDropout(Regularizer):
    """Fraternal dropout's dual-pass objective, Zolna et al. 2017.

    The model is run twice on the same batch with independently drawn masks, giving logits
    ``z1`` and ``z2``; the loss is ``(CE(z1, y) + CE(z2, y)) / 2 + kappa * mean((z1 - z2)^2)``
    (mean over every entry). At eval one pass is enough (a task module does that). With
    ``kappa = 0`` it is the mean of two ordinary losses.

    Example::

        fd = lrr.FraternalDropout(kappa=0.1)
        loss = fd(model(x), model(x), y)      # two passes, two mask draws
    """

    site = "loss"
    rate_names: ClassVar[tuple[str, ...]] = ("kappa",)
    rate_upper: ClassVar[float | None] = None

    def __init__(self, kappa: float = 0.1) -> None:
        super().__init__()
        self.kappa = kappa

    def forward(self, z1: Tensor, z2: Tensor, target: Tensor, ignore_index: int = -100) -> Tensor:
        return LF.fraternal_loss(z1, z2, target, self.kappa, ignore_index)

    def penalty(self, z1: Tensor, z2: Tensor) -> Tensor:
        """Only the ``kappa * mean((z1 - z2)^2)`` term."""
        return LF.fraternal_penalty(z1, z2, self.kappa)
