"""Micro-benchmark of the hand-written recurrences (``lightning_rnn_reg.rnn.loop``) against the
fused ``nn.LSTM`` / ``nn.GRU`` kernel (oneDNN on CPU) at the same shapes.

One layer, T = 35 steps, batch B = 20, input = hidden = H in {200, 650} (Zaremba et al. 2014
small / medium). One timing = forward + backward of ``out.sum()`` with the input, weights and
initial state requiring grad. Ours = one ``F.linear`` for the input projection of all steps +
``lstm_recurrence`` / ``gru_recurrence``, with (i) no masks, (ii) a per-step update-dropout
mask, (iii) recurrent-dropout mask + zoneout (``zone_c`` and ``zone_h``; GRU: ``zone_h``).
Masks are drawn once, outside the timing. All variants of a shape are timed round-robin
(``nn``, ours (i), (ii), (iii), ``nn``, ...) so that load from other processes hits them alike;
the median of ``--repeats`` rounds after 3 warm-up rounds is reported with its ratio to the
``nn`` module's median, and the median over rounds of the ratio within each round (more robust
when the load changes during the run).

Usage::

    python benchmarks/loop_micro.py                 # both sizes, 2 threads, 30 rounds
    python benchmarks/loop_micro.py --sizes 200 --repeats 50 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_rnn_reg.rnn.loop import gru_recurrence, lstm_recurrence

STEPS, BATCH, WARMUP = 35, 20, 3


def _dropout_mask(shape: tuple[int, ...], p: float) -> Tensor:
    return torch.bernoulli(torch.full(shape, 1.0 - p)) / (1.0 - p)


def _zone(shape: tuple[int, ...], p: float) -> Tensor:
    return torch.bernoulli(torch.full(shape, p))


def _cases(kind: str, hidden: int) -> dict[str, Callable[[], None]]:
    """name -> one forward+backward; the first entry is the ``nn`` module."""
    module = (nn.LSTM if kind == "LSTM" else nn.GRU)(hidden, hidden)
    x = torch.randn(STEPS, BATCH, hidden, requires_grad=True)
    h0 = torch.zeros(1, BATCH, hidden, requires_grad=True)
    c0 = torch.zeros(1, BATCH, hidden, requires_grad=True)
    w_ih, w_hh = module.weight_ih_l0, module.weight_hh_l0
    b_ih, b_hh = module.bias_ih_l0, module.bias_hh_l0
    step, seq = (STEPS, BATCH, hidden), (1, BATCH, hidden)
    mask_sets = {
        "ours, no masks": {},
        "ours, update mask (per step)": {"update_mask": _dropout_mask(step, 0.25)},
        "ours, h_mask + zoneout": {"h_mask": _dropout_mask(seq, 0.25),
                                   "zone_h": _zone(step, 0.05)},
    }
    if kind == "LSTM":
        mask_sets["ours, h_mask + zoneout"]["zone_c"] = _zone(step, 0.5)

    def run_nn() -> None:
        out, _ = module(x, (h0, c0)) if kind == "LSTM" else module(x, h0)
        out.sum().backward()

    def make_ours(masks: dict[str, Tensor]) -> Callable[[], None]:
        def run() -> None:
            if kind == "LSTM":
                xw = F.linear(x, w_ih, b_ih + b_hh)
                out, _, _ = lstm_recurrence(xw, w_hh, h0[0], c0[0], **masks)
            else:
                xw = F.linear(x, w_ih, b_ih)
                out, _ = gru_recurrence(xw, w_hh, b_hh, h0[0], **masks)
            out.sum().backward()

        return run

    cases = {f"nn.{kind}": run_nn}
    cases.update({name: make_ours(masks) for name, masks in mask_sets.items()})
    return cases


def _time_round_robin(
    cases: dict[str, Callable[[], None]], repeats: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Median time of each case, and median over rounds of its ratio to the first case."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for round_ in range(WARMUP + repeats):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            if round_ >= WARMUP:
                times[name].append(elapsed)
    base = times[next(iter(cases))]
    ratios = {name: statistics.median(v / b for v, b in zip(values, base, strict=True))
              for name, values in times.items()}
    return {name: statistics.median(values) for name, values in times.items()}, ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 650])
    parser.add_argument("--kinds", nargs="+", default=["LSTM", "GRU"])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, T={STEPS}, B={BATCH}, "
          f"median of {args.repeats} (after {WARMUP} warm-up), round-robin")
    print("ratio = median time / median time of nn; per-round = median over rounds of the "
          "ratio within the round")
    print(f"{'H':>4}  {'case':<30} {'ms':>8} {'ratio':>6} {'per-round':>9}")
    for hidden in args.sizes:
        for kind in args.kinds:
            medians, ratios = _time_round_robin(_cases(kind, hidden), args.repeats)
            base = medians[f"nn.{kind}"]
            for name, value in medians.items():
                print(f"{hidden:>4}  {name:<30} {value * 1e3:8.2f} {value / base:6.2f} "
                      f"{ratios[name]:9.2f}")


if __name__ == "__main__":
    main()
