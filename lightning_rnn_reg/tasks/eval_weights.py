"""Evaluation weights: weights a task evaluates with in place of the ones it trains.

A task holds a slot ``eval_weights`` (parameter name -> tensor, empty by default) that a
callback fills, e.g. :class:`~lightning_rnn_reg.callbacks.NTASGD` with the running average of
the iterates. While the slot is filled, validation, test and prediction (and the tasks' text
methods, through :meth:`EvalWeights.evaluating`) run with those weights in place, and the
trained ones are put back after; the two are swapped in place (no copy of the model is
kept). The slot is saved in checkpoints (``checkpoint["lrr"]["eval_weights"]``; checkpoints
of earlier versions: ``averaged_weights``), so a model loaded alone evaluates as it did.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
import torch
from torch import Tensor

__all__ = ["EvalWeights"]

#: ``checkpoint["lrr"]`` keys of the slot (the current one first).
_KEYS = ("eval_weights", "averaged_weights")


class EvalWeights(L.LightningModule):
    """Mixin of the task modules: the ``eval_weights`` slot and its swaps."""

    def __init__(self) -> None:
        super().__init__()
        #: Weights to evaluate with, by parameter name (empty: the trained ones).
        self.eval_weights: dict[str, Tensor] = {}
        #: Whether :attr:`eval_weights` are in place of the parameters now.
        self.eval_weights_in_place = False

    def use_eval_weights(self, on: bool) -> bool:
        """Put the evaluation weights in place (``on``) or the trained ones back; whether it
        swapped (nothing to do with an empty slot, or if they already are in place)."""
        if self.eval_weights_in_place == on or not self.eval_weights:
            return False
        weights = self.eval_weights
        with torch.no_grad():
            for name, param in self.named_parameters():
                other = weights.get(name)
                if other is not None:
                    live = param.detach().clone()
                    param.copy_(other)
                    other.copy_(live)
        self.eval_weights_in_place = on
        return True

    @contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode, no gradients, the evaluation weights in place; all restored after."""
        was_training = self.training
        self.eval()
        swapped = self.use_eval_weights(True)
        try:
            with torch.no_grad():
                yield
        finally:
            if swapped:
                self.use_eval_weights(False)
            self.train(was_training)

    # The evaluation hooks (subclasses that override them call super()).
    def on_validation_epoch_start(self) -> None:
        self.use_eval_weights(True)

    def on_validation_epoch_end(self) -> None:
        self.use_eval_weights(False)

    on_test_epoch_start = on_predict_epoch_start = on_validation_epoch_start
    on_test_epoch_end = on_predict_epoch_end = on_validation_epoch_end

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint.setdefault("lrr", {})[_KEYS[0]] = {
            name: weight.detach().cpu().clone() for name, weight in self.eval_weights.items()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        extra = checkpoint.get("lrr", {})
        saved = next((extra[key] for key in _KEYS if key in extra), None) or {}
        self.eval_weights = dict(saved)
        self.eval_weights_in_place = False
