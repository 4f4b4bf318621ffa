"""The loop's prepacked recurrent products (rnn/packed_products.py): chosen by shape, dtype
and device alone, equal to the plain products, and switched off cleanly."""

from __future__ import annotations

import pytest
import torch

import lightning_rnn_reg as lrr
from lightning_rnn_reg.rnn import packed_products as pp

pytestmark = pytest.mark.skipif(not pp.packed_products_available(),
                                reason="oneDNN packed linear ops not available in this torch")


def test_packed_product_equals_mm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pp.ENV_VAR, "1")
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(4 * 300, 300, generator=gen)
    x = torch.randn(20, 300, generator=gen)
    packed = pp.pack(weight, 300, 20)
    assert packed is not None
    torch.testing.assert_close(pp.packed_mm(x, packed), x @ weight.t(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("capability", ["AVX512", "AVX2", "DEFAULT"])
def test_choice_by_shape_dtype_device_and_cpu(
        capability: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(pp.ENV_VAR, raising=False)
    monkeypatch.setattr(pp, "_capability", lambda: capability)
    small = torch.randn(4 * 8, 8)
    threshold = pp.min_hidden()
    assert threshold == pp.PACKED_MIN_HIDDEN.get(capability)
    assert pp.pack(small, 8, 4) is None  # below every measured crossover
    if threshold is None:  # a CPU never measured: no packing at any size
        assert pp.pack(torch.randn(4 * 1200, 1200), 1200, 4) is None
    else:
        large = torch.randn(4 * threshold, threshold)
        assert pp.pack(large, threshold, 4) is not None
        assert pp.pack(large, threshold - 1, 4) is None
        assert pp.pack(large.double(), threshold, 4) is None  # float32 only
    monkeypatch.setenv(pp.ENV_VAR, "1")
    assert pp.pack(small, 8, 4) is not None
    monkeypatch.setenv(pp.ENV_VAR, "0")
    assert pp.pack(torch.randn(4 * 1200, 1200), 1200, 4) is None
    assert not pp.packed_products_available()


def _loop_grads(mode: str, cell: str, regs: list, monkeypatch: pytest.MonkeyPatch
                ) -> list[torch.Tensor]:
    monkeypatch.setenv(pp.ENV_VAR, mode)
    torch.manual_seed(0)
    layer_cls = lrr.LSTM if cell == "lstm" else lrr.GRU
    layer = layer_cls(12, 24, num_layers=2, bidirectional=True, regularizers=regs)
    x = torch.randn(9, 5, 12, requires_grad=True)
    h0 = torch.randn(4, 5, 24, requires_grad=True)
    state = (h0, torch.randn(4, 5, 24)) if cell == "lstm" else h0
    torch.manual_seed(1)
    out, last = layer(x, state)
    last_h = last[0] if cell == "lstm" else last
    (out.pow(2).sum() + last_h.sin().sum()).backward()
    return [out.detach(), x.grad, h0.grad, *(p.grad for p in layer.parameters())]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("regs", [
    lambda: [lrr.RecurrentDropout(0.3)],
    lambda: [lrr.UpdateDropout(0.3)],
    lambda: [lrr.Zoneout(hidden=0.2)],
    lambda: [lrr.RecurrentDropout(0.3, per_gate=True)],  # per-gate: W_k packed per gate
], ids=["recurrent", "update", "zoneout", "untied"])
def test_loop_gradients_equal_with_and_without_packing(
        cell: str, regs, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = _loop_grads("0", cell, regs(), monkeypatch)
    packed = _loop_grads("1", cell, regs(), monkeypatch)
    for got, want in zip(packed, plain, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_failed_self_check_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """A torch whose packed op is unsound (here: raises) leaves the plain products in use."""
    def broken(*args: object) -> torch.Tensor:
        raise RuntimeError("no packed linear here")

    pp._numerically_sound.cache_clear()
    monkeypatch.setattr(pp, "_raw_pack", broken)
    try:
        assert not pp.packed_products_available()
        monkeypatch.setenv(pp.ENV_VAR, "1")
        assert pp.pack(torch.randn(4 * 512, 512), 512, 4) is None
    finally:
        monkeypatch.undo()
        pp._numerically_sound.cache_clear()
    assert pp.packed_products_available()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("per_gate", [False, True])
def test_weights_are_packed_once_per_product_kind_and_call(
        cell: str, per_gate: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tied masks pack ``W_hh`` for the forward and ``W_hh^T`` for the backward, once each per
    direction and call; per-gate masks take one product per gate both ways, so each gate's
    block ``W_k`` and ``W_k^T`` is packed instead (and nothing whole)."""
    from lightning_rnn_reg.rnn import loop_common

    shapes: list[tuple[int, ...]] = []

    def counting(weight: torch.Tensor, hidden: int, batch: int) -> torch.Tensor | None:
        result = pp.pack(weight, hidden, batch)
        shapes.extend([tuple(weight.shape)] if result is not None else [])
        return result

    monkeypatch.setattr(loop_common, "pack", counting)
    _loop_grads("1", cell, [lrr.RecurrentDropout(0.3, per_gate=per_gate)], monkeypatch)
    gates, hidden, directions = (4 if cell == "lstm" else 3), 24, 2 * 2  # 2 layers x 2
    if per_gate:
        assert shapes == [(hidden, hidden)] * (2 * gates * directions)
    else:
        assert sorted(shapes) == sorted([(gates * hidden, hidden), (hidden, gates * hidden)]
                                        * directions)
