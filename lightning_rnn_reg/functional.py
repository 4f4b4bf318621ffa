"""Pure functions behind every regularizer: mask sampling, dropouts, zoneout, AR/TAR, fraternal.

Conventions (all papers, see ``../shared/PAPERS.md``): ``p`` is the probability of
DROPPING a unit, ``m ~ Bernoulli(1 - p)``, and dropout is *inverted*: training computes
``x * m / (1 - p)`` so that ``E[x * m / (1 - p)] = x`` and test time is the identity. The
scaling ``1 / (1 - p)`` lives in exactly one place, :func:`dropout_mask`.

Every function takes ``training`` (the caller module's mode) and consults
:func:`lightning_rnn_reg.mode.is_stochastic`, so ``mc_dropout()`` and ``no_dropout()``
apply to the functional forms as well. ``p == 0`` draws no mask and returns its input.
Masks are drawn per example (never shared across the batch) from torch's generator, or
from ``generator`` when one is given.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_rnn_reg.mask_stats import record as record_mask
from lightning_rnn_reg.mode import is_stochastic

__all__ = [
    "activation_regularization",
    "bernoulli_mask",
    "check_rate",
    "dropout",
    "dropout_mask",
    "embedding_dropout",
    "fraternal_loss",
    "fraternal_penalty",
    "locked_dropout",
    "row_weight_drop",
    "temporal_activation_regularization",
    "weight_drop",
    "zoneout",
    "zoneout_weight_pair",
    "zoneout_weights",
]


def check_rate(name: str, value: object, *, upper: float | None = 1.0) -> float:
    """Return ``value`` as a float if it lies in ``[0, upper)``, else raise ``ValueError``.

    ``upper=None`` accepts any finite non-negative number (regularization strengths such as
    AR's ``alpha``). Booleans and non-numbers are rejected with a ``TypeError``.
    """
    if isinstance(value, Tensor) and value.numel() == 1 and not value.dtype.is_complex:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float, got {type(value).__name__} {value!r}")
    value = float(value)
    if upper is None:
        if not (math.isfinite(value) and value >= 0.0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    elif not (0.0 <= value < upper):
        raise ValueError(f"{name} must be in [0, {upper:g}), got {value}")
    return value


# CPU draws below this many elements use ``uniform_`` directly (fewer kernel launches).
_BITS_MIN_NUMEL = 16384
_BITS = 16
_LEVELS = 1 << _BITS


def _rates(p: float | Sequence[float], shape: tuple[int, ...]) -> list[float]:
    """One rate for the whole shape, or one per row of ``shape[0]`` (checked)."""
    if not isinstance(p, Sequence):
        return [float(p)]
    rates = [float(r) for r in p]
    if not shape or shape[0] != len(rates):
        raise ValueError(f"{len(rates)} rates need a shape with {len(rates)} rows, got {shape}")
    return rates


def _per_row(values: list[float], like: Tensor, dims: int, dtype: torch.dtype) -> Tensor | float:
    """A scalar for one value, else a ``(rows, 1, ...)`` tensor broadcasting over rows."""
    if len(values) == 1:
        return values[0]
    return torch.tensor(values, dtype=dtype, device=like.device).view(-1, *([1] * (dims - 1)))


def _bernoulli_bits(
    shape: Sequence[int], p: float | Sequence[float], device: torch.device,
    generator: torch.Generator | None
) -> Tensor:
    """Boolean tensor of ``shape``, each element independently ``True`` with probability
    exactly ``p`` (to ``2**-40``), from 16 random bits per element. ``p`` may also give one
    rate per row of ``shape[0]`` (several masks from one draw).

    torch's CPU generator draws one element per Mersenne-Twister call for ``uniform_``; a 64-bit
    integer draw gives four 16-bit uniforms ``b`` for about the same cost. With
    ``p * 2**16 = k + r`` (``k`` integer, ``0 <= r < 1``): ``b < k`` is ``True``, ``b > k``
    ``False``, and the ties ``b == k`` (probability ``2**-16``) are resolved by a second uniform
    ``v < r``, so ``P(True) = k / 2**16 + r / 2**16 = p``.
    """
    shape = tuple(shape)
    rates = _rates(p, shape)
    numel = math.prod(shape)
    words = torch.empty((numel + 3) // 4, dtype=torch.int64, device=device)
    words.random_(-(2**63), 2**63 - 1, generator=generator)
    bits = words.view(torch.int16)[:numel].view(shape)  # uniform over int16
    ks = [math.floor(rate * _LEVELS) for rate in rates]
    fracs = [rate * _LEVELS - k for rate, k in zip(rates, ks, strict=True)]
    # b + 2**15 < k  <=>  b < threshold
    threshold = _per_row([k - _LEVELS // 2 for k in ks], bits, len(shape), torch.int16)
    below = bits.lt(threshold)
    if max(fracs) > 0.0:
        ties = bits.eq(threshold).nonzero(as_tuple=True)
        if ties[0].numel():
            v = torch.rand(ties[0].numel(), device=device, generator=generator)
            frac = fracs[0] if len(fracs) == 1 else torch.tensor(fracs, device=device)[ties[0]]
            below[ties] = v.lt(frac)
    return below


def _draw_below(
    shape: Sequence[int], p: float | Sequence[float], like: Tensor,
    generator: torch.Generator | None
) -> Tensor:
    """``u < p`` elementwise for ``u ~ U[0, 1)``: a mask with ``P(1) = p`` (bool on the fast CPU
    path, else ``like``'s dtype); ``p`` may give one rate per row of ``shape[0]``. Every mask
    of the library is drawn here, and reported to the active
    :class:`~lightning_rnn_reg.mask_stats.MaskStats` (if any), one report per rate."""
    shape = tuple(shape)
    rates = _rates(p, shape)
    if min(rates) >= 1.0:
        below = torch.ones(shape, dtype=torch.bool, device=like.device)
    elif like.device.type == "cpu" and math.prod(shape) >= _BITS_MIN_NUMEL:
        below = _bernoulli_bits(shape, rates if len(rates) > 1 else rates[0], like.device,
                                generator)
    else:
        below = torch.empty(shape, dtype=like.dtype, device=like.device)
        below.uniform_(generator=generator)
        below = below.lt_(_per_row(rates, below, len(shape), below.dtype))
    for row, rate in enumerate(rates):
        record_mask(rate, below if len(rates) == 1 else below[row])
    return below


def dropout_mask(
    shape: Sequence[int], p: float, like: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """Inverted dropout mask ``m / (1 - p)``, ``m ~ Bernoulli(1 - p)``, dtype/device of ``like``.

    The only place where the ``1 / (1 - p)`` scaling is applied. Values are exactly ``0`` or
    ``1 / (1 - p)``. Drawn as ``m = 1 - [u < p]`` with ``u`` uniform (see
    :func:`_bernoulli_bits` for the fast exact CPU draw of large masks).
    """
    dropped = _draw_below(shape, p, like, generator)
    mask = dropped.logical_not_() if dropped.dtype == torch.bool else dropped.neg_().add_(1.0)
    return mask.to(like.dtype).div_(1.0 - p)


def bernoulli_mask(
    shape: Sequence[int], p: float, like: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """Unscaled 0/1 mask with ``P(1) = p`` (zoneout's "keep the previous value" draw), dtype
    and device of ``like``."""
    return _draw_below(shape, p, like, generator).to(like.dtype)


def _active(p: float, training: bool) -> bool:
    return p > 0.0 and is_stochastic(training)


def dropout(
    x: Tensor,
    p: float,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Per-step (standard) dropout, Zaremba et al. 2014: ``x * m_t / (1 - p)``, a fresh ``m`` for
    every element, hence for every time step. Identity when not stochastic."""
    if not _active(p, training):
        return x
    return x * dropout_mask(x.shape, p, x, generator)


def locked_dropout(
    x: Tensor,
    p: float,
    training: bool = True,
    batch_first: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Locked (variational) dropout, Gal & Ghahramani 2016; Merity et al. 2017.

    One mask per sequence, shared by all time steps: ``x_t * m / (1 - p)``. ``x`` is
    ``(T, B, ...)`` or, with ``batch_first``, ``(B, T, ...)``. A 2-D ``(T, F)`` input is one
    unbatched sequence.
    """
    if not _active(p, training):
        return x
    if x.dim() < 2:
        raise ValueError(f"locked_dropout expects (T, B, F) input, got shape {tuple(x.shape)}")
    time_dim = 1 if (batch_first and x.dim() > 2) else 0
    shape = list(x.shape)
    shape[time_dim] = 1
    return x * dropout_mask(shape, p, x, generator)


def embedding_dropout(
    ids: Tensor,
    weight: Tensor,
    p: float,
    training: bool = True,
    batch_first: bool = False,
    padding_idx: int | None = None,
    generator: torch.Generator | None = None,
    *,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Embedding (word-type) dropout, Gal & Ghahramani 2016; Merity et al. 2017.

    Looks ``ids`` up in ``weight`` (``(V, E)``) after dropping whole rows: for each sequence
    (example) an independent mask over word types ``m_w ~ Bernoulli(1 - p)`` is drawn, and
    every occurrence of word ``w`` in that sequence gets ``E[w] * m_w / (1 - p)`` — the same
    mask for repeated occurrences ("tying over words"). ``ids`` is ``(T, B)`` (or ``(B, T)``
    with ``batch_first``); a 1-D ``ids`` is one sequence. Eval: plain lookup ``E[w]``.

    The lookup is :func:`torch.nn.functional.embedding` with ``padding_idx``, ``max_norm``,
    ``norm_type``, ``scale_grad_by_freq`` and ``sparse`` (same defaults), so ``E[w]`` is
    exactly what ``F.embedding`` gives: with ``max_norm`` the looked-up rows of ``weight``
    are renormalized in place, as ``nn.Embedding`` does; with ``sparse`` the gradient of
    ``weight`` is sparse; with ``scale_grad_by_freq`` it is scaled as ``F.embedding``
    scales it (then masked).
    """
    emb = F.embedding(ids, weight, padding_idx=padding_idx, max_norm=max_norm,
                      norm_type=norm_type, scale_grad_by_freq=scale_grad_by_freq,
                      sparse=sparse)
    if not _active(p, training):
        return emb
    if ids.dim() == 1:
        example = torch.zeros_like(ids)
    else:
        batch_dim = 0 if batch_first else 1
        shape = [1, 1]
        shape[batch_dim] = ids.shape[batch_dim]
        example = torch.arange(ids.shape[batch_dim], device=ids.device).view(shape).expand_as(ids)
    key = example * weight.shape[0] + ids
    unique, inverse = torch.unique(key, return_inverse=True)
    per_type = dropout_mask((unique.numel(),), p, emb, generator)
    return emb * per_type[inverse].unsqueeze(-1)


def zoneout_weights(
    shape: Sequence[int],
    p: float,
    training: bool,
    like: Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Weights ``d`` of the previous value in zoneout's ``d * prev + (1 - d) * new``.

    Stochastic: ``d ~ Bernoulli(p)`` of ``shape``. Otherwise the expectation ``d = p`` (as a
    broadcastable one-element tensor), the test-time rule of Krueger et al. 2016.
    """
    if is_stochastic(training):
        return bernoulli_mask(shape, p, like, generator)
    return torch.full((1,) * len(shape), p, dtype=like.dtype, device=like.device)


def zoneout_weight_pair(
    shape: Sequence[int],
    p_cell: float,
    p_hidden: float,
    training: bool,
    like: Tensor,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """The weights ``(d^c, d^h)`` of LSTM zoneout (:func:`zoneout_weights` for the cell and
    the hidden state) from one draw: ``d^c ~ Bernoulli(p_cell)``, ``d^h ~ Bernoulli(p_hidden)``
    independent, each of ``shape`` (two views of one ``(2, *shape)`` tensor); eval: the
    rates, as one-element tensors."""
    if not is_stochastic(training):
        ones = (1,) * len(shape)
        return (torch.full(ones, p_cell, dtype=like.dtype, device=like.device),
                torch.full(ones, p_hidden, dtype=like.dtype, device=like.device))
    both = _draw_below((2, *shape), (p_cell, p_hidden), like, generator).to(like.dtype)
    return both[0], both[1]


def zoneout(
    prev: Tensor,
    new: Tensor,
    p: float,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Zoneout, Krueger et al. 2016: ``d * prev + (1 - d) * new`` with ``d ~ Bernoulli(p)``
    per unit (train) and ``d = p`` (eval, the expectation)."""
    if p == 0.0:
        return new
    d = zoneout_weights(new.shape, p, training, new, generator)
    return torch.lerp(new, prev, d)


def weight_drop(
    weight: Tensor, p: float, training: bool = True, generator: torch.Generator | None = None
) -> Tensor:
    """DropConnect (Wan et al. 2013) as AWD-LSTM uses it on ``W_hh`` (Merity et al. 2017):
    ``W * M / (1 - p)``, one elementwise mask ``M`` per call (shared by the batch and all
    time steps); ``W`` at eval."""
    if not _active(p, training):
        return weight
    return weight * dropout_mask(weight.shape, p, weight, generator)


def row_weight_drop(
    weight: Tensor, p: float, training: bool = True, generator: torch.Generator | None = None
) -> Tensor:
    """AWD-LSTM's ``variational=True`` weight drop: whole rows of a 2-D ``W_hh`` (all
    recurrent inputs of one gate unit) dropped, ``W * m[:, None] / (1 - p)``; ``W`` at eval."""
    if weight.dim() != 2:
        raise ValueError(f"row_weight_drop expects a 2-D weight, got shape {tuple(weight.shape)}")
    if not _active(p, training):
        return weight
    return weight * dropout_mask((weight.shape[0], 1), p, weight, generator)


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return values.mean()
    mask = mask.to(values.dtype)
    while mask.dim() < values.dim():
        mask = mask.unsqueeze(-1)
    weight = mask.expand_as(values)
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


def activation_regularization(h: Tensor, alpha: float, mask: Tensor | None = None) -> Tensor:
    """AR, Merity et al. 2017: ``alpha * mean(h^2)`` over all entries of the (dropped)
    last-layer output ``h``; with ``mask`` (``(T, B)`` valid positions) padding is excluded."""
    return alpha * _masked_mean(h.pow(2), mask)


def temporal_activation_regularization(
    h: Tensor, beta: float, mask: Tensor | None = None, batch_first: bool = False
) -> Tensor:
    """TAR, Merity et al. 2017: ``beta * mean((h_t - h_{t-1})^2)`` on the undropped last-layer
    output ``h`` (``(T, B, H)``). Defined as ``0`` when there is a single time step.
    With ``mask`` (valid positions, same leading shape as ``h``) only pairs of two valid steps
    count."""
    time_dim = 1 if batch_first else 0
    steps = h.shape[time_dim]
    if steps < 2:
        return h.new_zeros(())
    diff = h.narrow(time_dim, 1, steps - 1) - h.narrow(time_dim, 0, steps - 1)
    pair_mask = None
    if mask is not None:
        pair_mask = mask.narrow(time_dim, 1, steps - 1) * mask.narrow(time_dim, 0, steps - 1)
    return beta * _masked_mean(diff.pow(2), pair_mask)


def fraternal_penalty(z1: Tensor, z2: Tensor, kappa: float) -> Tensor:
    """Fraternal dropout's regularizer, Zolna et al. 2017: ``kappa * mean((z1 - z2)^2)`` over
    every entry of the two passes' pre-softmax outputs."""
    return kappa * (z1 - z2).pow(2).mean()


def fraternal_loss(
    z1: Tensor, z2: Tensor, target: Tensor, kappa: float, ignore_index: int = -100
) -> Tensor:
    """Fraternal dropout's full objective (Zolna et al. 2017):
    ``(CE(z1, y) + CE(z2, y)) / 2 + kappa * mean((z1 - z2)^2)``.

    ``z1``/``z2`` are logits ``(..., C)`` of two passes with independent masks and ``target``
    the class indices ``(...)``. With ``kappa = 0`` this is the mean of two ordinary losses.
    Positions whose target is ``ignore_index`` (padding) count in neither term.
    """
    classes = z1.shape[-1]
    flat1, flat2, flat_target = z1.reshape(-1, classes), z2.reshape(-1, classes), target.reshape(-1)
    ce1 = F.cross_entropy(flat1, flat_target, ignore_index=ignore_index)
    ce2 = F.cross_entropy(flat2, flat_target, ignore_index=ignore_index)
    valid = flat_target != ignore_index
    return 0.5 * (ce1 + ce2) + fraternal_penalty(flat1[valid], flat2[valid], kappa)
