"""NonFiniteGuard: a training step whose loss or gradients are not finite is skipped, not taken.

A step is *bad* when the loss of any of its (accumulated) batches, or any gradient after the
backward pass, holds ``nan`` or ``inf``. A bad step's gradients are dropped (set to ``None``)
before gradient clipping and the optimizer step, so the optimizer leaves every weight and its
own state (momentum, Adam moments, NT-ASGD averages) untouched: ``theta_{t+1} = theta_t``.
Bad steps are counted (logged as ``train/skipped_steps``); after ``max_consecutive`` bad steps
in a row training stops with :class:`NonFiniteError`. A checkpoint whose weights or optimizer
state are not finite is never written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, cast

import lightning as L
import torch
from torch import Tensor
from typing_extensions import override

from lightning_rnn_reg.validation import check_positive_int

__all__ = ["NonFiniteError", "NonFiniteGuard", "nonfinite_tensors"]

#: The parts of a checkpoint that hold model or optimizer numbers (checked before a save).
_CHECKED_KEYS = ("state_dict", "optimizer_states", "lrr")


class NonFiniteError(FloatingPointError):
    """Training produced non-finite numbers it cannot recover from (too many bad steps in a
    row, or non-finite weights about to be saved)."""


def nonfinite_tensors(tree: Any, prefix: str = "") -> Iterator[str]:
    """Names (dotted paths) of the floating-point tensors in a nested dict / list that hold
    ``nan`` or ``inf``.

    Example::

        list(nonfinite_tensors({"w": torch.tensor([1.0, float("nan")])}))  # ['w']
    """
    if isinstance(tree, Tensor):
        if tree.is_floating_point() and not bool(torch.isfinite(tree).all()):
            yield prefix
    elif isinstance(tree, dict):
        for key, value in tree.items():
            yield from nonfinite_tensors(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(tree, (list, tuple)):
        for index, value in enumerate(tree):
            yield from nonfinite_tensors(value, f"{prefix}.{index}" if prefix else str(index))


def _all_finite(tensors: Iterable[Tensor]) -> Tensor | None:
    """One boolean tensor (on the tensors' device, no host sync) or ``None`` if no tensors."""
    flags = [torch.isfinite(t).all() for t in tensors]
    if not flags:
        return None
    return torch.stack([f.to(flags[0].device) for f in flags]).all()


class NonFiniteGuard(L.Callback):
    """Skip every optimizer step whose loss or gradients are not finite; stop after
    ``max_consecutive`` such steps in a row.

    Works with gradient accumulation (one bad batch spoils the accumulated step), gradient
    clipping (the bad gradients are gone before clipping), any optimizer (including the switch
    to averaged SGD of NT-ASGD) and DDP / FSDP (the ranks agree on every decision). Under a
    16-bit ``GradScaler`` overflowing gradients are the scaler's business (it skips the step
    and lowers the scale); the guard then only watches the loss.

    The task modules add a ``NonFiniteGuard()`` on their own (``configure_callbacks``) unless
    the Trainer already has one or the task was built with ``nonfinite_guard=False``; give
    one to the Trainer to change ``max_consecutive``.

    Args:
        max_consecutive: bad steps in a row before :class:`NonFiniteError` stops training
            (``>= 1``).

    Example::

        trainer = L.Trainer(callbacks=[lrr.callbacks.NonFiniteGuard(max_consecutive=5)])
        trainer.fit(model, datamodule=data)
        trainer.callback_metrics["train/skipped_steps"]   # bad steps skipped so far
    """

    def __init__(self, max_consecutive: int = 10) -> None:
        check_positive_int("NonFiniteGuard", "max_consecutive", max_consecutive)
        self.max_consecutive = max_consecutive
        self.skipped = 0
        self.consecutive = 0
        self._loss_finite: Tensor | None = None

    # ------------------------------------------------------------------------------ hooks
    @override
    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           loss: Tensor) -> None:
        finite = torch.isfinite(loss.detach()).all()
        self._loss_finite = finite if self._loss_finite is None else self._loss_finite & finite

    @override
    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: L.LightningModule,
                                 optimizer: torch.optim.Optimizer) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"]
                  if p.grad is not None]
        bad = not self._step_is_finite(trainer, params)
        self._loss_finite = None
        bad = trainer.strategy.reduce_boolean_decision(bad, all=False)
        if not bad:
            self.consecutive = 0
        else:
            for param in params:
                param.grad = None  # optimizers skip parameters without a gradient
            self.skipped += 1
            self.consecutive += 1
        pl_module.log("train/skipped_steps", float(self.skipped), on_step=True, on_epoch=False)
        if self.consecutive >= self.max_consecutive:
            raise NonFiniteError(
                f"NonFiniteGuard: the loss or the gradients were nan/inf in "
                f"{self.consecutive} optimizer steps in a row (max_consecutive="
                f"{self.max_consecutive}; {self.skipped} skipped in all, the last at global "
                f"step {trainer.global_step}); stopping. Lower the learning rate, clip "
                "gradients (Trainer(gradient_clip_val=...)) or check the data.")

    @override
    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        bad = [name for key in _CHECKED_KEYS
               for name in nonfinite_tensors(checkpoint.get(key), key)]
        if bad:
            shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise NonFiniteError(f"NonFiniteGuard: refusing to save a checkpoint with nan/inf "
                                 f"values in {shown}")

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"skipped": self.skipped, "consecutive": self.consecutive}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.skipped = int(state_dict.get("skipped", 0))
        self.consecutive = int(state_dict.get("consecutive", 0))

    # ---------------------------------------------------------------------------- helpers
    def _step_is_finite(self, trainer: L.Trainer, params: list[torch.nn.Parameter]) -> bool:
        checked = [] if self._loss_finite is None else [self._loss_finite]
        if getattr(trainer.precision_plugin, "scaler", None) is None:
            # the caller passes only parameters that have a gradient
            checked += [cast(Tensor, p.grad) for p in params]
        finite = _all_finite(checked)
        return finite is None or bool(finite)
