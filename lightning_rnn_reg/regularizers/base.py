"""Regularizer base class: validated, mutable rates and the site where a regularizer acts.

A regularizer is a thin ``nn.Module`` holding its rates (torchmetrics style); the math is in
:mod:`lightning_rnn_reg.functional`. Rates are plain float attributes that may be changed
between steps (the curriculum and schedule callbacks do); every assignment is validated.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, ClassVar

from torch import Tensor, nn

from lightning_rnn_reg.functional import check_rate
from lightning_rnn_reg.loop_masks import LoopMasks
from lightning_rnn_reg.mask_stats import MaskStats
from lightning_rnn_reg.mode import is_stochastic

SITES = ("embedding", "input", "between", "output", "recurrent", "weights", "loss")
ACTIVATION_SITES = ("input", "between", "output")


def _init_arguments(cls: type[Regularizer]) -> list[str]:
    return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]


class Regularizer(nn.Module):
    """Base class of every regularizer.

    Subclasses declare ``rate_names`` (the float attributes that are rates), ``rate_upper``
    (``1.0`` for probabilities in ``[0, 1)``, ``None`` for non-negative strengths) and
    ``site``, one of ``"embedding"``, ``"input"``, ``"between"``, ``"output"``,
    ``"recurrent"``, ``"weights"``, ``"loss"``.

    Example::

        reg = lrr.LockedDropout(0.3)
        reg.p = 0.4          # validated: reg.p = 1.2 raises ValueError
        reg.rates            # {'p': 0.4}
    """

    rate_names: ClassVar[tuple[str, ...]] = ("p",)
    rate_upper: ClassVar[float | None] = 1.0
    site: str = ""
    #: When a :class:`~lightning_rnn_reg.mask_stats.MaskStats`, the masks drawn are counted
    #: into it (``RegularizerMonitor`` sets and clears it); ``None``: no counting.
    mask_stats: MaskStats | None = None

    def __setattr__(self, name: str, value: Any) -> None:
        if name in type(self).rate_names:
            value = check_rate(f"{type(self).__name__}.{name}", value, upper=self.rate_upper)
        super().__setattr__(name, value)

    @property
    def rates(self) -> dict[str, float]:
        """The current rates by name."""
        return {name: getattr(self, name) for name in self.rate_names}

    @property
    def stochastic(self) -> bool:
        """Whether masks are drawn now: train mode, or inside ``mc_dropout()``, and not inside
        ``no_dropout()``."""
        return is_stochastic(self.training)

    def spec(self) -> dict[str, Any]:
        """Plain-data description ``{"class_path": ..., "init_args": {...}}`` (the form
        LightningCLI uses), rebuilt by :meth:`from_spec`; what checkpoints store instead of
        pickled objects."""
        cls = type(self)
        names = _init_arguments(cls)
        return {
            "class_path": f"{cls.__module__}.{cls.__qualname__}",
            "init_args": {name: getattr(self, name) for name in names},
        }

    @staticmethod
    def from_spec(spec: Regularizer | dict[str, Any]) -> Regularizer:
        """Build a regularizer from :meth:`spec` output (objects pass through unchanged).

        Only subclasses of :class:`Regularizer` are built, so a spec read from a file cannot
        construct arbitrary objects."""
        if isinstance(spec, Regularizer):
            return spec
        if not isinstance(spec, dict) or "class_path" not in spec:
            raise TypeError(
                "a regularizer must be a Regularizer object or a dict with 'class_path' "
                f"(and 'init_args'), got {spec!r}"
            )
        path = str(spec["class_path"])
        if "." not in path:
            path = f"lightning_rnn_reg.{path}"
        module_name, _, name = path.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"unknown regularizer class_path {spec['class_path']!r}") from error
        if not (isinstance(cls, type) and issubclass(cls, Regularizer)):
            raise ValueError(f"{spec['class_path']!r} is not a lightning_rnn_reg Regularizer")
        args = dict(spec.get("init_args") or {})
        accepted = _init_arguments(cls)
        unknown = sorted(set(args) - set(accepted))
        if unknown:
            raise TypeError(f"{spec['class_path']}: unknown argument(s) {unknown}; it takes "
                            f"{accepted}")
        return cls(**args)

    def extra_repr(self) -> str:
        parts = [f"{name}={value:g}" for name, value in self.rates.items()]
        parts += [f"{key}={value!r}" for key, value in self._extra_options().items()]
        return ", ".join(parts)

    def _extra_options(self) -> dict[str, object]:
        return {}


class ActivationDropoutBase(Regularizer):
    """Shared constructor of the dropouts that act on activations (``Dropout``,
    ``LockedDropout``): ``at`` chooses the site among ``input``, ``between``, ``output``."""

    def __init__(self, p: float = 0.5, at: str = "input", batch_first: bool = False) -> None:
        super().__init__()
        if at not in ACTIVATION_SITES:
            raise ValueError(
                f"{type(self).__name__}: at must be one of {ACTIVATION_SITES}, got {at!r}"
            )
        self.p = p
        self.at = at
        self.batch_first = batch_first

    @property
    def site(self) -> str:  # type: ignore[override]
        return self.at

    def forward(self, x: Tensor) -> Tensor:
        """Apply to ``x`` of shape ``(T, B, F)`` (``(B, T, F)`` with ``batch_first``)."""
        return self.drop(x, self.batch_first)

    def drop(self, x: Tensor, batch_first: bool) -> Tensor:
        """Apply with an explicit layout (layers call this with their own ``batch_first``)."""
        raise NotImplementedError

    def _extra_options(self) -> dict[str, object]:
        return {"at": self.at}


class RecurrentSiteRegularizer(Regularizer):
    """Base of what acts inside the recurrence (site ``"recurrent"``): the layer runs its
    custom loop for it and asks it for masks, by this contract alone.

    A subclass declares ``cells`` (the cell kinds it can run in, from ``"LSTM"``, ``"GRU"``)
    and ``mask_fields`` (the :class:`~lightning_rnn_reg.loop_masks.LoopMasks` fields it may
    fill: two regularizers of one layer may not share one), and implements
    :meth:`loop_masks`. :meth:`check_cell` refuses a cell it cannot run in, at construction.
    """

    site = "recurrent"
    cells: ClassVar[frozenset[str]] = frozenset({"LSTM", "GRU"})
    #: Why another cell cannot run it (for the error), e.g. "acts on an LSTM cell state; GRU
    #: has none".
    cells_reason: ClassVar[str] = ""
    mask_fields: ClassVar[tuple[str, ...]] = ()

    def is_identity(self) -> bool:
        """True when this regularizer changes nothing now (the fused kernel can run)."""
        raise NotImplementedError

    def loop_masks(self, steps: int, batch: int, hidden: int, like: Tensor,
                   gates: int = 4) -> LoopMasks:
        """The masks for one direction of one layer: ``steps`` x ``batch`` x ``hidden``
        units of a cell with ``gates`` gates (4 LSTM, 3 GRU); ``like``: dtype and device."""
        raise NotImplementedError

    def check_cell(self, cell: str) -> None:
        """Raise ``ValueError`` if this regularizer cannot act in a ``cell`` layer."""
        if cell in self.cells:
            return
        if self.cells_reason:
            raise ValueError(f"{cell}: {type(self).__name__} {self.cells_reason}")
        raise ValueError(f"{cell}: {type(self).__name__} runs in {sorted(self.cells)} layers "
                         f"only, not in {cell}")

    @property
    def eval_is_plain(self) -> bool:
        """True when, at eval, the layer is the plain cell (``nn.LSTM`` can express it)."""
        return True


class WeightsSiteRegularizer(Regularizer):
    """Base of what acts on a layer's weights (site ``"weights"``), e.g. DropConnect.

    A subclass declares ``weights``, the kinds of weight it transforms (``"weight_hh"``,
    ``"weight_ih"``: every ``weight_hh_l*`` / ``weight_ih_l*`` of the layer), and implements
    ``forward(weight) -> weight'`` (a new tensor; the parameter stays the layer's). The layer
    swaps the result in on either path; one weight kind takes one such regularizer.
    """

    site = "weights"
    weights: ClassVar[tuple[str, ...]] = ("weight_hh",)

    def is_identity(self) -> bool:
        """True when the weight passes unchanged now."""
        raise NotImplementedError
