"""The Regularizer contract shared by every class: validated rates, ``rates``, ``site``, specs."""

from __future__ import annotations

import pytest

from lightning_rnn_reg.regularizers import (
    ActivationRegularization,
    CellDropout,
    Dropout,
    EmbeddingDropout,
    FraternalDropout,
    LockedDropout,
    RecurrentDropout,
    Regularizer,
    TemporalActivationRegularization,
    UpdateDropout,
    WeightDrop,
    Zoneout,
)

PROBABILITIES = [
    (Dropout, "p"),
    (LockedDropout, "p"),
    (EmbeddingDropout, "p"),
    (RecurrentDropout, "p"),
    (CellDropout, "p"),
    (UpdateDropout, "p"),
    (WeightDrop, "p"),
    (Zoneout, "cell"),
    (Zoneout, "hidden"),
]
STRENGTHS = [
    (ActivationRegularization, "alpha"),
    (TemporalActivationRegularization, "beta"),
    (FraternalDropout, "kappa"),
]
BAD_PROBABILITIES = [-0.1, 1.0, 1.5, float("nan")]


def _ids(case):
    cls, name = case
    return f"{cls.__name__}.{name}"


@pytest.mark.parametrize("case", PROBABILITIES, ids=_ids)
@pytest.mark.parametrize("bad", BAD_PROBABILITIES)
def test_out_of_range_probability_rejected_at_construction(case, bad):
    cls, name = case
    with pytest.raises(ValueError, match=rf"{name} must be in \[0, 1\)"):
        cls(**{name: bad})


@pytest.mark.parametrize("case", PROBABILITIES, ids=_ids)
@pytest.mark.parametrize("bad", BAD_PROBABILITIES)
def test_out_of_range_probability_rejected_on_assignment(case, bad):
    cls, name = case
    reg = cls(**{name: 0.2})
    with pytest.raises(ValueError, match=rf"{name} must be in \[0, 1\)"):
        setattr(reg, name, bad)


@pytest.mark.parametrize("case", PROBABILITIES, ids=_ids)
def test_failed_assignment_keeps_previous_rate(case):
    cls, name = case
    reg = cls(**{name: 0.2})
    with pytest.raises(ValueError):
        setattr(reg, name, 2.0)
    assert getattr(reg, name) == 0.2


@pytest.mark.parametrize("case", PROBABILITIES + STRENGTHS, ids=_ids)
@pytest.mark.parametrize("bad", ["0.5", True])
def test_non_numeric_rate_raises_type_error(case, bad):
    cls, name = case
    with pytest.raises(TypeError, match=name):
        cls(**{name: bad})


@pytest.mark.parametrize("case", PROBABILITIES, ids=_ids)
def test_valid_probability_assignment_is_stored_as_float(case):
    cls, name = case
    reg = cls(**{name: 0.2})
    setattr(reg, name, 0)
    assert isinstance(getattr(reg, name), float)
    setattr(reg, name, 0.45)
    assert reg.rates[name] == 0.45


@pytest.mark.parametrize("case", STRENGTHS, ids=_ids)
@pytest.mark.parametrize("good", [0, 0.5, 1.0, 7, 1e6])
def test_strength_accepts_any_finite_non_negative(case, good):
    cls, name = case
    reg = cls(**{name: good})
    assert getattr(reg, name) == float(good)


@pytest.mark.parametrize("case", STRENGTHS, ids=_ids)
@pytest.mark.parametrize("bad", [-0.1, float("inf"), float("nan")])
def test_strength_rejects_negative_and_non_finite(case, bad):
    cls, name = case
    with pytest.raises(ValueError, match=rf"{name} must be a finite number >= 0"):
        cls(**{name: bad})
    reg = cls(**{name: 1.0})
    with pytest.raises(ValueError, match=name):
        setattr(reg, name, bad)


@pytest.mark.parametrize(
    ("reg", "expected"),
    [
        (Dropout(0.3), {"p": 0.3}),
        (LockedDropout(0.4), {"p": 0.4}),
        (EmbeddingDropout(0.1), {"p": 0.1}),
        (RecurrentDropout(0.25), {"p": 0.25}),
        (CellDropout(0.2), {"p": 0.2}),
        (UpdateDropout(0.15), {"p": 0.15}),
        (WeightDrop(0.5), {"p": 0.5}),
        (Zoneout(cell=0.5, hidden=0.05), {"cell": 0.5, "hidden": 0.05}),
        (ActivationRegularization(2.0), {"alpha": 2.0}),
        (TemporalActivationRegularization(1.0), {"beta": 1.0}),
        (FraternalDropout(0.1), {"kappa": 0.1}),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Regularizer) else "",
)
def test_rates_property_lists_rates_by_name(reg, expected):
    assert reg.rates == expected


@pytest.mark.parametrize(
    ("reg", "site"),
    [
        (Dropout(0.3), "input"),
        (LockedDropout(0.3), "input"),
        (Dropout(0.3, at="between"), "between"),
        (LockedDropout(0.3, at="output"), "output"),
        (EmbeddingDropout(0.1), "embedding"),
        (RecurrentDropout(0.25), "recurrent"),
        (CellDropout(0.25), "recurrent"),
        (UpdateDropout(0.25), "recurrent"),
        (Zoneout(cell=0.1), "recurrent"),
        (WeightDrop(0.5), "weights"),
        (ActivationRegularization(2.0), "loss"),
        (TemporalActivationRegularization(1.0), "loss"),
        (FraternalDropout(0.1), "loss"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Regularizer) else v,
)
def test_site_matches_design(reg, site):
    assert reg.site == site


@pytest.mark.parametrize("cls", [Dropout, LockedDropout])
@pytest.mark.parametrize("at", ["embedding", "recurrent", "loss", "Input", ""])
def test_activation_dropout_rejects_site_outside_input_between_output(cls, at):
    with pytest.raises(ValueError, match="at must be one of"):
        cls(0.3, at=at)


@pytest.mark.parametrize(
    "reg",
    [
        Dropout(0.3, at="between", batch_first=True),
        LockedDropout(0.4, at="output"),
        EmbeddingDropout(0.1, batch_first=True),
        RecurrentDropout(0.25, per_sequence=False),
        CellDropout(0.2),
        UpdateDropout(0.15, per_sequence=True),
        WeightDrop(0.5, variational=True),
        Zoneout(cell=0.5, hidden=0.05, per_sequence=True),
        ActivationRegularization(2.0),
        TemporalActivationRegularization(1.0, batch_first=True),
        FraternalDropout(0.1),
    ],
    ids=lambda v: type(v).__name__,
)
def test_spec_round_trip_rebuilds_equal_regularizer(reg):
    rebuilt = Regularizer.from_spec(reg.spec())
    assert type(rebuilt) is type(reg)
    assert rebuilt.spec() == reg.spec()


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
