"""The loop's per-step recurrent products with ``W_hh`` packed once per call (oneDNN).

Every step of the loop multiplies by the same recurrent weight: ``h_{t-1} W_hh^T`` forward,
``dgates_t W_hh`` backward. MKL's ``mm`` / ``baddbmm`` repack the weight into their blocked
layout at every call; oneDNN's RNN primitive (what ``nn.LSTM`` runs on CPU) packs it once per
sequence and reuses the packed form at every step. This module does the same through the ops
inductor uses for CPU linear layers: ``mkldnn._reorder_linear_weight`` (pack once per forward
or backward call) and ``mkldnn._linear_pointwise`` (the product with the packed weight).

Those ops are internal to PyTorch, so they are used only when all of these hold, else the
loop keeps its plain ``mm`` / ``baddbmm`` products (same math, no packing):

* the ops exist and oneDNN is built in (feature-detected);
* the packed product equals ``mm`` on a random problem at first use (checked once per
  process; a mismatch or an error switches packing off for the process);
* float32 on CPU (the loop always runs its recurrence in float32 or float64);
* ``H >=`` the crossover measured for this CPU (:data:`PACKED_MIN_HIDDEN`, by
  ``torch.backends.cpu.get_cpu_capability()``), for the forward and the backward product
  alike; below it, or on a CPU never measured, the plain product is used. Measured with
  ``python benchmarks/packed_products.py`` (2 threads; packed / plain time of one step's
  product, and with ``--layer`` a whole loop layer, packing off -> on):

  - AVX-512 (the earlier development machine): forward 1.65 / 1.16 / 0.95 / 0.70 / 0.72
    at H = 128 / 200 / 256 / 400 / 650, backward 1.26 / 1.04 / 0.79 / 0.83 / 0.62: both
    from H = 256.
  - AVX2 (AMD EPYC, no AVX-512): the products alone hardly win (forward 0.99 / 0.92 at
    H = 650 / 1150, batch 20), yet a whole loop layer does (``--layer``: one
    ``RecurrentDropout`` layer, T 35, batch 20, ratio to nn.LSTM with packing off -> on):
    1.21x -> 1.32x at H = 400, 1.21x -> 1.25x at 512, 1.32x -> 1.23x at 650, 1.16x ->
    1.09x at 800; 1.44x -> 1.22x at 400 -> 1150 with T 70: both from H = 600.
  - Any other capability: never (not measured).

  The rule depends on the shape and the CPU alone, never on timing at run time, so a run
  and its resume on the same machine take the same products (bit-identical resume).

``LRR_PACKED_PRODUCTS=0`` switches packing off, ``=1`` uses it at every size (tests run both).
"""

from __future__ import annotations

import os
from functools import lru_cache

import torch
from torch import Tensor

__all__ = ["PACKED_MIN_HIDDEN", "min_hidden", "pack", "packed_mm", "packed_products_available"]

#: Smallest hidden size from which the loop packs ``W_hh``, by CPU capability; a capability
#: not listed never packs (measured; see the module docstring).
PACKED_MIN_HIDDEN: dict[str, int] = {"AVX512": 256, "AVX2": 600}
ENV_VAR = "LRR_PACKED_PRODUCTS"


def _ops_present() -> bool:
    mkldnn = getattr(torch.ops, "mkldnn", None)
    try:
        return (torch.backends.mkldnn.is_available()
                and hasattr(mkldnn, "_reorder_linear_weight")
                and hasattr(mkldnn, "_linear_pointwise"))
    except (AttributeError, RuntimeError):
        return False


def _raw_pack(weight: Tensor, batch: int) -> Tensor:
    return torch.ops.mkldnn._reorder_linear_weight(weight, batch)


def packed_mm(x: Tensor, packed: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ W^T (+ bias)`` for ``packed = pack(W, ...)``: ``(B, K) -> (B, N)``."""
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


@lru_cache(maxsize=1)
def _numerically_sound() -> bool:
    """Whether the packed product equals ``mm`` here (once per process)."""
    if not _ops_present():
        return False
    try:
        gen = torch.Generator().manual_seed(0)
        weight = torch.randn(96, 40, generator=gen)
        x = torch.randn(7, 40, generator=gen)
        bias = torch.randn(96, generator=gen)
        got = packed_mm(x, _raw_pack(weight, 7), bias)
        want = torch.addmm(bias, x, weight.t())
        return bool(got.shape == want.shape and torch.allclose(got, want, rtol=1e-5,
                                                               atol=1e-5))
    except (RuntimeError, TypeError, NotImplementedError):
        return False


def packed_products_available() -> bool:
    """Whether the packed products can be used in this process (ops present, sound, and not
    switched off with ``LRR_PACKED_PRODUCTS=0``)."""
    return os.environ.get(ENV_VAR, "") != "0" and _numerically_sound()


@lru_cache(maxsize=1)
def _capability() -> str:
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return "unknown"


def min_hidden() -> int | None:
    """The hidden size from which the loop packs ``W_hh`` on this CPU; ``None``: never."""
    return PACKED_MIN_HIDDEN.get(_capability())


def _chosen(weight: Tensor, hidden: int) -> bool:
    if weight.device.type != "cpu" or weight.dtype != torch.float32:
        return False
    if not packed_products_available():
        return False
    if os.environ.get(ENV_VAR, "") == "1":
        return True
    threshold = min_hidden()
    return threshold is not None and hidden >= threshold


def pack(weight: Tensor, hidden: int, batch: int) -> Tensor | None:
    """``weight`` ``(N, K)`` packed for :func:`packed_mm` when packing is chosen for this
    hidden size, dtype, device and CPU; ``None`` means: use the plain product."""
    if not _chosen(weight, hidden):
        return None
    return _raw_pack(weight.detach().contiguous(), batch)
