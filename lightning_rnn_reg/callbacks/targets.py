"""Naming and selecting the regularizers of a module, for the callbacks.

Names: a task's own list ``module.regularizers`` gives ``"<index>_<Class>"`` (the names of
the ``reg/<index>_<Class>/<rate>`` tags that ``RecurrentTask.log_regularizer_rates`` writes);
any other :class:`~lightning_rnn_reg.Regularizer` inside the module is named by its module
path (``"rnn.regularizers.0"``). A regularizer shared by a task and its layers is one entry.

A target selects regularizers: a class (``lrr.Zoneout``; subclasses match), or a string that
is a name above, a module path, a class name in the regularizer's class hierarchy
(``"LockedDropout"``, ``"RecurrentRegularizer"``) or a dotted class path
(``"lightning_rnn_reg.Zoneout"``). ``"<target>:<rate>"`` selects one rate only
(``"Zoneout:cell"``); otherwise every rate in ``rate_names`` is selected.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from torch import nn

from lightning_rnn_reg.regularizers.base import Regularizer

Target = str | type[Regularizer]
Selection = dict[str, tuple[Regularizer, tuple[str, ...]]]


def named_regularizers(module: nn.Module) -> dict[str, Regularizer]:
    """Every regularizer in ``module`` by name (see the module docstring), in a stable order."""
    names: dict[str, Regularizer] = {}
    listed = getattr(module, "regularizers", None)
    if isinstance(listed, nn.ModuleList):
        for index, reg in enumerate(listed):
            if isinstance(reg, Regularizer):
                names[f"{index}_{type(reg).__name__}"] = reg
    seen = {id(reg) for reg in names.values()}
    for path, sub in module.named_modules():
        if isinstance(sub, Regularizer) and id(sub) not in seen:
            names[path] = sub
            seen.add(id(sub))
    return names


def select_regularizers(module: nn.Module, targets: Sequence[Target] | Target | None
                        ) -> Selection:
    """``{name: (regularizer, rate names)}`` for the ``targets`` (``None``: all, every rate).

    Raises ``ValueError`` naming a target that matches no regularizer (or no rate), and when
    ``module`` holds no regularizer at all."""
    named = named_regularizers(module)
    if not named:
        raise ValueError(f"{type(module).__name__} holds no lightning_rnn_reg Regularizer to "
                         "schedule or monitor")
    if targets is None:
        return {name: (reg, reg.rate_names) for name, reg in named.items()}
    if isinstance(targets, (str, type)):
        targets = [targets]
    paths = {id(sub): path for path, sub in module.named_modules()}
    selection: dict[str, list[str]] = {}
    for target in targets:
        selector, rate = _split(target)
        matched = [name for name, reg in named.items()
                   if _matches(selector, name, paths.get(id(reg), ""), reg)]
        if rate is not None:
            matched = [name for name in matched if rate in named[name].rate_names]
        if not matched:
            raise ValueError(f"target {target!r} matches no regularizer{_of_rate(rate)} of "
                             f"{type(module).__name__}; its regularizers: {sorted(named)}")
        for name in matched:
            rates = selection.setdefault(name, [])
            for rate_name in (rate,) if rate is not None else named[name].rate_names:
                if rate_name not in rates:
                    rates.append(rate_name)
    return {name: (named[name], tuple(rates)) for name, rates in selection.items()}


def _split(target: Target) -> tuple[Target, str | None]:
    if isinstance(target, str) and ":" in target:
        selector, rate = target.rsplit(":", 1)
        return selector, rate
    if not isinstance(target, (str, type)):
        raise TypeError(f"a target is a Regularizer class or a string, got {target!r}")
    return target, None


def _matches(selector: Target, name: str, path: str, reg: Regularizer) -> bool:
    if isinstance(selector, type):
        return isinstance(reg, selector)
    classes = (cls.__name__ for cls in type(reg).__mro__ if issubclass(cls, Regularizer))
    if selector in (name, path) or selector in classes:
        return True
    cls = _import_class(selector)
    return cls is not None and isinstance(reg, cls)


def _import_class(path: str) -> type | None:
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        return None
    try:
        cls = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError):
        return None
    return cls if isinstance(cls, type) and issubclass(cls, Regularizer) else None


def _of_rate(rate: str | None) -> str:
    return "" if rate is None else f" with a rate {rate!r}"
