"""Regularize: add regularizers to an existing LightningModule from the Trainer's callbacks
(so from a YAML config alone), by :func:`lightning_rnn_reg.regularize` at ``setup``.

At ``setup`` (every stage) the module's ``nn.LSTM`` / ``nn.GRU`` layers (or those matching
``include``) become ``lrr.LSTM`` / ``lrr.GRU`` running copies of the regularizers, with the
very same ``Parameter`` objects and ``state_dict`` keys. Lightning calls ``setup`` before it
configures the optimizers and wraps the module for DDP, and before it loads a checkpoint's
weights, so ``trainer.fit(ckpt_path=...)`` re-applies the swap and then loads the weights
into the new layers. A second ``setup`` of the same module (fit, then test) finds the lrr
layers it made and changes nothing.

Mask randomness, as the library's own tasks do it (:mod:`~lightning_rnn_reg.tasks.rank_state`),
for a module that is not a :class:`~lightning_rnn_reg.RecurrentTask` (one is left to its own
hooks): each rank of a multi-process fit draws its own masks, seeded from the global seed;
validation leaves the generator as it found it; a checkpoint carries every rank's generator
state (``checkpoint["lrr"]["rng"]``), restored when a fit resumes from it, at train start.
With a seeded, deterministic data order that does not draw from torch's global generator
(e.g. a ``DataLoader`` given its own ``generator``), an interrupted and resumed fit ends with
the same weights as an uninterrupted one.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor
from typing_extensions import override

from lightning_rnn_reg.regularizers.base import Regularizer
from lightning_rnn_reg.rnn.retrofit import (
    check_include,
    check_regularizers,
    regularize_layers,
    retrofitted,
)

__all__ = ["Regularize"]

#: The sites a recurrent layer serves (``embedding`` and ``loss`` need the task's code).
LAYER_SITES = ("input", "between", "output", "weights", "recurrent")


class Regularize(L.Callback):
    """Apply :func:`lightning_rnn_reg.regularize` to the LightningModule at ``setup``.

    Args:
        regularizers: regularizer objects acting at a layer's sites (``input``, ``between``,
            ``output``, ``weights``, ``recurrent``): e.g. ``LockedDropout``, ``WeightDrop``,
            ``Zoneout``. Each replaced layer gets its own copy. ``EmbeddingDropout``, AR /
            TAR and fraternal dropout need the model's code (a ``ValueError`` here).
        include: which layers, by qualified module name: an exact name or an ``fnmatch``
            pattern (``"encoder.*"``), or a list of them; ``None``: every ``nn.LSTM`` /
            ``nn.GRU``. A pattern matching no recurrent layer is a ``ValueError`` at setup.

    The layers must exist at ``setup`` (built in ``__init__``, not in ``configure_model``).
    A module whose selected layers are all lightning_rnn_reg layers of its own (e.g. a
    ``lrr.LanguageModel``) is a ``ValueError``: give it the regularizers instead. Under
    ``ddp_spawn`` the swap happens in every worker; the launching process's module keeps its
    ``nn.LSTM`` and receives the trained weights (same keys). Rate callbacks
    (``RateSchedule``, ``CurriculumDropout``, ``RegularizerMonitor``) find the copies inside
    the layers at fit start, after this callback's ``setup``.

    Example (``lightning-rnn-reg fit`` / any LightningCLI config)::

        trainer:
          callbacks:
            - class_path: lightning_rnn_reg.callbacks.Regularize
              init_args:
                include: encoder          # optional: only the submodule named "encoder"
                regularizers:
                  - class_path: lightning_rnn_reg.LockedDropout
                    init_args: {p: 0.3, at: output}
                  - class_path: lightning_rnn_reg.WeightDrop
                    init_args: {p: 0.5}

    or in Python: ``L.Trainer(callbacks=[lrr.callbacks.Regularize([lrr.WeightDrop(0.5)])])``.
    """

    def __init__(
        self,
        regularizers: list[Regularizer],
        include: str | list[str] | None = None,
    ) -> None:
        regs = check_regularizers(regularizers, "Regularize")
        if not regs:
            raise ValueError("Regularize: give at least one regularizer")
        for reg in regs:
            if reg.site not in LAYER_SITES:
                raise ValueError(
                    f"Regularize: {type(reg).__name__} acts at site {reg.site!r}, which a "
                    f"recurrent layer cannot serve (it serves {LAYER_SITES}); it needs the "
                    "model's own code (e.g. a lightning_rnn_reg task's regularizers)")
        self.regularizers = regs
        self.include = check_include(include, "Regularize")
        self._resume_rng: list[dict[str, Tensor]] | None = None
        self._rng_before_eval: dict[str, Tensor] | None = None

    @override
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        replaced = regularize_layers(pl_module, self.regularizers, self.include)
        if not replaced and not retrofitted(pl_module, self.include):
            raise ValueError(
                f"Regularize: the recurrent layers of {type(pl_module).__name__} selected by "
                f"include={self.include!r} already are lightning_rnn_reg layers with their "
                "own regularizers; pass these regularizers to the model instead")

    # ------------------------------------------------------------- mask randomness
    @staticmethod
    def _owns_rng(pl_module: L.LightningModule) -> bool:
        from lightning_rnn_reg.tasks.base import RecurrentTask  # tasks import callbacks

        return not isinstance(pl_module, RecurrentTask)  # a task keeps its own generator

    @override
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Resume this rank's generator from the checkpoint being resumed, else give each
        rank of a multi-process run its own mask seed (a single process is left alone)."""
        from lightning_rnn_reg.tasks.rank_state import global_seed, rank_seed, set_rng_state

        states, self._resume_rng = self._resume_rng, None
        if not self._owns_rng(pl_module):
            return
        if (states is not None and trainer.ckpt_path is not None
                and len(states) == trainer.world_size):
            set_rng_state(states[trainer.global_rank], pl_module.device)
        elif trainer.world_size > 1:
            torch.manual_seed(rank_seed(global_seed(), trainer.global_rank))

    @override
    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from lightning_rnn_reg.tasks.rank_state import get_rng_state

        if self._owns_rng(pl_module):
            self._rng_before_eval = get_rng_state(pl_module.device)

    @override
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from lightning_rnn_reg.tasks.rank_state import set_rng_state

        if self._rng_before_eval is not None:
            set_rng_state(self._rng_before_eval, pl_module.device)
            self._rng_before_eval = None

    @override
    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        """Every rank's generator state in ``checkpoint["lrr"]["rng"]`` (a collective call
        under DDP: Lightning dumps the checkpoint on every rank)."""
        from lightning_rnn_reg.tasks.rank_state import gather_per_rank, get_rng_state

        if self._owns_rng(pl_module):
            state = self._rng_before_eval or get_rng_state(pl_module.device)
            checkpoint.setdefault("lrr", {})["rng"] = gather_per_rank(pl_module, state)

    @override
    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        self._resume_rng = checkpoint.get("lrr", {}).get("rng")
