"""Regularizer rates of a run: which tags are rates, a readable label for each, and which
never changed.

The rate tags name a regularizer by its place in the task's list, ``<index>_<Class>``: the
task's ``reg/<index>_<Class>/<rate>`` (``RecurrentTask.log_regularizer_rates``) and
:class:`~lightning_rnn_reg.callbacks.RegularizerMonitor`'s ``<prefix>/rate/<name>/<rate>``
(a regularizer outside the task's list is named by its module path there). The tag does not
say where an activation dropout acts; the run's ``hparams.yaml`` does (the task stores its
regularizers there, in the same order), else LightningCLI's ``config.yaml``
(``model.init_args.regularizers``). So ``reg/1_LockedDropout/p`` reads
``LockedDropout(at=input)``, ``reg/4_WeightDrop/p`` reads ``WeightDrop``; without either
file the label is the class name, with ``[<index>]`` where the run has two of the class.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from lightning_rnn_reg.report.events import Run, ScalarSeries

_INDEXED = re.compile(r"^(\d+)_(\w+)$")


def rate_tags(run: Run) -> dict[str, str]:
    """``{"<regularizer>/<rate>": tag}`` of the run's regularizer rates: the task's
    ``reg/<index>_<Class>/<rate>`` tags, else the monitor's ``<prefix>/rate/<name>/<rate>``
    tags (``<regularizer>`` is ``<index>_<Class>`` or a module path, as logged)."""
    task = {tag[len("reg/"):]: tag for tag in run.scalars
            if tag.startswith("reg/") and tag.count("/") == 2}
    if task:
        return task
    return {"/".join(parts[2:]): tag for tag in run.scalars
            if len(parts := tag.split("/")) == 4 and parts[1] == "rate"}


def _specs(run: Run) -> list[Any]:
    """The run's regularizer specs (``class_path`` / ``init_args``), in the task's order."""
    specs = run.hparams.get("regularizers")
    if not isinstance(specs, list):
        model = run.config.get("model")
        init_args = model.get("init_args") if isinstance(model, dict) else None
        specs = init_args.get("regularizers") if isinstance(init_args, dict) else None
    return specs if isinstance(specs, list) else []


def _site_label(spec: Any, cls: str) -> str | None:
    """``Class(at=<site>)`` or ``Class`` from a spec of class ``cls``; ``None`` if ``spec``
    is not one of ``cls``."""
    if not isinstance(spec, dict) or str(spec.get("class_path", "")).rsplit(".", 1)[-1] != cls:
        return None
    init_args = spec.get("init_args")
    at = init_args.get("at") if isinstance(init_args, dict) else None
    return f"{cls}(at={at})" if at else cls


def regularizer_labels(run: Run, names: Sequence[str]) -> dict[str, str]:
    """A readable label for each regularizer name of the rate tags (``1_LockedDropout`` ->
    ``LockedDropout(at=input)``, see the module docstring); labels stay distinct (``[<index>]``
    is added where two would be equal) and a module path is kept as it is."""
    specs = _specs(run)
    parsed = {name: match.groups() for name in names if (match := _INDEXED.match(name))}
    classes = [cls for _, cls in parsed.values()]
    labels: dict[str, str] = {}
    for name in names:
        if name not in parsed:
            labels[name] = name
            continue
        index, cls = parsed[name]
        spec = specs[int(index)] if int(index) < len(specs) else None
        found = _site_label(spec, cls)
        labels[name] = found or (cls if classes.count(cls) == 1 else f"{cls}[{index}]")
    values = list(labels.values())
    return {name: label if values.count(label) == 1 or name not in parsed
            else f"{label}[{parsed[name][0]}]" for name, label in labels.items()}


def rate_labels(run: Run) -> dict[str, tuple[str, str]]:
    """``{tag: (regularizer label, rate name)}`` of the run's rate tags (:func:`rate_tags`),
    e.g. ``{"reg/1_LockedDropout/p": ("LockedDropout(at=input)", "p")}``."""
    tags = rate_tags(run)
    split = {tag: key.rsplit("/", 1) for key, tag in tags.items()}
    labels = regularizer_labels(run, list(dict.fromkeys(name for name, _ in split.values())))
    return {tag: (labels[name], rate) for tag, (name, rate) in split.items()}


def is_constant(series: ScalarSeries) -> bool:
    """Whether every value of ``series`` equals the first (to float precision): a rate that
    no schedule moved."""
    first = series.values[0]
    return all(math.isclose(value, first, rel_tol=1e-6, abs_tol=1e-12)
               for value in series.values)
