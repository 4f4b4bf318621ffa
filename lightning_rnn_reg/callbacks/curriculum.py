"""Curriculum dropout (Morerio et al. 2017, "Curriculum Dropout", ICCV): start without dropout
and raise it to the usual rate over training.

The retain probability follows ``theta(t) = (1 - theta_bar) * exp(-gamma * t) + theta_bar``,
``t`` the iteration (optimizer step), so ``theta(0) = 1`` and ``theta -> theta_bar``. With
``p = 1 - theta`` every scheduled rate is

    p(t) = p_final * (1 - exp(-gamma * t)),

``p_final`` the rate the regularizer was built with. The paper gives no rule for ``gamma``;
:func:`curriculum_gamma` picks the ``gamma`` that reaches a share ``reach`` of ``p_final``
after ``N`` steps: ``1 - exp(-gamma * N) = reach``, i.e. ``gamma = -ln(1 - reach) / N``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lightning_rnn_reg.callbacks.rate_schedule import RateSchedule
from lightning_rnn_reg.callbacks.schedules import Curriculum
from lightning_rnn_reg.callbacks.targets import Target


def curriculum_gamma(steps: int | None = None, *, fraction: float | None = None,
                     total_steps: int | None = None, reach: float = 0.99) -> float:
    """``gamma`` such that ``p(N) = reach * p_final``: ``gamma = -ln(1 - reach) / N``.

    ``N`` is ``steps``, or ``fraction * total_steps`` (a share of training, e.g.
    ``fraction=0.1, total_steps=trainer.estimated_stepping_batches``).

    Example::

        gamma = curriculum_gamma(steps=5000)                         # 99 % after 5000 steps
        gamma = curriculum_gamma(fraction=0.25, total_steps=40_000)  # ... after 10000 steps
    """
    if not 0.0 < reach < 1.0:
        raise ValueError(f"reach must be in (0, 1), got {reach}")
    if (steps is None) == (fraction is None):
        raise ValueError("give either steps, or fraction and total_steps")
    span: float | None = steps
    if fraction is not None:
        if total_steps is None or total_steps <= 0 or not 0.0 < fraction <= 1.0:
            raise ValueError("fraction must be in (0, 1] and total_steps a positive number, got "
                             f"fraction={fraction}, total_steps={total_steps}")
        span = fraction * total_steps
    if span is None or span <= 0:
        raise ValueError(f"steps must be positive, got {span}")
    return -math.log1p(-reach) / span


class CurriculumDropout(RateSchedule):
    """Curriculum dropout, Morerio et al. 2017: ``p(t) = p_final * (1 - exp(-gamma * t))``.

    ``t`` is the optimizer step; ``p_final`` each targeted rate as built (all rates of every
    regularizer of the module by default; ``targets`` selects by class, name or
    ``"<target>:<rate>"``, see :class:`RateSchedule`). Rates are set before every training
    batch; validation and test run the module's eval semantics with the final rates; the
    finals are saved with the callback state for an exact resume. Choose ``gamma`` with
    :func:`curriculum_gamma` (the paper's released MNIST config uses ``gamma = 0.001`` per
    iteration: 99 % of the final rate after ``ln(100) / 0.001 = 4605`` iterations).

    Example::

        gamma = curriculum_gamma(fraction=6 / 39, total_steps=39 * 1328)  # PTB, 39 epochs
        model = lrr.LanguageModel(10000, regularizers=[lrr.Dropout(0.5, at="output")])
        trainer = L.Trainer(max_epochs=39, callbacks=[CurriculumDropout(gamma)])
        trainer.fit(model, datamodule=PennTreebank(batch_size=20, bptt=35))
    """

    def __init__(self, gamma: float, targets: Sequence[Target] | Target | None = None) -> None:
        super().__init__(Curriculum(gamma), targets)
        self.gamma = gamma
