"""The learning-rate rule of variable-length BPTT (Merity, Keskar & Socher 2017, section 4.1).

With windows of random length ``L`` around the nominal ``bptt``, a step on a window of ``L``
tokens uses the learning rate ``lr * L / bptt``, so that short windows do not weigh as much as
long ones. The rate is scaled at the start of each training batch (from the window length,
``inputs.shape[0]`` of a time-major batch) and put back at its end: schedulers, the logged
``lr`` and checkpoints written between steps see the base rate.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning as L
from torch import Tensor
from typing_extensions import override

from lightning_rnn_reg.validation import check_positive_int

__all__ = ["ScaleLRByWindow", "window_length"]


def window_length(batch: Any) -> int:
    """Time steps of a time-major language-model batch: ``inputs.shape[0]`` of an
    :class:`~lightning_rnn_reg.data.LMBatch`, a dict with ``inputs``, a ``(inputs, targets)``
    sequence or a tensor."""
    if isinstance(batch, Tensor):
        inputs = batch
    elif isinstance(batch, dict):
        inputs = batch["inputs"]
    else:
        inputs = batch.inputs if hasattr(batch, "inputs") else batch[0]
    return int(inputs.shape[0])


class ScaleLRByWindow(L.Callback):
    """Scale each training step's learning rate by ``window length / bptt``.

    Args:
        bptt: the nominal window length (the data module's ``bptt``).

    Example::

        data = lrr.data.PennTreebank(bptt=70, variable_bptt=True)
        trainer = L.Trainer(callbacks=[lrr.callbacks.ScaleLRByWindow(bptt=70)])

    ``LanguageModel(bptt=n)`` attaches ``ScaleLRByWindow(n)`` itself.
    """

    def __init__(self, bptt: int) -> None:
        check_positive_int("ScaleLRByWindow", "bptt", bptt)
        self.bptt = bptt
        #: Each parameter group's unscaled rate while a batch runs, else ``None``.
        self.base_lrs: list[float] | None = None

    @property
    @override
    def state_key(self) -> str:
        return self._generate_state_key(bptt=self.bptt)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"base_lrs": None if self.base_lrs is None else list(self.base_lrs)}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        base = state_dict.get("base_lrs")
        self.base_lrs = None if base is None else [float(lr) for lr in base]

    @staticmethod
    def _groups(trainer: L.Trainer) -> Iterator[dict[str, Any]]:
        for optimizer in trainer.optimizers:
            yield from optimizer.param_groups

    @override
    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        groups = list(self._groups(trainer))
        if self.base_lrs is None or len(self.base_lrs) != len(groups):
            self.base_lrs = [float(group["lr"]) for group in groups]
        scale = window_length(batch) / self.bptt
        for group, base in zip(groups, self.base_lrs, strict=True):
            group["lr"] = base * scale

    @override
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.base_lrs is None:
            return
        for group, base in zip(self._groups(trainer), self.base_lrs, strict=False):
            group["lr"] = base
        self.base_lrs = None

    def base_lr(self) -> float | None:
        """The first parameter group's unscaled rate while a batch runs, else ``None``."""
        return self.base_lrs[0] if self.base_lrs else None
