"""RateSchedule: any regularizer rate on any schedule, set before every training batch.

At the start of every training batch the callback sets each targeted rate ``r`` of each
targeted regularizer to ``schedule(t, r_final)``, ``t`` the optimizer step
(``trainer.global_step``) and ``r_final`` the rate the regularizer held when the callback
first saw it (fit start). The finals are part of the callback's checkpoint state, so a
resumed fit continues the schedule exactly (``t`` comes back with the trainer's state).

Outside training batches the module holds its final rates again: validation (sanity check
included), test and prediction use the module's own eval semantics with the rates it was
built with (for zoneout the eval rule ``c_t = z * c_{t-1} + (1 - z) * c~_t`` uses the final
``z``), and after fit the module equals one rebuilt from its checkpoint's hyperparameters.
The schedule is a pure function of ``t`` and the finals, so every DDP rank sets the same rates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning as L
from typing_extensions import override

from lightning_rnn_reg.callbacks.schedules import Endpoint, ScheduleFn, make_schedule
from lightning_rnn_reg.callbacks.targets import Selection, Target, select_regularizers

Finals = dict[str, dict[str, float]]


class RateSchedule(L.Callback):
    """Schedule regularizer rates over optimizer steps: ``rate(t) = schedule(t, final)``.

    Args:
        schedule: a name of :mod:`~lightning_rnn_reg.callbacks.schedules` (``"constant"``,
            ``"linear"``, ``"step"``, ``"cosine"``, ``"curriculum"``, ``"annealed"``), built
            from the keyword options below, or a callable ``f(t, final) -> rate``.
        targets: which regularizers (and rates) to schedule: classes, names, class names or
            ``"<target>:<rate>"`` (see :mod:`~lightning_rnn_reg.callbacks.targets`); ``None``:
            every regularizer of the module, every rate. A target that matches nothing is a
            ``ValueError`` at fit start.
        start: the rate the named schedules start from (a number or ``"final"``).
        end: the rate they end at (a number or ``"final"``).
        steps: length of ``linear`` / ``cosine`` in optimizer steps.
        gamma: rate of ``curriculum`` / ``annealed`` per optimizer step.
        milestones: optimizer steps at which ``step`` jumps.
        value: the rate of ``constant``.

    Every rate is assigned as a float and validated by its regularizer (an out-of-range
    value raises ``ValueError``). Two schedules may not target the same rate.

    Example::

        # raise zoneout on the cells from 0 to its built rate over 5000 steps, cosine-shaped
        trainer = L.Trainer(callbacks=[lrr.callbacks.RateSchedule(
            "cosine", targets="Zoneout:cell", steps=5000)])
    """

    def __init__(
        self,
        schedule: str | ScheduleFn = "constant",
        targets: Sequence[Target] | Target | None = None,
        *,
        start: Endpoint | None = None,
        end: Endpoint | None = None,
        steps: int | None = None,
        gamma: float | None = None,
        milestones: list[int] | None = None,
        value: Endpoint | None = None,
    ) -> None:
        self.schedule = make_schedule(schedule, start=start, end=end, steps=steps, gamma=gamma,
                                      milestones=milestones, value=value)
        self.targets = (None if targets is None else [targets]
                        if isinstance(targets, (str, type)) else list(targets))
        self._finals: Finals = {}
        self._selection: Selection = {}

    @property
    @override
    def state_key(self) -> str:
        schedule = getattr(self.schedule, "__qualname__", None) or repr(self.schedule)
        targets = None if self.targets is None else [
            getattr(target, "__qualname__", target) for target in self.targets]
        return self._generate_state_key(schedule=schedule, targets=targets)

    @property
    def finals(self) -> Finals:
        """The final (built) rates by regularizer name and rate name."""
        return {name: dict(rates) for name, rates in self._finals.items()}

    def rates_at(self, step: int | None) -> Finals:
        """The scheduled rates at optimizer step ``step`` (``None``: the finals), for the
        regularizers selected at fit start."""
        return {name: {rate: self._rate(step, self._finals[name][rate]) for rate in rates}
                for name, (_, rates) in self._selection.items()}

    def _rate(self, step: int | None, final: float) -> float:
        return final if step is None else float(self.schedule(step, final))

    # ------------------------------------------------------------------------------ hooks
    @override
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        selection = select_regularizers(pl_module, self.targets)
        self._check_no_overlap(trainer, pl_module, selection)
        for name, (reg, rates) in selection.items():
            finals = self._finals.setdefault(name, {})
            for rate in rates:
                finals.setdefault(rate, getattr(reg, rate))
        self._selection = selection

    @override
    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule,
                             batch: Any, batch_idx: int) -> None:
        self._assign(self.rates_at(trainer.global_step), trainer.global_step)

    @override
    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    @override
    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule,
                     exception: BaseException) -> None:
        self._restore()

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"finals": self.finals}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for name, rates in state_dict.get("finals", {}).items():
            self._finals.setdefault(name, {}).update(rates)

    # ---------------------------------------------------------------------------- helpers
    def _restore(self) -> None:
        self._assign(self.rates_at(None), None)

    def _assign(self, rates: Finals, step: int | None) -> None:
        for name, values in rates.items():
            reg = self._selection[name][0]
            for rate, value in values.items():
                try:
                    setattr(reg, rate, value)
                except ValueError as error:
                    when = "" if step is None else f" at step {step}"
                    raise ValueError(f"{type(self).__name__}{when}: {name}.{rate}: {error}"
                                     ) from error

    def _check_no_overlap(self, trainer: L.Trainer, pl_module: L.LightningModule,
                          selection: Selection) -> None:
        mine = {(id(reg), rate) for reg, rates in selection.values() for rate in rates}
        for other in trainer.callbacks:  # type: ignore[attr-defined]
            if other is self or not isinstance(other, RateSchedule):
                continue
            for name, (reg, rates) in select_regularizers(pl_module, other.targets).items():
                for rate in rates:
                    if (id(reg), rate) in mine:
                        raise ValueError(f"two rate schedules target {name}:{rate}; give each "
                                         "rate at most one schedule")
