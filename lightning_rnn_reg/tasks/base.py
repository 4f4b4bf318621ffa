"""RecurrentTask: the regularizer plumbing every task module shares.

Regularizers arrive as one list (objects, or ``class_path`` dicts from YAML) and are sorted by
site along the flow of DESIGN.md section 1::

    embedding (+EmbeddingDropout) -> input dropouts -> recurrent layers (recurrent-site and
    WeightDrop) -> between-layer dropouts -> output dropouts -> head -> loss (+AR, TAR,
    fraternal)

Hyperparameters store the regularizers as plain ``class_path`` specs, so a checkpoint holds
no pickled objects and ``load_from_checkpoint`` rebuilds them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities import grad_norm
from torch import Tensor, nn

from lightning_rnn_reg.regularizers import (
    ActivationRegularization,
    EmbeddingDropout,
    FraternalDropout,
    Regularizer,
    TemporalActivationRegularization,
)
from lightning_rnn_reg.tasks.rank_state import (
    gather_per_rank,
    get_rng_state,
    global_seed,
    rank_seed,
    set_rng_state,
)

RegularizerArg = Regularizer | dict[str, Any]

#: Data-module attributes the CLI passes to the model argument of the same name.
LINKED_SIZES = ("vocab_size", "num_tags", "num_classes", "char_vocab_size")


class RecurrentTask(L.LightningModule):
    """Base LightningModule: holds the regularizers, applies the activation sites, logs rates.

    Subclasses build their layers with :meth:`layer_regularizers` and call
    :meth:`drop_input`, :meth:`drop_between`, :meth:`drop_output` and :meth:`embed` along
    their forward pass.

    Mask randomness (:mod:`~lightning_rnn_reg.tasks.rank_state`): each rank of a
    multi-process fit draws its own masks, seeded from the global seed; evaluation leaves
    the generator as it found it (so validation, Monte-Carlo or not, never changes the
    training noise); checkpoints carry every rank's generator state, restored when a fit
    resumes from one. Subclasses that override the checkpoint hooks call ``super()``.
    """

    _resume_rng: list[dict[str, Tensor]] | None = None
    _rng_before_eval: dict[str, Tensor] | None = None

    def __init__(self, regularizers: Sequence[RegularizerArg] | None = None) -> None:
        super().__init__()
        regs = [Regularizer.from_spec(reg) for reg in (regularizers or [])]
        self.regularizers = nn.ModuleList(regs)
        self._check_unique(EmbeddingDropout, ActivationRegularization,
                           TemporalActivationRegularization, FraternalDropout)

    def save_task_hyperparameters(self) -> None:
        """``save_hyperparameters`` without the regularizer objects (stored as specs instead)
        and without data sizes this class does not take (the CLI links every name of
        :data:`LINKED_SIZES`; a model without such an argument gets ``None``, which must not
        reach the checkpoint, or re-loading it through the CLI fails)."""
        self.save_hyperparameters(ignore=["regularizers"], frame=inspect.currentframe().f_back)
        accepted = inspect.signature(type(self).__init__).parameters
        for hparams in (self._hparams, self._hparams_initial):
            for name in LINKED_SIZES:
                if name not in accepted:
                    hparams.pop(name, None)
        self.hparams["regularizers"] = self.regularizer_specs()

    def prediction_terms(
        self,
        logits: Tensor,
        second_pass: Callable[[], Tensor],
        cross_entropy: Callable[[Tensor], Tensor],
        valid: Callable[[Tensor], Tensor] | None = None,
    ) -> dict[str, Tensor]:
        """The cross-entropy term, and with :class:`FraternalDropout` (Zolna et al. 2017) the
        mean of both passes' cross-entropies plus ``kappa * mean((z1 - z2)^2)``.

        ``second_pass()`` recomputes the logits with fresh masks (called only under fraternal
        dropout); ``valid`` selects the positions the penalty counts (default: all).
        """
        fraternal = self.fraternal_dropout
        if fraternal is None:
            return {"ce": cross_entropy(logits)}
        logits2 = second_pass()
        pick = valid if valid is not None else (lambda z: z)
        return {"ce": 0.5 * (cross_entropy(logits) + cross_entropy(logits2)),
                "fraternal": fraternal.penalty(pick(logits), pick(logits2))}

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Log the global 2-norm of the gradients (before clipping) as ``grad_norm``."""
        norms = grad_norm(self, norm_type=2)
        if "grad_2.0_norm_total" in norms:
            self.log("grad_norm", norms["grad_2.0_norm_total"], on_step=True, on_epoch=False)

    # ------------------------------------------------------------- mask randomness
    def on_fit_start(self) -> None:
        """Resume this rank's generator from the checkpoint being resumed, else give each
        rank of a multi-process run its own mask seed (a single process is left alone)."""
        trainer = self.trainer
        states, self._resume_rng = self._resume_rng, None
        if (states is not None and trainer.ckpt_path is not None
                and len(states) == trainer.world_size):
            set_rng_state(states[trainer.global_rank], self.device)
        elif trainer.world_size > 1:
            torch.manual_seed(rank_seed(global_seed(), trainer.global_rank))

    def on_validation_start(self) -> None:
        self._rng_before_eval = get_rng_state(self.device)

    def on_validation_end(self) -> None:
        if self._rng_before_eval is not None:
            set_rng_state(self._rng_before_eval, self.device)
            self._rng_before_eval = None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Save every rank's generator state in ``checkpoint["lrr"]["rng"]`` (collective)."""
        state = self._rng_before_eval or get_rng_state(self.device)
        checkpoint.setdefault("lrr", {})["rng"] = gather_per_rank(self, state)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the generator states for :meth:`on_fit_start` of a resumed fit."""
        self._resume_rng = checkpoint.get("lrr", {}).get("rng")

    def _check_unique(self, *classes: type[Regularizer]) -> None:
        for cls in classes:
            if sum(isinstance(reg, cls) for reg in self.regularizers) > 1:
                raise ValueError(f"{type(self).__name__}: give at most one {cls.__name__}")

    def regularizer_specs(self) -> list[dict[str, Any]]:
        """The regularizers as plain data (stored in the hyperparameters)."""
        return [reg.spec() for reg in self.regularizers]

    def _find(self, cls: type[Regularizer]) -> Any:
        for reg in self.regularizers:
            if isinstance(reg, cls):
                return reg
        return None

    def _at(self, site: str) -> list[Regularizer]:
        return [reg for reg in self.regularizers if reg.site == site]

    @property
    def embedding_dropout(self) -> EmbeddingDropout | None:
        return self._find(EmbeddingDropout)

    @property
    def activation_regularization(self) -> ActivationRegularization | None:
        return self._find(ActivationRegularization)

    @property
    def temporal_activation_regularization(self) -> TemporalActivationRegularization | None:
        return self._find(TemporalActivationRegularization)

    @property
    def fraternal_dropout(self) -> FraternalDropout | None:
        return self._find(FraternalDropout)

    def layer_regularizers(self) -> list[Regularizer]:
        """The regularizers that act inside a recurrent layer (``recurrent``, ``weights``)."""
        return self._at("recurrent") + self._at("weights")

    def embed(self, embedding: nn.Embedding, ids: Tensor) -> Tensor:
        """Look ``ids`` up, with EmbeddingDropout if one was given."""
        edrop = self.embedding_dropout
        return edrop(embedding, ids) if edrop is not None else embedding(ids)

    def _drop(self, site: str, x: Tensor, batch_first: bool) -> Tensor:
        for reg in self._at(site):
            x = reg.drop(x, batch_first)  # type: ignore[attr-defined]
        return x

    def drop_input(self, x: Tensor, batch_first: bool = False) -> Tensor:
        return self._drop("input", x, batch_first)

    def drop_between(self, x: Tensor, batch_first: bool = False) -> Tensor:
        return self._drop("between", x, batch_first)

    def drop_output(self, x: Tensor, batch_first: bool = False) -> Tensor:
        return self._drop("output", x, batch_first)

    def log_regularizer_rates(self) -> None:
        """Log every regularizer's current rates as ``reg/<index>_<Class>/<rate>``."""
        for index, reg in enumerate(self.regularizers):
            for name, value in reg.rates.items():
                self.log(f"reg/{index}_{type(reg).__name__}/{name}", value, on_step=True,
                         on_epoch=False)
