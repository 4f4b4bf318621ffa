"""The pure functions in ``lightning_rnn_reg.functional``: rate checks, masks, dropouts, zoneout."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_rnn_reg import functional as LF
from lightning_rnn_reg.mode import mc_dropout, no_dropout

N = 200_000
RATES = [0.1, 0.5, 0.8]


def band(p: float, n: int = N) -> float:
    """Five standard deviations of the empirical frequency of n Bernoulli(p) draws."""
    return 5.0 * math.sqrt(p * (1.0 - p) / n)


# --- check_rate -------------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 0.0, 0.25, 0.999])
def test_check_rate_accepts_values_in_unit_interval_as_float(value):
    out = LF.check_rate("p", value)
    assert isinstance(out, float)
    assert out == value


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5, float("nan"), float("inf")])
def test_check_rate_rejects_out_of_range_with_name_and_range(value):
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        LF.check_rate("p", value)


@pytest.mark.parametrize("value", ["0.5", True, None, [0.5]])
def test_check_rate_rejects_non_numbers_with_type_error(value):
    with pytest.raises(TypeError, match="p must be a float"):
        LF.check_rate("p", value)


@pytest.mark.parametrize("value", [0, 0.5, 1.0, 3, 1e6])
def test_check_rate_unbounded_accepts_finite_non_negative(value):
    assert LF.check_rate("alpha", value, upper=None) == float(value)


@pytest.mark.parametrize("value", [-1e-9, -2.0, float("inf"), float("nan")])
def test_check_rate_unbounded_rejects_negative_and_non_finite(value):
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
        LF.check_rate("alpha", value, upper=None)


# --- masks ------------------------------------------------------------------------------


@pytest.mark.parametrize("p", RATES)
def test_dropout_mask_drop_fraction_matches_p(p):
    mask = LF.dropout_mask((N,), p, torch.empty(0))
    assert abs((mask == 0).double().mean().item() - p) < band(p)


@pytest.mark.parametrize("p", RATES)
def test_dropout_mask_kept_values_are_exactly_inverse_keep(p):
    mask = LF.dropout_mask((N,), p, torch.empty(0, dtype=torch.float64))
    assert set(mask.unique().tolist()) == {0.0, 1.0 / (1.0 - p)}


def test_dropout_mask_takes_dtype_and_shape_of_arguments():
    mask = LF.dropout_mask((2, 3, 4), 0.5, torch.empty(0, dtype=torch.float64))
    assert mask.shape == (2, 3, 4)
    assert mask.dtype == torch.float64


def test_dropout_mask_uses_given_generator():
    a = LF.dropout_mask((1000,), 0.5, torch.empty(0), torch.Generator().manual_seed(7))
    b = LF.dropout_mask((1000,), 0.5, torch.empty(0), torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


@pytest.mark.parametrize("p", RATES)
def test_bernoulli_mask_is_unscaled_with_one_probability_p(p):
    mask = LF.bernoulli_mask((N,), p, torch.empty(0))
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert abs(mask.double().mean().item() - p) < band(p)


@pytest.mark.parametrize("p", [0.4, 0.05, 1 / 3, 0.25, 0.5, 0.999])
def test_fast_cpu_draw_has_probability_p(p):
    """Large CPU masks use 16-bit integer draws with tie resolution (``_bernoulli_bits``)."""
    numel = 4_000_000
    assert numel >= LF._BITS_MIN_NUMEL
    below = LF._bernoulli_bits((numel,), p, torch.device("cpu"), torch.Generator().manual_seed(3))
    assert below.dtype == torch.bool
    sigma = (p * (1 - p) / numel) ** 0.5
    assert abs(below.double().mean().item() - p) < 5 * sigma


@pytest.mark.parametrize("frac", [0.3, 0.9])
def test_fast_cpu_draw_resolves_ties_below_16_bit_resolution(frac):
    """``p < 2**-16``: every ``True`` comes from a tie, which must occur with prob. ``frac``."""
    p = frac / LF._LEVELS
    numel = 1 << 24
    below = LF._bernoulli_bits((numel,), p, torch.device("cpu"), torch.Generator().manual_seed(5))
    expected = numel * p  # 76.8 or 230.4
    assert abs(below.sum().item() - expected) < 5 * expected**0.5


def test_fast_cpu_draw_is_independent_across_neighbours():
    """Four draws share one 64-bit word: neighbours must still be uncorrelated."""
    below = LF._bernoulli_bits((1_000_000, 4), 0.5, torch.device("cpu"), None).double()
    corr = torch.corrcoef(below.T)
    off_diagonal = corr[~torch.eye(4, dtype=torch.bool)]
    assert off_diagonal.abs().max().item() < 0.01


def test_large_and_small_masks_scale_alike():
    large = LF.dropout_mask((300, 300), 0.3, torch.empty(0))
    small = LF.dropout_mask((10, 10), 0.3, torch.empty(0))
    kept = torch.tensor(1 / 0.7, dtype=torch.float32).item()
    assert set(large.unique().tolist()) == set(small.unique().tolist()) == {0.0, kept}
    assert large.dtype == small.dtype == torch.float32


# --- dropout / locked_dropout / weight drop ---------------------------------------------


@pytest.mark.parametrize("p", RATES)
def test_dropout_drop_fraction_matches_p(p):
    y = LF.dropout(torch.ones(N), p)
    assert abs((y == 0).double().mean().item() - p) < band(p)


@pytest.mark.parametrize("p", RATES)
def test_dropout_kept_values_are_exactly_scaled(p):
    y = LF.dropout(torch.ones(N, dtype=torch.float64), p)
    assert set(y.unique().tolist()) == {0.0, 1.0 / (1.0 - p)}


def test_dropout_masks_vary_over_time():
    y = LF.dropout(torch.ones(2, 4, 100), 0.5)
    assert not torch.equal(y[0], y[1])


@pytest.mark.parametrize("p", RATES)
def test_locked_dropout_drop_fraction_matches_p(p):
    y = LF.locked_dropout(torch.ones(3, 400, 500), p)
    assert abs((y[0] == 0).double().mean().item() - p) < band(p)


def test_locked_dropout_mask_constant_over_time_and_different_across_batch():
    y = LF.locked_dropout(torch.ones(7, 4, 100), 0.5)
    assert torch.equal(y, y[:1].expand_as(y))
    assert not torch.equal(y[0, 0], y[0, 1])


def test_locked_dropout_batch_first_shares_mask_over_axis_one():
    y = LF.locked_dropout(torch.ones(4, 7, 100), 0.5, batch_first=True)
    assert torch.equal(y, y[:, :1].expand_as(y))
    assert not torch.equal(y[0, 0], y[1, 0])


def test_locked_dropout_unbatched_two_dim_input_shares_mask_over_time():
    y = LF.locked_dropout(torch.ones(7, 100), 0.5, batch_first=True)
    assert torch.equal(y, y[:1].expand_as(y))


def test_locked_dropout_rejects_one_dim_input():
    with pytest.raises(ValueError, match="locked_dropout expects"):
        LF.locked_dropout(torch.ones(5), 0.5)


@pytest.mark.parametrize(
    "fn",
    [LF.dropout, LF.locked_dropout, LF.weight_drop, LF.row_weight_drop],
    ids=lambda f: f.__name__,
)
def test_zero_rate_returns_input_without_drawing(fn):
    x = torch.randn(4, 5)
    state = torch.get_rng_state()
    assert fn(x, 0.0) is x
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize(
    "fn",
    [LF.dropout, LF.locked_dropout, LF.weight_drop, LF.row_weight_drop],
    ids=lambda f: f.__name__,
)
def test_eval_returns_input_without_drawing(fn):
    x = torch.randn(4, 5)
    state = torch.get_rng_state()
    assert fn(x, 0.5, training=False) is x
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize(
    "fn",
    [LF.dropout, LF.locked_dropout, LF.weight_drop, LF.row_weight_drop],
    ids=lambda f: f.__name__,
)
def test_functional_forms_obey_mc_dropout_in_eval(fn):
    x = torch.ones(40, 50)
    with mc_dropout():
        y = fn(x, 0.5, training=False)
    assert (y == 0).any()


@pytest.mark.parametrize(
    "fn",
    [LF.dropout, LF.locked_dropout, LF.weight_drop, LF.row_weight_drop],
    ids=lambda f: f.__name__,
)
def test_functional_forms_obey_no_dropout_in_train(fn):
    x = torch.ones(40, 50)
    with no_dropout():
        assert fn(x, 0.5, training=True) is x


def test_row_weight_drop_drops_whole_rows():
    w = torch.ones(200, 30)
    y = LF.row_weight_drop(w, 0.5)
    assert torch.equal(y, y[:, :1].expand_as(y))
    assert (y[:, 0] == 0).any() and (y[:, 0] != 0).any()


@given(
    shape=st.lists(st.integers(1, 6), min_size=2, max_size=4),
    p=st.floats(0.0, 0.95, exclude_max=True),
    name=st.sampled_from(["dropout", "locked_dropout", "weight_drop", "row_weight_drop"]),
)
@settings(max_examples=30, deadline=None, derandomize=True, database=None)
def test_every_output_is_zero_or_input_over_keep(shape, p, name):
    if name.endswith("weight_drop"):
        shape = shape[:2]  # weights are (rows, columns)
    x = torch.rand(shape, dtype=torch.float64) + 0.5
    y = getattr(LF, name)(x, p)
    scaled = x / (1.0 - p)
    kept = y != 0
    assert torch.allclose(y[kept], scaled[kept], rtol=1e-12, atol=0.0)
