"""RecurrentTask: the regularizer plumbing every task module shares.

Regularizers arrive as one list (objects, or ``class_path`` dicts from YAML) and are sorted by
site along the flow of DESIGN.md section 1::

    embedding (+EmbeddingDropout) -> input dropouts -> recurrent layers (recurrent-site and
    WeightDrop) -> between-layer dropouts -> output dropouts -> head -> loss (+AR, TAR,
    fraternal)

Hyperparameters store the regularizers as plain ``class_path`` specs, so a checkpoint holds
no pickled objects and ``load_from_checkpoint`` rebuilds them; it reads with
``weights_only=True`` and refuses a checkpoint of another task (:mod:`.checkpoint`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from types import FrameType
from typing import Any, cast

import lightning as L
import torch
from lightning.pytorch.utilities import grad_norm
from torch import Tensor, nn

from lightning_rnn_reg.callbacks.nonfinite import NonFiniteGuard
from lightning_rnn_reg.callbacks.variable_bptt import ScaleLRByWindow
from lightning_rnn_reg.regularizers import (
    ActivationRegularization,
    EmbeddingDropout,
    FraternalDropout,
    Regularizer,
    TemporalActivationRegularization,
)
from lightning_rnn_reg.regularizers.base import ACTIVATION_SITES, SITES, ActivationDropoutBase
from lightning_rnn_reg.tasks.checkpoint import SafeCheckpoint
from lightning_rnn_reg.tasks.eval_weights import EvalWeights
from lightning_rnn_reg.tasks.optim import make_optimizer, with_schedule
from lightning_rnn_reg.tasks.rank_state import RankRNG

RegularizerArg = Regularizer | dict[str, Any]

#: The regularizers a task adds to its loss itself (site ``loss``).
LOSS_TERMS: tuple[type[Regularizer], ...] = (
    ActivationRegularization, TemporalActivationRegularization, FraternalDropout)

#: Data-module attributes the CLI passes to the model argument of the same name.
LINKED_SIZES = ("vocab_size", "num_tags", "num_classes", "char_vocab_size")


def constructor_names(cls: type) -> set[str] | None:
    """Argument names ``cls(...)`` takes, following ``**kwargs`` up to the base class that
    names them (a subclass written ``__init__(self, *args, **kwargs)`` takes its parent's);
    ``None`` if no class in the chain names them."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is object or "__init__" not in vars(klass):
            continue
        params = inspect.signature(vars(klass)["__init__"]).parameters.values()
        names |= {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return names
    return None


class RecurrentTask(SafeCheckpoint, RankRNG, EvalWeights):
    """Base LightningModule: holds the regularizers, applies the activation sites, logs rates.

    Subclasses build their layers with :meth:`layer_regularizers` and call
    :meth:`drop_input`, :meth:`drop_between`, :meth:`drop_output` and :meth:`embed` along
    their forward pass; their constructor ends with :meth:`check_regularizers_apply`, which
    refuses a regularizer that no layer or site of the task would apply. They implement
    :meth:`eval_step` (validation and test).

    Mixed in: safe checkpoints (:class:`~lightning_rnn_reg.tasks.checkpoint.SafeCheckpoint`),
    per-rank mask randomness (:class:`~lightning_rnn_reg.tasks.rank_state.RankRNG`: each rank
    of a multi-process fit draws its own masks; evaluation leaves the generator as it found
    it; checkpoints carry every rank's generator state) and evaluation weights
    (:class:`~lightning_rnn_reg.tasks.eval_weights.EvalWeights`). Subclasses that override
    their hooks call ``super()``.

    Args:
        regularizers: regularizer objects (or ``class_path`` specs).
        nonfinite_guard: attach a :class:`~lightning_rnn_reg.callbacks.NonFiniteGuard` to
            every fit (unless the Trainer has one); ``False``: none.
    """

    def __init__(self, regularizers: Sequence[RegularizerArg] | None = None,
                 nonfinite_guard: bool = True) -> None:
        super().__init__()
        regs = [Regularizer.from_spec(reg) for reg in (regularizers or [])]
        self.regularizers = nn.ModuleList(regs)
        self.nonfinite_guard = bool(nonfinite_guard)
        self._check_unique(EmbeddingDropout, ActivationRegularization,
                           TemporalActivationRegularization, FraternalDropout)

    def save_task_hyperparameters(self) -> None:
        """``save_hyperparameters`` without the regularizer objects (stored as specs instead)
        and without data sizes this class does not take (the CLI links every name of
        :data:`LINKED_SIZES`; a model without such an argument gets ``None``, which must not
        reach the checkpoint, or re-loading it through the CLI fails)."""
        # CPython always has frames (currentframe() is None only on other implementations)
        self.save_hyperparameters(ignore=["regularizers"],
                                  frame=cast(FrameType, inspect.currentframe()).f_back)
        accepted = constructor_names(type(self))
        # save_hyperparameters sets _hparams_initial (an AttributeDict); Lightning does not
        # declare it, so it would type as nn.Module.__getattr__'s Tensor | Module
        initial = cast("MutableMapping[str, Any]", self._hparams_initial)
        for hparams in (self._hparams, initial):
            for name in LINKED_SIZES:
                if hparams.get(name) is None or (accepted is not None and name not in accepted):
                    hparams.pop(name, None)
            # the loggers' hparams.yaml is written from the initial ones: say how it was
            # regularized (class and rates), as in the checkpoint
            hparams["regularizers"] = self.regularizer_specs()

    def check_sizes(self, **sizes: int) -> None:
        """Raise ``ValueError`` ``"<Task>: <name> must be >= 1, got <value>"`` for the first
        size below 1."""
        for name, value in sizes.items():
            if value < 1:
                raise ValueError(f"{type(self).__name__}: {name} must be >= 1, got {value}")

    def init_weights(self, init_range: float | None, embedding: nn.Embedding,
                     output: nn.Linear) -> None:
        """Every weight ``U(-init_range, init_range)``; without ``init_range``, the embedding
        ``U(-0.1, 0.1)`` and the output bias zero (the rest keeps PyTorch's init)."""
        if init_range is not None:
            for weight in self.parameters():
                nn.init.uniform_(weight, -init_range, init_range)
            return
        nn.init.uniform_(embedding.weight, -0.1, 0.1)
        nn.init.zeros_(output.bias)

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

    # ----------------------------------------------------------------- steps and logs
    @staticmethod
    def batch_fields(batch: Any, names: Sequence[str], required: int) -> tuple[Any, ...]:
        """The fields ``names`` of a batch: a dict (by key), an object with those attributes
        (a NamedTuple batch) or a sequence (by position); the fields after the first
        ``required`` may be missing (``None``)."""
        if isinstance(batch, dict):
            return tuple(batch[n] if i < required else batch.get(n) for i, n in enumerate(names))
        if hasattr(batch, names[0]):
            return tuple(getattr(batch, n) if i < required else getattr(batch, n, None)
                         for i, n in enumerate(names))
        return tuple(batch[i] if i < required or len(batch) > i else None
                     for i in range(len(names)))

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self.eval_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self.eval_step(batch, "test")

    def eval_step(self, batch: Any, split: str) -> Tensor:
        """One validation (``split="val"``) or test (``"test"``) batch: log its metrics and
        return its loss."""
        raise NotImplementedError(f"{type(self).__name__} must implement eval_step")

    def log_training(self, loss: Tensor, terms: dict[str, Tensor],
                     batch_size: int | None = None) -> None:
        """Log a training step: ``train/loss`` and ``train/<term>``, the learning rate
        (:meth:`log_lr`) and the regularizer rates (:meth:`log_regularizer_rates`)."""
        self.log("train/loss", loss, prog_bar=True, batch_size=batch_size)
        for name, value in terms.items():
            self.log(f"train/{name}", value, batch_size=batch_size)
        self.log_lr()
        self.log_regularizer_rates()

    def log_lr(self) -> None:
        """Log the first parameter group's learning rate as ``lr``: the base rate, not the one
        a :class:`~lightning_rnn_reg.callbacks.ScaleLRByWindow` scaled for this step."""
        optimizers = self.optimizers()
        first = optimizers[0] if isinstance(optimizers, list) else optimizers
        optimizer = cast(torch.optim.Optimizer, getattr(first, "optimizer", first))
        lr = float(optimizer.param_groups[0]["lr"])
        for callback in self.trainer.callbacks:  # type: ignore[attr-defined]
            if isinstance(callback, ScaleLRByWindow) and callback.base_lr() is not None:
                lr = cast(float, callback.base_lr())
        self.log("lr", lr, on_step=True, on_epoch=False)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Log the global 2-norm of the gradients (before clipping) as ``grad_norm``."""
        norms = grad_norm(self, norm_type=2)
        if "grad_2.0_norm_total" in norms:
            self.log("grad_norm", norms["grad_2.0_norm_total"], on_step=True, on_epoch=False)

    # --------------------------------------------------------------------- optimizers
    #: What the ``"plateau"`` schedule watches, and whether lower (``"min"``) is better.
    plateau_monitor: tuple[str, str] = ("val/loss", "min")

    def optimizer_name(self) -> str:
        """The :func:`~lightning_rnn_reg.tasks.optim.make_optimizer` name to build."""
        return str(self.hparams["optimizer"])

    def configure_optimizers(self) -> Any:
        """The ``optimizer`` and ``lr_schedule`` of the hyperparameters
        (:mod:`lightning_rnn_reg.tasks.optim`)."""
        hp = self.hparams
        optimizer = make_optimizer(self.parameters(), self.optimizer_name(), hp["lr"],
                                   hp["momentum"], hp["weight_decay"])
        return with_schedule(optimizer, hp["lr_schedule"], hp["lr_decay"], hp["lr_decay_start"],
                             *self.plateau_monitor)

    # ----------------------------------------------------------------------- the data
    def setup(self, stage: str) -> None:
        """Check that every layer regularizer (``recurrent``, ``weights`` site) is held by a
        layer: a :meth:`make_layer` override that drops its ``regularizers`` would otherwise
        train without them, silently (checked at construction too, by
        :meth:`check_regularizers_apply`; again here for layers replaced after it)."""
        held = self._held()
        for reg in self.layer_regularizers():
            if id(reg) not in held:
                raise ValueError(f"{type(self).__name__}: {self._unheld_reason(reg)}")

    # ------------------------------------------------------- regularizers that never act
    def check_regularizers_apply(self, num_layers: int) -> None:
        """Raise ``ValueError`` for the first regularizer this task would never apply (see
        :meth:`unapplied_reason`). Each task calls it at the end of its constructor, once
        its ``num_layers`` recurrent layers are built."""
        for reg in self._regs():
            reason = self.unapplied_reason(reg, num_layers)
            if reason is not None:
                raise ValueError(f"{type(self).__name__}: {reason}")

    def unapplied_reason(self, reg: Regularizer, num_layers: int) -> str | None:
        """Why ``reg`` would never act in this task (``None``: it acts somewhere).

        The task applies ``EmbeddingDropout`` at the embedding, activation dropouts at
        ``input`` / ``output`` and, with two or more layers, ``between``; it passes the
        ``recurrent`` / ``weights`` regularizers to its layers (:meth:`make_layer`), and adds
        the :data:`LOSS_TERMS` to its loss. A subclass that applies another regularizer in
        an override (e.g. its own loss term in ``compute_loss``) extends this method to
        return ``None`` for it.
        """
        name, site, task = _describe(reg), reg.site, type(self).__name__
        if site not in SITES:
            return (f"{name} has site {site!r}, which is none of {SITES}; no part of {task} "
                    "would apply it")
        if site == "between" and num_layers < 2:
            return (f"{name} acts between recurrent layers, but {task} has "
                    f"num_layers={num_layers}, so it would never act (it needs num_layers >= "
                    "2; use at='input' or at='output' with one layer)")
        if site == "embedding" and not isinstance(reg, EmbeddingDropout):
            return (f"{name} acts at site 'embedding', but {task} applies only "
                    "EmbeddingDropout to its embedding lookup, so it would never act")
        if site in ACTIVATION_SITES and not callable(getattr(reg, "drop", None)):
            return (f"{name} acts at site {site!r}, but {task} applies only activation "
                    "dropouts there (Dropout, LockedDropout: a drop(x, batch_first) method), "
                    "so it would never act")
        if site == "loss" and not isinstance(reg, LOSS_TERMS):
            terms = ", ".join(cls.__name__ for cls in LOSS_TERMS)
            return (f"{name} acts at site 'loss', but {task} adds only {terms} to its loss, "
                    "so it would never act")
        if site in ("recurrent", "weights") and id(reg) not in self._held():
            return self._unheld_reason(reg)
        return None

    def _held(self) -> set[int]:
        """The ``id`` of every module held by a submodule of this task other than its
        ``regularizers`` list (the layer regularizers passed to a recurrent layer are)."""
        return {id(child) for name, module in self.named_modules() if module is not self
                and not name.startswith("regularizers") for child in module.children()}

    def _unheld_reason(self, reg: Regularizer) -> str:
        return (f"{type(reg).__name__} acts inside a recurrent layer, but no layer holds it: "
                "make_layer must pass its regularizers to the layer (e.g. lrr.LSTM(..., "
                "regularizers=regularizers)), or it would never act")

    def _datamodule(self) -> Any:
        return getattr(self._trainer, "datamodule", None)

    def data_adopts_checkpoint(self, checkpoint: dict[str, Any]) -> bool:
        """Whether the trainer's data module restores its own state (vocabularies included)
        from ``checkpoint`` right after the model (Lightning does so for a data module of the
        class that saved it), so its vocabulary need not be checked against the model's."""
        datamodule = self._datamodule()
        return datamodule is not None and type(datamodule).__qualname__ in checkpoint

    def default_callbacks(self) -> list[L.Callback]:
        """The callbacks every fit of this task gets (:meth:`configure_callbacks`): a
        :class:`~lightning_rnn_reg.callbacks.NonFiniteGuard` (nan/inf steps skipped, training
        stopped after 10 in a row) unless built with ``nonfinite_guard=False``. Subclasses
        extend the list."""
        return [NonFiniteGuard()] if self.nonfinite_guard else []

    def configure_callbacks(self) -> list[L.Callback]:
        """:meth:`default_callbacks`, less those of a type the Trainer already has (Lightning
        would replace the Trainer's by the model's)."""
        trainer = self._trainer
        # Trainer.callbacks is set at run time (CallbackConnector), not declared
        present = trainer.callbacks if trainer is not None else []  # type: ignore[attr-defined]
        return [callback for callback in self.default_callbacks()
                if not any(isinstance(other, type(callback)) for other in present)]

    def _regs(self) -> Iterable[Regularizer]:
        # nn.ModuleList iterates as Module; it holds only Regularizer.from_spec results.
        return cast("Iterable[Regularizer]", self.regularizers)

    def _check_unique(self, *classes: type[Regularizer]) -> None:
        for cls in classes:
            if sum(isinstance(reg, cls) for reg in self._regs()) > 1:
                raise ValueError(f"{type(self).__name__}: give at most one {cls.__name__}")

    def regularizer_specs(self) -> list[dict[str, Any]]:
        """The regularizers as plain data (stored in the hyperparameters)."""
        return [reg.spec() for reg in self._regs()]

    def _find(self, cls: type[Regularizer]) -> Any:
        for reg in self._regs():
            if isinstance(reg, cls):
                return reg
        return None

    def _at(self, site: str) -> list[Regularizer]:
        return [reg for reg in self._regs() if reg.site == site]

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
            # only activation dropouts act at 'input' / 'between' / 'output'
            x = cast(ActivationDropoutBase, reg).drop(x, batch_first)
        return x

    def drop_input(self, x: Tensor, batch_first: bool = False) -> Tensor:
        return self._drop("input", x, batch_first)

    def drop_between(self, x: Tensor, batch_first: bool = False) -> Tensor:
        return self._drop("between", x, batch_first)

    def drop_output(self, x: Tensor, batch_first: bool = False) -> Tensor:
        return self._drop("output", x, batch_first)

    def log_regularizer_rates(self) -> None:
        """Log every regularizer's current rates as ``reg/<index>_<Class>/<rate>``."""
        for index, reg in enumerate(self._regs()):
            for name, value in reg.rates.items():
                self.log(f"reg/{index}_{type(reg).__name__}/{name}", value, on_step=True,
                         on_epoch=False)


def _describe(reg: Regularizer) -> str:
    """``Dropout(at='between')`` for an activation dropout, else the class name: how an error
    names a regularizer."""
    name = type(reg).__name__
    return f"{name}(at={reg.at!r})" if isinstance(reg, ActivationDropoutBase) else name
