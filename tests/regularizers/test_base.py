"""The Regularizer contract shared by every class: validated rates, ``rates``, ``site``, specs.

The classes and their rates come from the registry (``harness.py``): every concrete
regularizer is checked, and a new one is checked without being listed here.
"""

from __future__ import annotations

import inspect
import math
import re

import pytest
from harness import CASES, covered

from lightning_rnn_reg.regularizers import (
    Dropout,
    EmbeddingDropout,
    LockedDropout,
    RecurrentDropout,
    Regularizer,
    TemporalActivationRegularization,
    UpdateDropout,
    WeightDrop,
    Zoneout,
)
from lightning_rnn_reg.regularizers.base import SITES

CLASSES = covered()
RATES = [(cls, name) for cls in CLASSES for name in cls.rate_names]
PROBABILITIES = [(cls, name) for cls, name in RATES if cls.rate_upper is not None]
STRENGTHS = [(cls, name) for cls, name in RATES if cls.rate_upper is None]


def _ids(case):
    if isinstance(case, type):
        return case.__name__
    cls, name = case
    return f"{cls.__name__}.{name}"


def _bad_rates(cls: type[Regularizer]) -> list[float]:
    """Below 0, at the upper bound (``inf`` for strengths), above it, and NaN."""
    upper = cls.rate_upper if cls.rate_upper is not None else math.inf
    return [-0.1, upper, upper + 0.5, float("nan")]


def _named(cls: type[Regularizer], name: str) -> str:
    return re.escape(f"{cls.__name__}.{name}")


@pytest.mark.parametrize("cls", CLASSES, ids=_ids)
def test_every_rate_is_a_constructor_argument(cls):
    # so spec() / from_spec and YAML configs can set it
    assert cls.rate_names
    assert set(cls.rate_names) <= set(inspect.signature(cls).parameters)


@pytest.mark.parametrize("case", RATES, ids=_ids)
def test_out_of_range_rate_rejected_at_construction_naming_it(case):
    cls, name = case
    for bad in _bad_rates(cls):
        with pytest.raises(ValueError, match=_named(cls, name)):
            cls(**{name: bad})


@pytest.mark.parametrize("case", RATES, ids=_ids)
def test_out_of_range_rate_rejected_on_assignment_naming_it(case):
    cls, name = case
    reg = CASES[cls.__name__].build(0.2)
    for bad in _bad_rates(cls):
        with pytest.raises(ValueError, match=_named(cls, name)):
            setattr(reg, name, bad)


@pytest.mark.parametrize("case", PROBABILITIES, ids=_ids)
def test_probability_message_states_the_range(case):
    cls, name = case
    with pytest.raises(ValueError, match=rf"{name} must be in \[0, 1\)"):
        cls(**{name: 1.0})


@pytest.mark.parametrize("case", STRENGTHS, ids=_ids)
def test_strength_message_states_the_range(case):
    cls, name = case
    with pytest.raises(ValueError, match=rf"{name} must be a finite number >= 0"):
        cls(**{name: -0.1})


@pytest.mark.parametrize("case", RATES, ids=_ids)
def test_zero_rate_accepted_at_construction_and_on_assignment(case):
    cls, name = case
    assert cls(**{name: 0}).rates[name] == 0.0
    reg = CASES[cls.__name__].build(0.2)
    setattr(reg, name, 0)
    assert isinstance(getattr(reg, name), float) and getattr(reg, name) == 0.0


@pytest.mark.parametrize("case", RATES, ids=_ids)
def test_failed_assignment_keeps_previous_rate(case):
    cls, name = case
    reg = CASES[cls.__name__].build(0.2)
    with pytest.raises(ValueError):
        setattr(reg, name, -2.0)
    assert getattr(reg, name) == 0.2


@pytest.mark.parametrize("case", RATES, ids=_ids)
@pytest.mark.parametrize("bad", ["0.5", True])
def test_non_numeric_rate_raises_type_error(case, bad):
    cls, name = case
    with pytest.raises(TypeError, match=name):
        cls(**{name: bad})


