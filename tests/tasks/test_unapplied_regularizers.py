"""Every task refuses, at construction, a regularizer that none of its layers or sites would
apply (it would train without it, silently), naming the regularizer, its site and why; a
regularizer that does act still builds.

A task applies ``EmbeddingDropout`` to its embedding lookup, activation dropouts at ``input``
/ ``output`` and (with two or more layers) ``between``, passes ``recurrent`` / ``weights``
regularizers to its layers (``make_layer``) and adds AR, TAR and fraternal dropout to its loss.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from torch import nn

import lightning_rnn_reg as lrr
from lightning_rnn_reg.regularizers import Regularizer
from lightning_rnn_reg.tasks.base import RecurrentTask

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# ------------------------------------------------------------ regularizers of other sites
class Unsited(Regularizer):
    """A user regularizer that forgot to declare its ``site``."""

    def __init__(self, p: float = 0.1) -> None:
        super().__init__()
        self.p = p


class WordTypeNoise(Regularizer):
    """A user regularizer of the ``embedding`` site that is not EmbeddingDropout."""

    site = "embedding"

    def __init__(self, p: float = 0.1) -> None:
        super().__init__()
        self.p = p


class ActivationNoise(Regularizer):
    """A user regularizer of the ``output`` site without ``drop(x, batch_first)``."""

    site = "output"

    def __init__(self, p: float = 0.1) -> None:
        super().__init__()
        self.p = p


class L2Penalty(Regularizer):
    """A user loss term that the tasks do not compute."""

    site = "loss"
    rate_names: ClassVar[tuple[str, ...]] = ("alpha",)
    rate_upper: ClassVar[float | None] = None

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        self.alpha = alpha


# ------------------------------------------------- subclasses whose layers drop them
class ForgetfulLM(lrr.LanguageModel):
    def make_layer(self, input_size: int, hidden_size: int, regularizers: list) -> nn.Module:
        return lrr.LSTM(input_size, hidden_size)


class ForgetfulTagger(lrr.SequenceTagger):
    def make_layer(self, input_size: int, hidden_size: int, regularizers: list) -> nn.Module:
        return lrr.LSTM(input_size, hidden_size, bidirectional=True, batch_first=True)


class ForgetfulClassifier(lrr.SequenceClassifier):
    def make_layer(self, input_size: int, hidden_size: int, regularizers: list) -> nn.Module:
        return lrr.GRU(input_size, hidden_size, bidirectional=True)


# ------------------------------------------------------------------------ the tasks
def language_model(cls: type = lrr.LanguageModel, **kw: Any) -> RecurrentTask:
    return cls(20, **{"embedding_dim": 4, "hidden_size": 4, "num_layers": 1, **kw})


def tagger(cls: type = lrr.SequenceTagger, **kw: Any) -> RecurrentTask:
    return cls(20, 5, **{"embedding_dim": 4, "hidden_size": 4, "num_layers": 1, **kw})


def classifier(cls: type = lrr.SequenceClassifier, **kw: Any) -> RecurrentTask:
    return cls(20, 3, **{"embedding_dim": 4, "hidden_size": 4, "num_layers": 1, **kw})


TASKS: dict[str, tuple[Callable[..., RecurrentTask], type]] = {
    "LanguageModel": (language_model, ForgetfulLM),
    "SequenceTagger": (tagger, ForgetfulTagger),
    "SequenceClassifier": (classifier, ForgetfulClassifier),
}


class Case:
    """Build the task (``forgetful``: its subclass whose layers drop their regularizers) with
    ``regularizers``; the error must match ``message`` (``{task}``: the task's class name)."""

    def __init__(self, regularizers: Callable[[], list], message: str,
                 forgetful: bool = False) -> None:
        self.regularizers, self.message, self.forgetful = regularizers, message, forgetful


CASES = {
    "dropout_between_with_one_layer": Case(
        lambda: [lrr.Dropout(0.5, at="between")],
        "{task}: Dropout(at='between') acts between recurrent layers, but {task} has "
        "num_layers=1, so it would never act"),
    "locked_dropout_between_with_one_layer": Case(
        lambda: [lrr.LockedDropout(0.3, at="input"), lrr.LockedDropout(0.3, at="between")],
        "{task}: LockedDropout(at='between') acts between recurrent layers, but {task} has "
        "num_layers=1, so it would never act"),
    "regularizer_without_a_site": Case(
        lambda: [{"class_path": f"{__name__}.Unsited", "init_args": {"p": 0.2}}],  # as YAML
        "{task}: Unsited has site '', which is none of ('embedding', 'input', 'between', "
        "'output', 'recurrent', 'weights', 'loss'); no part of {task} would apply it"),
    "embedding_site_other_than_embedding_dropout": Case(
        lambda: [WordTypeNoise(0.1)],
        "{task}: WordTypeNoise acts at site 'embedding', but {task} applies only "
        "EmbeddingDropout to its embedding lookup, so it would never act"),
    "activation_site_without_drop": Case(
        lambda: [ActivationNoise(0.1)],
        "{task}: ActivationNoise acts at site 'output', but {task} applies only activation "
        "dropouts there"),
    "loss_site_term_the_task_does_not_compute": Case(
        lambda: [lrr.ActivationRegularization(1.0), L2Penalty(0.5)],
        "{task}: L2Penalty acts at site 'loss', but {task} adds only ActivationRegularization, "
        "TemporalActivationRegularization, FraternalDropout to its loss, so it would never act"),
    "weights_site_without_a_layer_to_hold_it": Case(
        lambda: [lrr.WeightDrop(0.3)],
        "{task}: WeightDrop acts inside a recurrent layer, but no layer holds it", True),
    "recurrent_site_without_a_layer_to_hold_it": Case(
        lambda: [lrr.RecurrentDropout(0.3)],
        "{task}: RecurrentDropout acts inside a recurrent layer, but no layer holds it", True),
}


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("case", CASES)
def test_task_refuses_a_regularizer_it_would_never_apply(task: str, case: str) -> None:
    build, forgetful = TASKS[task]
    spec = CASES[case]
    kw: dict[str, Any] = {"regularizers": spec.regularizers()}
    if spec.forgetful:
        kw["cls"] = forgetful
    name = forgetful.__name__ if spec.forgetful else task
    with pytest.raises(ValueError, match=re.escape(spec.message.format(task=name))):
        build(**kw)


# ------------------------------------------------------------ what acts still builds
def every_builtin_regularizer() -> list[Regularizer]:
    return [lrr.EmbeddingDropout(0.1), lrr.LockedDropout(0.3, at="input"),
            lrr.Dropout(0.3, at="between"), lrr.LockedDropout(0.3, at="output"),
            lrr.RecurrentDropout(0.2), lrr.Zoneout(hidden=0.1), lrr.WeightDrop(0.3),
            lrr.ActivationRegularization(1.0), lrr.TemporalActivationRegularization(1.0),
            lrr.FraternalDropout(0.1)]


@pytest.mark.parametrize("task", TASKS)
def test_task_with_two_layers_builds_with_every_builtin_regularizer(task: str) -> None:
    model = TASKS[task][0](num_layers=2, regularizers=every_builtin_regularizer())
    assert len(model.regularizers) == len(every_builtin_regularizer())


@pytest.mark.parametrize("task", TASKS)
def test_task_with_one_layer_builds_with_every_regularizer_but_between(task: str) -> None:
    regularizers = [reg for reg in every_builtin_regularizer() if reg.site != "between"]
    model = TASKS[task][0](num_layers=1, regularizers=regularizers)
    assert len(model.regularizers) == len(regularizers)


class PenalizedLM(lrr.LanguageModel):
    """A subclass that adds its own loss term (and says so in ``unapplied_reason``)."""

    def unapplied_reason(self, reg: Regularizer, num_layers: int) -> str | None:
        if isinstance(reg, L2Penalty):
            return None
        return super().unapplied_reason(reg, num_layers)


def test_subclass_that_applies_its_own_loss_term_accepts_it() -> None:
    model = language_model(PenalizedLM, regularizers=[L2Penalty(0.5)])
    assert isinstance(model.regularizers[0], L2Penalty)
