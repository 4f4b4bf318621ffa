"""torch.compile vs plain eager for the loop path's gate math (issue 2: "fuse the elementwise
gate math where it pays; measure torch.compile vs plain eager on CPU").

One LSTM layer, T = 35, batch 20, input = hidden = H (Zaremba small 200 / medium 650), one
update-dropout mask per step (so the loop path is needed). One timing = forward + backward of
``out.sum()``. Cases, timed round-robin, median of ``--repeats`` rounds after warm-up:

* ``nn.LSTM`` (oneDNN): the baseline of every ratio; no mask (it cannot take one).
* ``ours (hand backward)``: what the library runs, ``lightning_rnn_reg.rnn.loop.lstm_recurrence``.
* ``eager autograd loop``: input projection hoisted, per step ``h @ W_hh^T`` and the gate math
  in eager PyTorch, backward by autograd.
* ``compiled cell``: the same loop with the per-step gate math (sigmoid / tanh / the masked
  cell update) as one ``torch.compile``-d function (inductor fuses it into one C++ kernel per
  direction); autograd through the loop.
* ``compiled loop`` (``--whole``): ``torch.compile`` of the whole T-step loop (unrolled).

For each compiled case the first call (compilation included) is printed; compile caches are
reset between cases so every figure includes its own compilation.

Usage::

    python benchmarks/loop_compile.py --sizes 200 650 --repeats 20 [--whole]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_rnn_reg.rnn.loop import lstm_recurrence

STEPS, BATCH, WARMUP = 35, 20, 3


def _cell(gates: Tensor, c_prev: Tensor, update: Tensor) -> tuple[Tensor, Tensor]:
    """``c = f * c_prev + i * (g * update)``, ``h = o * tanh(c)`` from the gate pre-activations."""
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c_prev + torch.sigmoid(i) * (torch.tanh(g) * update)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


def _loop(cell: Callable[..., tuple[Tensor, Tensor]], xw: Tensor, w_hh: Tensor, h: Tensor,
          c: Tensor, update: Tensor) -> Tensor:
    outs = []
    for t in range(xw.shape[0]):
        gates = torch.addmm(xw[t], h, w_hh.t())
        h, c = cell(gates, c, update[t])
        outs.append(h)
    return torch.stack(outs)


def _cases(hidden: int, whole: bool) -> dict[str, Callable[[], None]]:
    module = nn.LSTM(hidden, hidden)
    x = torch.randn(STEPS, BATCH, hidden, requires_grad=True)
    h0 = torch.zeros(BATCH, hidden, requires_grad=True)
    c0 = torch.zeros(BATCH, hidden, requires_grad=True)
    w_ih, w_hh = module.weight_ih_l0, module.weight_hh_l0
    bias = module.bias_ih_l0 + module.bias_hh_l0
    update = (torch.rand(STEPS, BATCH, hidden) >= 0.25).float() / 0.75
    compiled_cell = torch.compile(_cell, dynamic=False)
    compiled_loop = torch.compile(lambda xw, w, h, c, u: _loop(_cell, xw, w, h, c, u),
                                  dynamic=False)

    def run_nn() -> None:
        out, _ = module(x, (h0[None], c0[None]))
        out.sum().backward()

    def run_ours() -> None:
        out, _, _ = lstm_recurrence(F.linear(x, w_ih, bias), w_hh, h0, c0, update_mask=update)
        out.sum().backward()

    def loop_with(cell_or_loop: Callable[..., Tensor], is_loop: bool) -> Callable[[], None]:
        def run() -> None:
            xw = F.linear(x, w_ih, bias)
            if is_loop:
                out = cell_or_loop(xw, w_hh, h0, c0, update)
            else:
                out = _loop(cell_or_loop, xw, w_hh, h0, c0, update)
            out.sum().backward()

        return run

    cases = {"nn.LSTM (no mask)": run_nn, "ours (hand backward)": run_ours,
             "eager autograd loop": loop_with(_cell, False),
             "compiled cell": loop_with(compiled_cell, False)}
    if whole:
        cases["compiled loop"] = loop_with(compiled_loop, True)
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 650])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--whole", action="store_true", help="also compile the whole loop")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, T={STEPS}, B={BATCH}, "
          f"median of {args.repeats} after {WARMUP} warm-up rounds, round-robin")
    print(f"{'H':>4}  {'case':<24} {'first call (s)':>14} {'median ms':>10} {'ratio':>6}")
    for hidden in args.sizes:
        torch._dynamo.reset()
        cases = _cases(hidden, args.whole)
        first: dict[str, float] = {}
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            first[name] = time.perf_counter() - start
        times: dict[str, list[float]] = {name: [] for name in cases}
        for round_ in range(WARMUP + args.repeats):
            for name, fn in cases.items():
                start = time.perf_counter()
                fn()
                if round_ >= WARMUP:
                    times[name].append(time.perf_counter() - start)
        medians = {name: statistics.median(v) for name, v in times.items()}
        base = medians["nn.LSTM (no mask)"]
        for name, value in medians.items():
            print(f"{hidden:>4}  {name:<24} {first[name]:14.2f} {value * 1e3:10.2f} "
                  f"{value / base:6.2f}")


if __name__ == "__main__":
    main()
