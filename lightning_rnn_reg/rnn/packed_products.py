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
* ``H >= PACKED_MIN_HIDDEN``: below that the plain product wins. The threshold is measured,
  not guessed (``python benchmarks/loop_micro.py --products``; 2 threads, avx512 CPU, batch 20
  and 80): the packed forward product + gate add costs 1.65x / 1.16x / 0.95x / 0.70x of
  ``baddbmm`` at H = 128 / 200 / 256 / 400, and 0.72x at 650; the backward 1.26x / 1.04x /
  0.79x / 0.83x, 0.62x at 650. The rule depends on the shape alone, never on timing at run
  time, so a run and its resume take the same products (bit-identical resume).

``LRR_PACKED_PRODUCTS=0`` switches packing off, ``=1`` uses it at every size (tests run both).
"""

from __future__ import annotations

import os
from functools import lru_cache

import torch
from torch import Tensor

__all__ = ["PACKED_MIN_HIDDEN", "pack", "packed_mm", "packed_products_available"]

#: Smallest hidden size at which the loop packs ``W_hh`` (measured; see the module docstring).
PACKED_MIN_HIDDEN = 256
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


def _chosen(weight: Tensor, hidden: int) -> bool:
    if weight.device.type != "cpu" or weight.dtype != torch.float32:
        return False
    if not packed_products_available():
        return False
    return os.environ.get(ENV_VAR, "") == "1" or hidden >= PACKED_MIN_HIDDEN


def pack(weight: Tensor, hidden: int, batch: int) -> Tensor | None:
    """``weight`` ``(N, K)`` packed for :func:`packed_mm` when packing is chosen for this
    hidden size, dtype and device; ``None`` means: use the plain product."""
    if not _chosen(weight, hidden):
        return None
    return _raw_pack(weight.detach().contiguous(), batch)