@pytest.mark.parametrize("case", RATES, ids=_ids)
def test_valid_rate_assignment_is_stored_as_float(case):
    cls, name = case
    reg = CASES[cls.__name__].build(0.2)
    setattr(reg, name, 0.45)
    assert reg.rates[name] == 0.45


@pytest.mark.parametrize("case", STRENGTHS, ids=_ids)
@pytest.mark.parametrize("good", [0.5, 1.0, 7, 1e6])
def test_strength_accepts_any_finite_non_negative(case, good):
    cls, name = case
    assert getattr(cls(**{name: good}), name) == float(good)


@pytest.mark.parametrize("cls", CLASSES, ids=_ids)
def test_harness_build_sets_every_rate(cls):
    reg = CASES[cls.__name__].build(0.3)
    assert type(reg) is cls
    assert reg.rates == dict.fromkeys(cls.rate_names, 0.3)


@pytest.mark.parametrize("cls", CLASSES, ids=_ids)
def test_site_is_one_of_the_design_sites_and_the_expected_one(cls):
    site = CASES[cls.__name__].build(0.3).site
    assert site in SITES
    assert site == CASES[cls.__name__].site


@pytest.mark.parametrize(("cls", "at"), [(Dropout, "between"), (LockedDropout, "output")])
def test_activation_dropout_site_follows_at(cls, at):
    assert cls(0.3, at=at).site == at


@pytest.mark.parametrize("cls", [Dropout, LockedDropout])
@pytest.mark.parametrize("at", ["embedding", "recurrent", "loss", "Input", ""])
def test_activation_dropout_rejects_site_outside_input_between_output(cls, at):
    with pytest.raises(ValueError, match="at must be one of"):
        cls(0.3, at=at)


@pytest.mark.parametrize("cls", CLASSES, ids=_ids)
def test_spec_round_trip_rebuilds_equal_regularizer(cls):
    reg = CASES[cls.__name__].build(0.3)
    rebuilt = Regularizer.from_spec(reg.spec())
    assert type(rebuilt) is type(reg)
    assert rebuilt.spec() == reg.spec()


@pytest.mark.parametrize(
    "reg",
    [
        Dropout(0.3, at="between", batch_first=True),
        LockedDropout(0.4, at="output"),
        EmbeddingDropout(0.1, batch_first=True),
        RecurrentDropout(0.25, per_sequence=False),
        UpdateDropout(0.15, per_sequence=True),
        WeightDrop(0.5, variational=True),
        Zoneout(cell=0.5, hidden=0.05, per_sequence=True),
        TemporalActivationRegularization(1.0, batch_first=True),
    ],
    ids=lambda v: type(v).__name__,
)
def test_spec_round_trip_keeps_non_default_options(reg):
    assert Regularizer.from_spec(reg.spec()).spec() == reg.spec()


def test_from_spec_passes_objects_through():
    reg = LockedDropout(0.3)
    assert Regularizer.from_spec(reg) is reg


def test_from_spec_accepts_short_class_path():
    reg = Regularizer.from_spec({"class_path": "LockedDropout", "init_args": {"p": 0.3}})
    assert isinstance(reg, LockedDropout)
    assert reg.p == 0.3


def test_from_spec_validates_rates():
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        Regularizer.from_spec({"class_path": "LockedDropout", "init_args": {"p": 1.2}})


@pytest.mark.parametrize("path", ["torch.nn.Linear", "os.system", "NoSuchRegularizer"])
def test_from_spec_refuses_non_regularizer_classes(path):
    with pytest.raises(ValueError, match=r"[Rr]egularizer"):
        Regularizer.from_spec({"class_path": path, "init_args": {}})


def test_from_spec_rejects_malformed_spec():
    with pytest.raises(TypeError, match="class_path"):
        Regularizer.from_spec({"init_args": {"p": 0.3}})


def test_extra_repr_shows_rates_and_options():
    assert repr(LockedDropout(0.3, at="between")) == "LockedDropout(p=0.3, at='between')"
