"""Mask statistics: the fraction of units that the masks actually drawn dropped (or zoned out).

Every Bernoulli draw of the library goes through one helper of
:mod:`lightning_rnn_reg.functional`, which reports the drawn ``[u < p]`` to the
:class:`MaskStats` active in the current context, if any. A regularizer whose ``mask_stats``
attribute holds a :class:`MaskStats` (the ``RegularizerMonitor`` sets one for the steps it
logs, and removes it afterwards) makes it active while it draws, so the counts land on the
regularizer that drew them::

    dropped fraction at rate p = (units with u < p in the masks drawn at p) / (units drawn at p)

For dropout masks that is the fraction of units dropped, for zoneout the fraction of units
that kept their previous value. Off (the default) it costs one attribute read per call.
The state is a ``contextvars.ContextVar``, like the stochastic mode of ``mode.py``.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from torch import Tensor

_ACTIVE: contextvars.ContextVar[MaskStats | None] = contextvars.ContextVar(
    "lrr_mask_stats", default=None
)

F = TypeVar("F", bound=Callable[..., Any])


class MaskStats:
    """Counts of drawn and dropped units, by the rate the mask was drawn with.

    Example::

        reg.mask_stats = MaskStats()
        y = reg(x)
        reg.mask_stats.fraction(reg.p)    # measured fraction dropped, close to p
        reg.mask_stats = None             # recording off again
    """

    def __init__(self) -> None:
        self._counts: dict[float, tuple[Tensor | int, int]] = {}

    def add(self, p: float, dropped: Tensor) -> None:
        """Count one mask: ``dropped`` is ``[u < p]`` (bool or 0/1), drawn at rate ``p``."""
        count, total = self._counts.get(p, (0, 0))
        self._counts[p] = (count + dropped.sum(), total + dropped.numel())

    def fraction(self, p: float) -> float | None:
        """Fraction of units drawn at rate ``p`` that were dropped; ``None`` if none was drawn."""
        count, total = self._counts.get(p, (0, 0))
        return float(count) / total if total else None

    def rates(self) -> list[float]:
        """The rates at which masks were drawn."""
        return list(self._counts)


def record(p: float, dropped: Tensor) -> None:
    """Report a drawn mask ``[u < p]`` to the active :class:`MaskStats` (no-op when none)."""
    stats = _ACTIVE.get()
    if stats is not None:
        stats.add(p, dropped)


def records_masks(method: F) -> F:
    """Decorator for a regularizer method that draws masks: while it runs, the regularizer's
    ``mask_stats`` (when not ``None``) receives every draw."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        stats = self.mask_stats
        if stats is None:
            return method(self, *args, **kwargs)
        token = _ACTIVE.set(stats)
        try:
            return method(self, *args, **kwargs)
        finally:
            _ACTIVE.reset(token)

    return cast(F, wrapper)  # functools.wraps keeps the signature
