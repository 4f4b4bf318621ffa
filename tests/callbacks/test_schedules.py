"""Schedules: each named kind equals its formula; options are checked; the gamma helper."""

from __future__ import annotations

import math

import pytest

from lightning_rnn_reg.callbacks import (
    SCHEDULES,
    Annealed,
    Constant,
    Cosine,
    Curriculum,
    CurriculumDropout,
    Linear,
    Step,
    curriculum_gamma,
    make_schedule,
)

STEPS = [0, 1, 2, 3, 7, 10, 25, 100, 10_000]
FINAL = 0.4


def _expected(kind: str, t: int) -> float:
    """The formulas, written out independently of the implementation."""
    return {
        "constant": FINAL,
        "linear": FINAL * min(t / 10, 1.0),
        "step": FINAL * sum(m <= t for m in (3, 10)) / 2,
        "cosine": FINAL * (1 - math.cos(math.pi * min(t / 10, 1.0))) / 2,
        "curriculum": FINAL * (1 - math.exp(-0.05 * t)),
        "annealed": FINAL * math.exp(-0.05 * t),
    }[kind]


OPTIONS = {"constant": {}, "linear": {"steps": 10}, "step": {"milestones": [3, 10]},
           "cosine": {"steps": 10}, "curriculum": {"gamma": 0.05}, "annealed": {"gamma": 0.05}}


@pytest.mark.parametrize("kind", sorted(SCHEDULES))
def test_named_schedule_equals_its_formula_at_every_step(kind):
    schedule = make_schedule(kind, **OPTIONS[kind])
    for t in STEPS:
        assert schedule(t, FINAL) == pytest.approx(_expected(kind, t), rel=1e-12, abs=1e-15)


def test_curriculum_is_morerio_retain_probability_exactly():
    gamma, theta_bar = 0.002, 0.6  # p_final = 0.4
    schedule = Curriculum(gamma)
    for t in STEPS:
        theta = (1 - theta_bar) * math.exp(-gamma * t) + theta_bar
        assert 1 - schedule(t, 1 - theta_bar) == pytest.approx(theta, rel=1e-12)
        assert schedule(t, FINAL) == FINAL * (1 - math.exp(-gamma * t))  # bit-exact
    assert schedule(0, FINAL) == 0.0


def test_annealed_is_the_reverse_of_curriculum():
    for t in STEPS:
        assert Annealed(0.05)(t, FINAL) + Curriculum(0.05)(t, FINAL) == pytest.approx(FINAL)


def test_start_and_end_take_numbers_or_final():
    assert Cosine(10, start="final", end=0.0)(0, FINAL) == FINAL
    assert Cosine(10, start="final", end=0.0)(10, FINAL) == pytest.approx(0.0, abs=1e-15)
    assert Linear(4, start=0.1, end=0.3)(2, FINAL) == pytest.approx(0.2)
    assert Step((5,), start=0.2, end=0.6)(4, FINAL) == 0.2
    assert Step((5,), start=0.2, end=0.6)(5, FINAL) == 0.6
    assert Constant(0.25)(123, FINAL) == 0.25


@pytest.mark.parametrize("bad", [
    {"schedule": "exponential"},
    {"schedule": "cosine"},  # steps missing
    {"schedule": "cosine", "steps": 10, "gamma": 0.1},  # not a cosine option
    {"schedule": "curriculum", "gamma": 0.0},
    {"schedule": "linear", "steps": -1},
    {"schedule": "linear", "steps": 3, "start": "half"},
    {"schedule": "step", "milestones": [5, 2]},
    {"schedule": "step", "milestones": []},
    {"schedule": lambda t, final: final, "steps": 3},  # a callable takes no options
])
def test_bad_schedule_options_raise_value_error(bad):
    with pytest.raises(ValueError):
        make_schedule(**bad)


def test_callable_passes_through():
    def half(t: int, final: float) -> float:
        return final / 2

    assert make_schedule(half) is half


def test_curriculum_gamma_reaches_the_share_after_the_steps():
    gamma = curriculum_gamma(steps=5000)
    assert 1 - math.exp(-gamma * 5000) == pytest.approx(0.99)
    assert curriculum_gamma(fraction=0.25, total_steps=40_000) == pytest.approx(gamma * 0.5)
    assert curriculum_gamma(steps=100, reach=0.5) == pytest.approx(math.log(2) / 100)
    for bad in ({}, {"steps": 10, "fraction": 0.5, "total_steps": 20}, {"steps": 0},
                {"fraction": 0.5}, {"fraction": 1.5, "total_steps": 10},
                {"steps": 10, "reach": 1.0}):
        with pytest.raises(ValueError):
            curriculum_gamma(**bad)


def test_curriculum_dropout_rejects_a_non_positive_gamma():
    for gamma in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError):
            CurriculumDropout(gamma)
