"""Rate schedules: ``rate(t, final)``, a regularizer's rate at optimizer step ``t``.

``final`` is the rate the regularizer was built with. Every named schedule moves from
``start`` to ``end`` along a progress ``s(t)`` that rises from 0 to 1::

    rate(t) = start + (end - start) * s(t)

* ``constant``: ``rate(t) = value`` (default ``value = final``: no schedule);
* ``linear``: ``s(t) = min(t / steps, 1)``, default ``0 -> final`` (linear warm-up);
* ``step``: ``s(t) = #{m in milestones : m <= t} / len(milestones)``, default ``0 -> final``;
* ``cosine``: ``s(t) = (1 - cos(pi * min(t / steps, 1))) / 2``, default ``0 -> final``;
* ``curriculum``: ``s(t) = 1 - exp(-gamma * t)``, default ``0 -> final`` (Morerio 2017);
* ``annealed``: ``s(t) = 1 - exp(-gamma * t)``, default ``final -> 0`` (the reverse).

With the defaults, ``curriculum`` is Morerio et al. 2017's curriculum dropout,
``p(t) = final * (1 - exp(-gamma * t))``, i.e. the retain probability
``theta(t) = (1 - theta_bar) * exp(-gamma * t) + theta_bar`` with ``theta_bar = 1 - final``;
``annealed`` is ``p(t) = final * exp(-gamma * t)``, the annealed-dropout baseline of their
code (``theta(t) = 1 - (1 - theta_bar) * exp(-gamma * t)``). ``start`` / ``end`` / ``value``
take a number or ``"final"``. Any callable ``f(t: int, final: float) -> float`` is a
schedule too.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lightning_rnn_reg.functional import check_rate

FINAL = "final"

Endpoint = float | str
ScheduleFn = Callable[[int, float], float]


def _endpoint(value: Endpoint, final: float) -> float:
    return final if value == FINAL else float(value)


def _check_endpoint(name: str, value: Endpoint) -> None:
    if isinstance(value, str):
        if value != FINAL:
            raise ValueError(f"{name} must be a number or {FINAL!r}, got {value!r}")
    else:
        check_rate(name, value, upper=None)


def _check_positive(name: str, value: float) -> None:
    if check_rate(name, value, upper=None) == 0.0:
        raise ValueError(f"{name} must be > 0, got {value!r}")


class Schedule:
    """Base of the named schedules: ``rate(t) = start + (end - start) * s(t)``."""

    start: Endpoint = 0.0
    end: Endpoint = FINAL

    def __post_init__(self) -> None:
        _check_endpoint(f"{type(self).__name__}.start", self.start)
        _check_endpoint(f"{type(self).__name__}.end", self.end)

    def progress(self, step: int) -> float:
        """``s(t)`` in ``[0, 1]``."""
        raise NotImplementedError

    def __call__(self, step: int, final: float) -> float:
        start, end = _endpoint(self.start, final), _endpoint(self.end, final)
        return start + (end - start) * self.progress(step)


@dataclass(frozen=True)
class Constant(Schedule):
    """``rate(t) = value`` (``"final"``: the built rate, i.e. no schedule)."""

    value: Endpoint = FINAL

    def __post_init__(self) -> None:
        _check_endpoint("Constant.value", self.value)

    def __call__(self, step: int, final: float) -> float:
        return _endpoint(self.value, final)


@dataclass(frozen=True)
class Linear(Schedule):
    """Linear warm-up: ``s(t) = min(t / steps, 1)``."""

    steps: int
    start: Endpoint = 0.0
    end: Endpoint = FINAL

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive(f"{type(self).__name__}.steps", self.steps)

    def progress(self, step: int) -> float:
        return min(step / self.steps, 1.0)


@dataclass(frozen=True)
class Cosine(Linear):
    """Half-cosine from ``start`` to ``end``: ``s(t) = (1 - cos(pi * min(t / steps, 1))) / 2``
    (``start="final", end=0`` is cosine annealing, Loshchilov & Hutter 2017)."""

    def progress(self, step: int) -> float:
        return 0.5 * (1.0 - math.cos(math.pi * super().progress(step)))


@dataclass(frozen=True)
class Step(Schedule):
    """Staircase: ``s(t) = #{m in milestones : m <= t} / len(milestones)``, so the rate jumps
    by ``(end - start) / n`` at each milestone (one milestone: a single jump)."""

    milestones: tuple[int, ...]
    start: Endpoint = 0.0
    end: Endpoint = FINAL

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "milestones", tuple(self.milestones))
        if not self.milestones or any(
                isinstance(m, bool) or not isinstance(m, int) or m < 0 for m in self.milestones):
            raise ValueError(f"Step.milestones must be non-negative ints, got {self.milestones}")
        if list(self.milestones) != sorted(self.milestones):
            raise ValueError(f"Step.milestones must be increasing, got {self.milestones}")

    def progress(self, step: int) -> float:
        return sum(m <= step for m in self.milestones) / len(self.milestones)


@dataclass(frozen=True)
class Curriculum(Schedule):
    """Curriculum dropout, Morerio et al. 2017: ``s(t) = 1 - exp(-gamma * t)``, ``0 -> final``:
    ``p(t) = final * (1 - exp(-gamma * t))``."""

    gamma: float
    start: Endpoint = 0.0
    end: Endpoint = FINAL

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive("gamma", self.gamma)

    def progress(self, step: int) -> float:
        return 1.0 - math.exp(-self.gamma * step)


@dataclass(frozen=True)
class Annealed(Curriculum):
    """Annealed dropout, the reverse of :class:`Curriculum` (Morerio et al. 2017's baseline):
    ``final -> 0``, ``p(t) = final * exp(-gamma * t)``."""

    start: Endpoint = FINAL
    end: Endpoint = 0.0


SCHEDULES: dict[str, type[Schedule]] = {
    "constant": Constant,
    "linear": Linear,
    "step": Step,
    "cosine": Cosine,
    "curriculum": Curriculum,
    "annealed": Annealed,
}


def make_schedule(schedule: str | ScheduleFn, **options: Any) -> ScheduleFn:
    """The schedule named ``schedule`` built from the ``options`` given (``None`` values count
    as not given), or a callable passed through (it takes no options)."""
    given = {key: value for key, value in options.items() if value is not None}
    if callable(schedule):
        if given:
            raise ValueError(f"a callable schedule takes no options, got {sorted(given)}")
        return schedule
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {sorted(SCHEDULES)} "
                         "or pass a callable f(step, final) -> rate")
    cls = SCHEDULES[schedule]
    accepted = set(inspect.signature(cls).parameters)
    unknown = sorted(set(given) - accepted)
    if unknown:
        raise ValueError(f"schedule {schedule!r} takes {sorted(accepted)}, not {unknown}")
    missing = sorted(name for name, param in inspect.signature(cls).parameters.items()
                     if param.default is inspect.Parameter.empty and name not in given)
    if missing:
        raise ValueError(f"schedule {schedule!r} needs {missing}")
    return cls(**given)
