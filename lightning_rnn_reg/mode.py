"""Stochastic mode: whether dropout masks are drawn, independently of train/eval mode.

By default a regularizer is stochastic exactly when its module is in training mode. Two
context managers override that for everything that runs inside them:

* ``mc_dropout()`` keeps masks on in eval mode, for Monte-Carlo evaluation
  (Gal & Ghahramani 2016: average the predicted probabilities over K masked passes);
* ``no_dropout()`` turns every mask off in train mode while gradients still flow (for
  example to measure the deterministic training loss, or for the eval pass of ELD).

Both nest: the innermost one wins, and leaving it restores the outer setting. The state is
a ``contextvars.ContextVar``, so it is per thread and per asyncio task, never module-global.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Literal

_Mode = Literal["default", "mc", "off"]
_MODE: contextvars.ContextVar[_Mode] = contextvars.ContextVar(
    "lrr_stochastic_mode", default="default"
)


def is_stochastic(training: bool) -> bool:
    """Whether a regularizer whose module has ``training`` should draw masks now."""
    mode = _MODE.get()
    if mode == "mc":
        return True
    if mode == "off":
        return False
    return training


def stochastic_mode() -> _Mode:
    """The current override: ``"default"``, ``"mc"`` (masks forced on) or ``"off"``."""
    return _MODE.get()


@contextlib.contextmanager
def _override(mode: _Mode) -> Iterator[None]:
    token = _MODE.set(mode)
    try:
        yield
    finally:
        _MODE.reset(token)


def mc_dropout() -> contextlib.AbstractContextManager[None]:
    """Keep every regularizer stochastic, also in eval mode (Monte-Carlo dropout).

    Example::

        model.eval()
        with lrr.mc_dropout():
            probs = torch.stack([model(x).softmax(-1) for _ in range(10)]).mean(0)
    """
    return _override("mc")


def no_dropout() -> contextlib.AbstractContextManager[None]:
    """Draw no mask anywhere, also in train mode; gradients flow as usual.

    Under ``no_dropout()`` every regularizer uses its test-time rule (identity for the
    dropouts, the expectation for zoneout).

    Example::

        model.train()
        with lrr.no_dropout():
            loss = criterion(model(x), y)   # deterministic, differentiable
    """
    return _override("off")
