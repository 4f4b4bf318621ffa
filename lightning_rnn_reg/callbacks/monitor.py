"""RegularizerMonitor: what the regularizers are doing, logged every ``n`` optimizer steps.

On the steps it logs (``t % every_n_steps == 0``, rank 0, with a logger) it writes to every
logger of the trainer (TensorBoard by default), at step ``t``:

* ``<prefix>/rate/<name>/<rate>``: each regularizer's current rate (``name`` as in
  :mod:`~lightning_rnn_reg.callbacks.targets`, e.g. ``0_LockedDropout``);
* ``<prefix>/dropped/<name>/<rate>``: the fraction of units the masks drawn during the step
  actually dropped (zoneout: kept), ``#{u < p} / #units`` over the draws at that rate, counted
  by :mod:`lightning_rnn_reg.mask_stats`; its expectation is the rate;
* ``<prefix>/term/<ar|tar|fraternal>``: the loss terms the task logged for the step (the
  ``terms`` keys of ``trainer.callback_metrics``: ``alpha * mean(h^2)``,
  ``beta * mean((h_t - h_{t-1})^2)``, ``kappa * mean((z1 - z2)^2)``, Merity 2017, Zolna 2017);
* ``<prefix>/hidden_norm/<layer>/t<k>``: ``mean_b ||h_k^b||_2``, the norm of each recurrent
  layer's output at time step ``k`` of the window, averaged over the batch (padded positions
  left out) and over the step's forward passes (two with fraternal dropout): how the state
  grows or decays along the sequence.

Measuring reads the drawn masks and the outputs and draws no random number, so training is
bit-identical with and without the monitor. Off the logged steps (and with
``every_n_steps=0`` or no logger: always) it does one integer test per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence
from torch.utils.hooks import RemovableHandle
from typing_extensions import override

from lightning_rnn_reg.callbacks.targets import named_regularizers
from lightning_rnn_reg.mask_stats import MaskStats
from lightning_rnn_reg.regularizers.base import Regularizer
from lightning_rnn_reg.rnn import GRU, LSTM

TERMS = ("train/ar", "train/tar", "train/fraternal")


class RegularizerMonitor(L.Callback):
    """Log rates, measured dropped fractions, AR/TAR/fraternal terms and hidden-state norms.

    Args:
        every_n_steps: log at optimizer steps ``0, n, 2n, ...``; ``0`` turns the monitor off.
        prefix: tag prefix.
        rates: log the rates (see the module docstring).
        dropped: log the measured dropped fractions.
        hidden_norm: log the hidden-state norm per step.
        terms: ``trainer.callback_metrics`` keys of the loss terms to log (absent keys are
            skipped).

    Example::

        trainer = L.Trainer(callbacks=[lrr.callbacks.RegularizerMonitor(every_n_steps=100)])
    """

    def __init__(
        self,
        every_n_steps: int = 50,
        *,
        prefix: str = "regularizers",
        rates: bool = True,
        dropped: bool = True,
        hidden_norm: bool = True,
        terms: Sequence[str] = TERMS,
    ) -> None:
        if isinstance(every_n_steps, bool) or not isinstance(every_n_steps, int) or (
                every_n_steps < 0):
            raise ValueError(f"every_n_steps must be an int >= 0, got {every_n_steps!r}")
        self.every_n_steps = every_n_steps
        self.prefix = prefix
        self.rates = rates
        self.dropped = dropped
        self.hidden_norm = hidden_norm
        self.terms = tuple(terms)
        self._step: int | None = None  # the step being measured, else None
        self._last: int | None = None
        self._regs: dict[str, Regularizer] = {}
        self._handles: list[RemovableHandle] = []
        self._norms: dict[str, list[Tensor]] = {}

    def _due(self, trainer: L.Trainer) -> bool:
        step = trainer.global_step
        return (self.every_n_steps > 0 and step % self.every_n_steps == 0 and step != self._last
                and bool(trainer.loggers) and trainer.is_global_zero)

    # ------------------------------------------------------------------------------ hooks
    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last = None  # a new fit may start again at step 0

    @override
    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        if not self._due(trainer):
            return
        self._step = self._last = trainer.global_step
        self._regs = named_regularizers(pl_module)
        if self.dropped:
            for reg in self._regs.values():
                reg.mask_stats = MaskStats()
        if self.hidden_norm:
            for name, layer in pl_module.named_modules():
                if isinstance(layer, (LSTM, GRU, nn.RNNBase)):
                    self._handles.append(layer.register_forward_hook(self._norm_hook(name)))

    @override
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._step is None:
            return
        metrics = self._metrics(trainer)
        step = self._step
        self._stop()
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)

    @override
    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule,
                     exception: BaseException) -> None:
        self._stop()

    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._stop()

    # ---------------------------------------------------------------------------- helpers
    def _stop(self) -> None:
        """Recording off: masks no longer counted, forward hooks removed."""
        for reg in self._regs.values():
            reg.mask_stats = None
        for handle in self._handles:
            handle.remove()
        self._step, self._regs, self._handles, self._norms = None, {}, [], {}

    def _metrics(self, trainer: L.Trainer) -> dict[str, float]:
        metrics: dict[str, float] = {}
        for name, reg in self._regs.items():
            for rate, value in reg.rates.items():
                if self.rates:
                    metrics[f"{self.prefix}/rate/{name}/{rate}"] = value
                measured = reg.mask_stats.fraction(value) if reg.mask_stats else None
                if measured is not None:
                    metrics[f"{self.prefix}/dropped/{name}/{rate}"] = measured
        logged = trainer.callback_metrics if self.terms else {}
        for key in self.terms:
            if key in logged:
                metrics[f"{self.prefix}/term/{key.rsplit('/', 1)[-1]}"] = float(logged[key])
        for layer, norms in self._norms.items():
            if len({tuple(n.shape) for n in norms}) == 1:
                per_step = torch.stack(norms).mean(0)  # e.g. fraternal dropout's two passes
            else:
                per_step = norms[-1]
            for t, value in enumerate(per_step.tolist()):
                metrics[f"{self.prefix}/hidden_norm/{layer}/t{t:03d}"] = value
        return metrics

    def _norm_hook(self, name: str) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            self._norms.setdefault(name, []).append(_norm_per_step(module, output[0]))

        return hook


def _norm_per_step(module: nn.Module, output: Tensor | PackedSequence) -> Tensor:
    """``(T,)``: ``||h_t||_2`` averaged over the examples of the batch that are not padding
    at step ``t`` (padded outputs are exactly zero)."""
    batch_first = getattr(module, "batch_first", False)
    if isinstance(output, PackedSequence):
        output, batch_first = pad_packed_sequence(output)[0], False
    norms = output.detach().float().norm(dim=-1)
    if norms.dim() == 1:  # unbatched (T, F)
        return norms
    if batch_first:
        norms = norms.t()
    return norms.sum(1) / (norms > 0).sum(1).clamp_min(1)
