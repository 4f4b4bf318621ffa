"""The loop's per-step recurrent products, plain vs with ``W_hh`` packed once (oneDNN).

Measures, per hidden size H and batch B, the two products every loop step runs
(:mod:`lightning_rnn_reg.rnn.packed_products`):

- forward: ``a = xw_t + h_{t-1} W_hh^T`` for the 4 LSTM gates, gate-major: one ``baddbmm``
  over the gates (plain) against one product with the packed weight and one add (packed);
- backward: ``dgates_t @ W_hh`` with ``mm`` (plain) against the packed ``W_hh^T``.

and (``--layer``, the figure the crossover is chosen from) one whole ``lrr.LSTM`` layer with
``RecurrentDropout(0.25)`` (loop path), forward+backward of ``T`` steps (``--steps``; input
size = H), with packing off (``LRR_PACKED_PRODUCTS=0``), forced on (``=1``) and by the
default rule, as a ratio to bare ``nn.LSTM``, the modes timed round-robin.

Each product timing is the median of ``--repeats`` blocks of ``--calls`` calls (the packing
itself, once per loop call, is timed on its own: ``pack both (us)``). Plain and packed
alternate block by block, so drift of a shared machine hits both alike; a ratio packed /
plain below 1 means packing wins. The products alone miss the loop's memory traffic, so the
smallest H from which ``--layer`` shows "packing on" ahead of "packing off" is the crossover
that ``PACKED_MIN_HIDDEN`` holds for this CPU's capability (printed in the header).

Usage::

    python benchmarks/packed_products.py                       # H 128 ... 1150, B 20 and 80
    python benchmarks/packed_products.py --hidden 200 650 --batch 20 --markdown products.md
    python benchmarks/packed_products.py --layer --hidden 256 400 512 650 1150 --batch 20
    python benchmarks/packed_products.py --layer --per-gate --hidden 200 650 1150 --batch 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

import lightning_rnn_reg as lrr
from lightning_rnn_reg.report import markdown_table
from lightning_rnn_reg.rnn.packed_products import (
    ENV_VAR,
    _capability,
    _raw_pack,
    min_hidden,
    packed_mm,
    packed_products_available,
)


def _block(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def _paired(plain: Callable[[], object], packed: Callable[[], object], calls: int,
            repeats: int) -> tuple[float, float]:
    for fn in (plain, packed):  # warm-up
        _block(fn, calls)
    times: dict[str, list[float]] = {"plain": [], "packed": []}
    for _ in range(repeats):
        times["plain"].append(_block(plain, calls))
        times["packed"].append(_block(packed, calls))
    return statistics.median(times["plain"]), statistics.median(times["packed"])


def measure(hidden: int, batch: int, calls: int, repeats: int) -> dict[str, object]:
    """One row: forward and backward product times (us) plain and packed, their ratios."""
    gen = torch.Generator().manual_seed(0)
    w_hh = torch.randn(4 * hidden, hidden, generator=gen) * hidden ** -0.5
    h = torch.randn(batch, hidden, generator=gen)
    xw = torch.randn(4, batch, hidden, generator=gen)
    out = torch.empty(4, batch, hidden)
    w_t = w_hh.view(4, hidden, hidden).transpose(1, 2)
    h4 = h.unsqueeze(0).expand(4, batch, hidden)
    dg = torch.randn(batch, 4 * hidden, generator=gen)
    dh = torch.empty(batch, hidden)

    packed_w = _raw_pack(w_hh, batch)
    packed_wt = _raw_pack(w_hh.t().contiguous(), batch)

    def fwd_plain() -> object:
        return torch.baddbmm(xw, h4, w_t, out=out)

    def fwd_packed() -> object:
        product = packed_mm(h, packed_w).view(batch, 4, hidden).transpose(0, 1)
        return torch.add(xw, product, out=out)

    def bwd_plain() -> object:
        return torch.mm(dg, w_hh, out=dh)

    def bwd_packed() -> object:
        return packed_mm(dg, packed_wt)

    torch.testing.assert_close(fwd_packed(), torch.baddbmm(xw, h4, w_t), rtol=1e-4, atol=1e-4)
    f_plain, f_packed = _paired(fwd_plain, fwd_packed, calls, repeats)
    b_plain, b_packed = _paired(bwd_plain, bwd_packed, calls, repeats)
    pack_us = statistics.median(
        _block(lambda: (_raw_pack(w_hh, batch), _raw_pack(w_hh.t().contiguous(), batch)), 3)
        for _ in range(5))
    return {"H": hidden, "B": batch, "fwd plain (us)": f"{f_plain:.0f}",
            "fwd packed (us)": f"{f_packed:.0f}", "fwd packed / plain": f"{f_packed / f_plain:.2f}",
            "bwd plain (us)": f"{b_plain:.0f}", "bwd packed (us)": f"{b_packed:.0f}",
            "bwd packed / plain": f"{b_packed / b_plain:.2f}", "pack both (us)": f"{pack_us:.0f}"}


LAYER_MODES = {"packing off": "0", "packing on": "1", "default rule": None}


def measure_layer(hidden: int, batch: int, steps: int, repeats: int,
                  per_gate: bool = False) -> dict[str, object]:
    """One row: a loop-path layer's forward+backward with packing off / on / by the rule,
    median of ``repeats`` round-robin rounds (after 2 warm-up rounds), ratio to nn.LSTM;
    ``per_gate``: Gal's untied masks (one packed block per gate)."""
    torch.manual_seed(0)
    ours = lrr.LSTM(hidden, hidden, regularizers=[lrr.RecurrentDropout(0.25, per_gate=per_gate)])
    bare = nn.LSTM(hidden, hidden)
    x = torch.randn(steps, batch, hidden, requires_grad=True)
    saved = os.environ.get(ENV_VAR)
    times: dict[str, list[float]] = {"nn.LSTM": [], **{mode: [] for mode in LAYER_MODES}}
    try:
        for round_ in range(repeats + 2):
            for mode in times:
                value = LAYER_MODES.get(mode)
                os.environ.pop(ENV_VAR, None)
                if value is not None:
                    os.environ[ENV_VAR] = value
                module = bare if mode == "nn.LSTM" else ours
                start = time.perf_counter()
                module(x)[0].pow(2).mean().backward()
                if round_ >= 2:
                    times[mode].append(time.perf_counter() - start)
    finally:
        os.environ.pop(ENV_VAR, None)
        if saved is not None:
            os.environ[ENV_VAR] = saved
    base = statistics.median(times["nn.LSTM"])
    row: dict[str, object] = {"H": hidden, "B": batch, "T": steps,
                              "nn.LSTM (ms)": f"{base * 1e3:.1f}"}
    for mode in LAYER_MODES:
        row[f"{mode} / nn.LSTM"] = f"{statistics.median(times[mode]) / base:.2f}x"
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 200, 256, 400, 650, 1150])
    parser.add_argument("--batch", type=int, nargs="+", default=[20, 80])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--layer", action="store_true",
                        help="time a whole loop-path layer (off / on / rule) instead")
    parser.add_argument("--steps", type=int, default=35, help="sequence length with --layer")
    parser.add_argument("--per-gate", action="store_true",
                        help="with --layer: RecurrentDropout(per_gate=True), the untied masks")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not packed_products_available():
        print("the packed products are not available in this torch build: nothing to measure")
        return 1
    header = (f"torch {torch.__version__}, {args.threads} threads, CPU capability "
              f"{_capability()} (packing from H = {min_hidden()})")
    print(header, flush=True)
    rows = []
    for batch in args.batch:
        for hidden in args.hidden:
            rows.append(measure_layer(hidden, batch, args.steps, args.repeats, args.per_gate)
                        if args.layer
                        else measure(hidden, batch, args.calls, args.repeats))
            print(" | ".join(f"{k} {v}" for k, v in rows[-1].items()), flush=True)
    table = markdown_table(rows, list(rows[0]))
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as handle:
            handle.write(f"{header}\n\n{table}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
