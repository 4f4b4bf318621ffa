"""Training twins of validation metrics, their value per epoch, and the generalisation gap.

*Twin*: the training tag that measures what a ``val/`` tag measures. For ``val/<name>`` it is
``train/<name>`` (``train/ppl``, ``train/bpc``, ``train/acc``); for ``val/loss`` it is
``train/ce``, the cross-entropy, because ``train/loss`` is the training objective, the
cross-entropy plus the penalty terms (``train/ar``, ``train/tar``, ``train/fraternal``) that
``val/loss`` does not hold (``train/loss`` stands in where a run logged no ``train/ce``).
Where a run logged no twin (``val/f1`` of the tagger) there is none: nothing is derived.
Lightning names a tag logged both per step and per epoch ``<tag>_step`` and ``<tag>_epoch``;
either form is found.

*Per epoch* (epochs 1-based, as :meth:`~lightning_rnn_reg.report.events.Run.epochs`): a
training tag's ``<tag>_epoch`` where logged (Lightning's mean over every batch), else the
mean of the training steps logged during the epoch (every ``log_every_n_steps``; the
geometric mean for a perplexity, i.e. ``exp`` of the mean cross-entropy of those steps); a
validation tag's last value of the epoch (the one after the epoch's training).

*Gap*: validation minus training, per epoch where both exist. It is measured with the
regularizers active on the training batches and off on the validation set, so it can be
negative early on; for a loss it grows with overfitting, for an F1 or accuracy it falls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from lightning_rnn_reg.report.events import Run

#: the training loss terms that are not the cross-entropy (``train/<term>``)
PENALTY_TERMS = ("ar", "tar", "fraternal")


def find_tag(run: Run, tag: str) -> str | None:
    """``tag`` as the run logged it: ``tag``, else Lightning's ``<tag>_step``, else ``None``."""
    for candidate in (tag, f"{tag}_step"):
        if candidate in run.scalars:
            return candidate
    return None


def train_twin(run: Run, val_tag: str) -> str | None:
    """The training tag logged by ``run`` that measures what ``val_tag`` measures (see the
    module docstring); ``None`` for a tag not under ``val/`` or without a twin."""
    if not val_tag.startswith("val/"):
        return None
    name = val_tag[len("val/"):]
    if name == "loss":
        return find_tag(run, "train/ce") or find_tag(run, "train/loss")
    return find_tag(run, f"train/{name}")


def objective_tag(run: Run, twin: str | None) -> str | None:
    """``train/loss`` where it differs from the twin ``train/ce`` (the run logged a penalty
    term, so the objective is more than the cross-entropy), else ``None``."""
    if twin is None or _base(twin) != "train/ce":
        return None
    if not any(find_tag(run, f"train/{term}") for term in PENALTY_TERMS):
        return None
    return find_tag(run, "train/loss")


def penalty_tags(run: Run) -> list[str]:
    """The penalty terms (``train/ar`` ...) the run logged."""
    return [f"train/{term}" for term in PENALTY_TERMS if find_tag(run, f"train/{term}")]


def _base(tag: str) -> str:
    return tag[: -len("_step")] if tag.endswith("_step") else tag


def _mean(values: Sequence[float], geometric: bool) -> float:
    if geometric and all(value > 0 for value in values):
        return math.exp(sum(math.log(value) for value in values) / len(values))
    return sum(values) / len(values)


@dataclass(frozen=True)
class EpochSeries:
    """A tag's value per epoch: ``epochs`` (1-based), ``values``, and how each was made."""

    epochs: tuple[int, ...]
    values: tuple[float, ...]
    how: str


def train_per_epoch(run: Run, tag: str) -> EpochSeries | None:
    """The training tag ``tag`` (as logged, e.g. ``train/ce`` or ``train/ce_step``) per epoch
    (see the module docstring); ``None`` without an ``epoch`` scalar."""
    base = _base(tag)
    epoch_tag = f"{base}_epoch"
    if epoch_tag in run.scalars and run.epochs(epoch_tag):
        return EpochSeries(tuple(run.epochs(epoch_tag)), run.scalars[epoch_tag].values,
                           epoch_tag)
    epochs = run.epochs(tag)
    if not epochs:
        return None
    geometric = base.rsplit("/", 1)[-1] == "ppl"
    grouped: dict[int, list[float]] = {}
    for epoch, value in zip(epochs, run.scalars[tag].values, strict=True):
        grouped.setdefault(epoch, []).append(value)
    how = "geometric mean of the epoch's logged steps" if geometric else (
        "mean of the epoch's logged steps")
    return EpochSeries(tuple(grouped), tuple(_mean(v, geometric) for v in grouped.values()),
                       how)


def val_per_epoch(run: Run, tag: str) -> EpochSeries | None:
    """The validation tag ``tag`` per epoch: the last value of each epoch; ``None`` without an
    ``epoch`` scalar."""
    epochs = run.epochs(tag)
    if not epochs:
        return None
    last = dict(zip(epochs, run.scalars[tag].values, strict=True))
    return EpochSeries(tuple(last), tuple(last.values()), "last value of the epoch")


def gap_per_epoch(run: Run, val_tag: str, train_tag: str) -> EpochSeries | None:
    """``val_tag - train_tag`` per epoch (:func:`val_per_epoch` minus
    :func:`train_per_epoch`) on the epochs where both exist; ``None`` where there is none."""
    val = val_per_epoch(run, val_tag)
    train = train_per_epoch(run, train_tag)
    if val is None or train is None:
        return None
    trained = dict(zip(train.epochs, train.values, strict=True))
    epochs = tuple(epoch for epoch in val.epochs if epoch in trained)
    if not epochs:
        return None
    validated = dict(zip(val.epochs, val.values, strict=True))
    return EpochSeries(epochs, tuple(validated[e] - trained[e] for e in epochs),
                       f"{val_tag} - {_base(train_tag)}")
