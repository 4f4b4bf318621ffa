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
import os
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from types import FrameType
from typing import IO, Any, cast

import lightning as L
import torch
from lightning.pytorch.utilities import grad_norm
from torch import Tensor, nn

from lightning_rnn_reg.callbacks.nonfinite import NonFiniteGuard
from lightning_rnn_reg.data.vocab import Vocabulary
from lightning_rnn_reg.regularizers import (
    ActivationRegularization,
    EmbeddingDropout,
    FraternalDropout,
    Regularizer,
    TemporalActivationRegularization,
)
from lightning_rnn_reg.regularizers.base import ACTIVATION_SITES, SITES, ActivationDropoutBase
from lightning_rnn_reg.tasks.checkpoint import TASK_KEY, check_task, read_checkpoint, task_name
from lightning_rnn_reg.tasks.rank_state import (
    gather_per_rank,
    get_rng_state,
    global_seed,
    rank_seed,
    set_rng_state,
)

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


class RecurrentTask(L.LightningModule):
    """Base LightningModule: holds the regularizers, applies the activation sites, logs rates.

    Subclasses build their layers with :meth:`layer_regularizers` and call
    :meth:`drop_input`, :meth:`drop_between`, :meth:`drop_output` and :meth:`embed` along
    their forward pass; their constructor ends with :meth:`check_regularizers_apply`, which
    refuses a regularizer that no layer or site of the task would apply.

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

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls,
        checkpoint_path: str | os.PathLike | IO[bytes],
        map_location: Any = None,
        hparams_file: str | os.PathLike | None = None,
        strict: bool | None = None,
        weights_only: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Lightning's ``load_from_checkpoint``, reading plain data only
        (``torch.load(weights_only=True)``, so an untrusted file cannot run code) and first
        checking the file: a missing file is ``FileNotFoundError``; a corrupted or truncated
        file, one that is not a checkpoint, one with pickled objects, or a checkpoint of
        another task class is :class:`~lightning_rnn_reg.tasks.checkpoint.CheckpointError`.

        Example::

            model = lrr.LanguageModel.load_from_checkpoint("lm.ckpt", map_location="cpu")
        """
        if weights_only:
            position = checkpoint_path.tell() if hasattr(checkpoint_path, "tell") else None
            check_task(read_checkpoint(checkpoint_path, map_location="cpu"), cls,
                       checkpoint_path)
            if position is not None:  # it has tell(): a file object
                cast(IO[bytes], checkpoint_path).seek(position)
        # Lightning annotates paths as str | Path, but takes any os.PathLike (it opens them
        # with fsspec / torch.load)
        return super().load_from_checkpoint(
            checkpoint_path, map_location, hparams_file,  # type: ignore[arg-type]
            strict, weights_only=weights_only, **kwargs)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record the task class (by name) that saved the checkpoint, and every rank's mask
        generator state in ``checkpoint["lrr"]["rng"]`` (a collective call under DDP)."""
        checkpoint[TASK_KEY] = task_name(type(self))
        state = self._rng_before_eval or get_rng_state(self.device)
        checkpoint.setdefault("lrr", {})["rng"] = gather_per_rank(self, state)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse a checkpoint of another task class (e.g. ``Trainer.test(ckpt_path=...)`` of
        a tagger's checkpoint with a language model); keep the generator states for
        :meth:`on_fit_start` of a resumed fit."""
        check_task(checkpoint, type(self))
        self._resume_rng = checkpoint.get("lrr", {}).get("rng")

    def check_data_vocabulary(self, held: dict[str, Any] | None, data: Any = None) -> None:
        """Raise ``ValueError`` if the vocabulary (``vocab``) of ``data`` (default: the
        trainer's data module) differs from ``held``, the :meth:`Vocabulary.to_state` of the
        model's: ids would mean other tokens. Nothing to check if either is missing."""
        if data is None:
            data = self._datamodule()
        vocab = getattr(data, "vocab", None)
        if held is None or not isinstance(vocab, Vocabulary):
            return
        if Vocabulary.from_state(held) != vocab:
            raise ValueError(f"{type(self).__name__}: the data's vocabulary differs from the "
                             "model's (it was trained on other data or with other vocabulary "
                             "options); ids would mean other tokens")

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

    def configure_callbacks(self) -> list[L.Callback]:
        """A :class:`~lightning_rnn_reg.callbacks.NonFiniteGuard` (nan/inf steps skipped,
        training stopped after 10 in a row) unless the Trainer already has one."""
        trainer = self._trainer
        # Trainer.callbacks is set at run time (CallbackConnector), not declared
        callbacks = trainer.callbacks if trainer is not None else []  # type: ignore[attr-defined]
        if trainer is not None and any(isinstance(cb, NonFiniteGuard) for cb in callbacks):
            return []
        return [NonFiniteGuard()]

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
