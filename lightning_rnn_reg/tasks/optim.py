"""Optimizers and learning-rate schedules of the papers, shared by every task module.

``optimizer``: ``"sgd"`` (with ``momentum``) or ``"adam"``; ``weight_decay`` for both.
``lr_schedule``:

- ``"none"``: constant learning rate;
- ``"zaremba"`` (Zaremba et al. 2014): keep ``lr`` for ``lr_decay_start`` epochs, then divide
  it by ``lr_decay`` after every epoch, ``lr_e = lr / lr_decay ** max(0, e + 1 - start)``;
- ``"plateau"`` (Semeniuta et al. 2016): divide by ``lr_decay`` whenever the monitored
  validation quantity does not improve (``ReduceLROnPlateau``, patience 0).

Gradient clipping by global norm is the Trainer's ``gradient_clip_val``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, cast

import torch
from torch import nn

__all__ = ["OPTIMIZERS", "SCHEDULES", "check_optimization", "make_optimizer", "with_schedule"]

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("none", "zaremba", "plateau")


def check_optimization(owner: str, optimizer: str, lr_schedule: str, lr: float, lr_decay: float,
                       optimizers: Iterable[str] = OPTIMIZERS) -> None:
    """Raise ``ValueError`` naming ``owner`` for an unknown optimizer or schedule, or
    ``lr`` / ``lr_decay`` <= 0."""
    for name, value, choices in (("optimizer", optimizer, tuple(optimizers)),
                                 ("lr_schedule", lr_schedule, SCHEDULES)):
        if value not in choices:
            raise ValueError(f"{owner}: {name} must be one of {choices}, got {value!r}")
    if lr <= 0 or lr_decay <= 0:
        raise ValueError(f"{owner}: lr and lr_decay must be > 0, got {lr} and {lr_decay}")


def make_optimizer(params: Iterable[nn.Parameter], optimizer: str, lr: float,
                   momentum: float = 0.0, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """``torch.optim.SGD`` or ``torch.optim.Adam`` over ``params``."""
    if optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {OPTIMIZERS}")


def with_schedule(optimizer: torch.optim.Optimizer, lr_schedule: str, lr_decay: float = 1.0,
                  lr_decay_start: int = 0, monitor: str = "val/loss",
                  mode: str = "min") -> Any:
    """What ``configure_optimizers`` returns: ``optimizer`` alone, or with its epoch-level
    scheduler (``monitor`` / ``mode`` for ``"plateau"``)."""
    if lr_schedule == "zaremba":
        scheduler: Any = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda epoch: lr_decay ** -max(0, epoch + 1 - lr_decay_start))
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
    if lr_schedule == "plateau":
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=cast(Literal["min", "max"], mode), factor=1.0 / lr_decay,
            patience=0)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": monitor,
                                 "interval": "epoch"}}
    if lr_schedule == "none":
        return optimizer
    raise ValueError(f"unknown lr_schedule {lr_schedule!r}; choose one of {SCHEDULES}")
