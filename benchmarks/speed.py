"""Speed of lrr.LSTM with each regularizer, as a ratio to bare nn.LSTM measured in the same run.

Model per configuration: token ids -> nn.Embedding(10000, E) -> LSTM stack ->
``out.pow(2).mean()``, batch 20. Shapes: Zaremba et al. 2014 small (2 x 200, 35 steps) and
medium (2 x 650, 35 steps), one 2-layer module each; AWD-LSTM (Merity 2017: 400 -> 1150 ->
1150 -> 400, 70 steps) as AWD-LSTM stacks it, three 1-layer modules, the activation dropouts
between them (``at="between"`` becomes the output dropout of the lower layers).
One forward+backward per timing; configurations are timed round-robin (A B C ...
A B C ...) so drift of a shared machine hits all of them alike; the median of ``--repeats``
rounds after warm-up is reported, divided by bare nn.LSTM's median.

First-call time (model construction + first forward/backward, compilation if any) comes from
one fresh subprocess per configuration. Memory is the activation memory a forward pass keeps
for backward: the bytes of every distinct tensor storage the autograd graph saves (through
``torch.autograd.graph.saved_tensors_hooks``: oneDNN's workspace, our loop's gate buffers,
masks), plus, on CUDA, the peak allocated bytes.

Usage::

    python benchmarks/speed.py                      # all three shapes, CPU, 2 threads
    python benchmarks/speed.py --shapes small --repeats 30 --markdown speed.md
    python benchmarks/speed.py --markdown speed.md --plot speed.png   # tables and bar chart
    python benchmarks/speed.py --device cuda
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import nn

import lightning_rnn_reg as lrr
from lightning_rnn_reg.report import bar_chart, markdown_table


class Shape(NamedTuple):
    embedding: int
    layers: tuple[int, ...]  # hidden size of each layer
    steps: int
    stacked: bool  # one multi-layer module (else one module per layer, as AWD-LSTM)

    def label(self) -> str:
        if self.stacked:
            return f"{len(self.layers)} x {self.layers[0]}"
        return " -> ".join(str(n) for n in (self.embedding, *self.layers))

    def describe(self) -> str:
        return f"{self.label()}, batch {BATCH}, {self.steps} steps"


SHAPES = {"small": Shape(200, (200, 200), 35, True),
          "medium": Shape(650, (650, 650), 35, True),
          "awd": Shape(400, (1150, 1150, 400), 70, False)}
BATCH, VOCAB = 20, 10000


def _fused_set() -> list[lrr.Regularizer]:
    return [lrr.LockedDropout(0.4, at="input"), lrr.LockedDropout(0.3, at="between"),
            lrr.LockedDropout(0.4, at="output"), lrr.WeightDrop(0.5)]


CONFIGS: dict[str, Callable[[], tuple[list[lrr.Regularizer], float]]] = {
    # name -> (layer regularizers, embedding dropout rate)
    "lrr.LSTM, no regularizer": lambda: ([], 0.0),
    "Locked + Embedding + WeightDrop (fused)": lambda: (_fused_set(), 0.1),
    "RecurrentDropout 0.25 (loop)": lambda: ([lrr.RecurrentDropout(0.25)], 0.0),
    "CellDropout 0.25 (loop)": lambda: ([lrr.CellDropout(0.25)], 0.0),
    "UpdateDropout 0.25 per-step (loop)": lambda: ([lrr.UpdateDropout(0.25)], 0.0),
    "UpdateDropout 0.25 per-sequence (loop)": lambda: (
        [lrr.UpdateDropout(0.25, per_sequence=True)], 0.0),
    "Zoneout c 0.25 h 0.05 (loop)": lambda: ([lrr.Zoneout(cell=0.25, hidden=0.05)], 0.0),
    "all of them together (loop)": lambda: (
        [*_fused_set(), lrr.RecurrentDropout(0.25), lrr.CellDropout(0.1),
         lrr.UpdateDropout(0.25), lrr.Zoneout(cell=0.25, hidden=0.05)], 0.1),
}
BARE = "bare nn.LSTM"


def _layer_regs(regs: list[lrr.Regularizer], index: int, count: int) -> list[lrr.Regularizer]:
    """The regularizers of layer ``index`` of ``count`` one-layer modules (AWD-LSTM's stack):
    input dropout on the first, the between dropout as the output dropout of all but the
    last, the output dropout on the last; the others on every layer."""
    chosen = []
    for reg in regs:
        at = getattr(reg, "at", None)
        if (at == "input" and index == 0) or (at == "output" and index == count - 1):
            chosen.append(reg)
        elif at == "between" and index < count - 1:
            chosen.append(type(reg)(reg.p, at="output"))  # type: ignore[call-arg]
        elif at is None:
            chosen.append(reg)
    return chosen


class _Model(nn.Module):
    def __init__(self, shape: Shape, config: str) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, shape.embedding)
        regs, edrop = CONFIGS[config]() if config != BARE else ([], 0.0)
        self.edrop = lrr.EmbeddingDropout(edrop) if edrop > 0 else None
        inputs = (shape.embedding, *shape.layers[:-1])
        if shape.stacked:
            hidden, count = shape.layers[0], len(shape.layers)
            self.rnns = nn.ModuleList([nn.LSTM(hidden, hidden, count) if config == BARE else
                                       lrr.LSTM(hidden, hidden, count, regularizers=regs)])
        elif config == BARE:
            self.rnns = nn.ModuleList(nn.LSTM(i, h)
                                      for i, h in zip(inputs, shape.layers, strict=True))
        else:
            count = len(shape.layers)
            self.rnns = nn.ModuleList(
                lrr.LSTM(i, h, regularizers=_layer_regs(regs, k, count))
                for k, (i, h) in enumerate(zip(inputs, shape.layers, strict=True)))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.edrop(self.embedding, ids) if self.edrop is not None else self.embedding(ids)
        for rnn in self.rnns:
            x, _ = rnn(x)
        return x.pow(2).mean()


def _step(model: _Model, ids: torch.Tensor, device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    model(ids).backward()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _names() -> list[str]:
    return [BARE, *CONFIGS]


def time_round_robin(shape: Shape, repeats: int, warmup: int, device: str) -> dict[str, float]:
    """Median seconds per forward+backward of every configuration, interleaved."""
    torch.manual_seed(0)
    ids = torch.randint(0, VOCAB, (shape.steps, BATCH), device=device)
    models = {name: _Model(shape, name).to(device).train() for name in _names()}
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(warmup):
        for model in models.values():
            _step(model, ids, device)
    for _ in range(repeats):
        for name, model in models.items():
            model.zero_grad(set_to_none=True)
            times[name].append(_step(model, ids, device))
    return {name: statistics.median(values) for name, values in times.items()}


def _child(shape: Shape, config: str, device: str, threads: int) -> None:
    """Run in a fresh process: first-call time and saved bytes for one configuration."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    ids = torch.randint(0, VOCAB, (shape.steps, BATCH), device=device)
    start = time.perf_counter()
    model = _Model(shape, config).to(device).train()
    _step(model, ids, device)
    first_call = time.perf_counter() - start
    saved = saved_bytes(model, ids)
    gpu_peak = torch.cuda.max_memory_allocated() if device == "cuda" else 0
    print(json.dumps({"first_call_s": first_call, "saved_mib": saved / 2**20,
                      "gpu_peak_mib": gpu_peak / 2**20}))


def saved_bytes(model: _Model, ids: torch.Tensor) -> int:
    """Bytes of the distinct storages that one forward pass saves for backward."""
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = model(ids)
    loss.backward()
    return sum(storages.values())


def first_call_and_memory(shape: str, device: str, threads: int
                          ) -> dict[str, dict[str, float]]:
    results = {}
    for name in _names():
        cmd = [sys.executable, __file__, "--child", name, "--child-shape", shape,
               "--device", device, "--threads", str(threads)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


def _rows(medians: dict[str, float], extra: dict[str, dict[str, float]], device: str
          ) -> list[dict[str, Any]]:
    bare = medians[BARE]
    rows: list[dict[str, Any]] = []
    for name, median in medians.items():
        info = extra.get(name, {})
        memory: float | str = info.get("saved_mib", float("nan"))
        if device == "cuda":
            memory = f"{memory:.1f} / {info.get('gpu_peak_mib', float('nan')):.0f}"
        rows.append({"configuration": name, "median fwd+bwd (ms)": median * 1e3,
                     "ratio to bare nn.LSTM": median / bare,
                     "first call (s)": info.get("first_call_s", float("nan")),
                     _memory_column(device): memory})
    return rows


def _memory_column(device: str) -> str:
    return "saved for backward (MiB)" + (" / GPU peak (MiB)" if device == "cuda" else "")


FORMATS = {"median fwd+bwd (ms)": lambda v: f"{v:.1f}",
           "ratio to bare nn.LSTM": lambda v: f"{v:.2f}x",
           "first call (s)": lambda v: f"{v:.2f}"}


def table(shape: str, rows: list[dict[str, Any]], device: str) -> str:
    """One shape's markdown table (through ``lightning_rnn_reg.report.markdown_table``)."""
    memory = _memory_column(device)
    formats = {**FORMATS, memory: lambda v: v if isinstance(v, str) else f"{v:.1f}"}
    title = f"### {shape}: {SHAPES[shape].describe()} ({device})"
    return f"{title}\n\n{markdown_table(rows, ['configuration', *formats], formats)}"


def plot(rows_by_shape: dict[str, list[dict[str, Any]]], out_png: str, device: str
         ) -> dict[str, dict[str, float]]:
    """Bar chart of each configuration's ratio to bare nn.LSTM, one bar per shape; returns
    the ratios drawn (``lightning_rnn_reg.report.bar_chart``)."""
    names = [str(row["configuration"]) for row in next(iter(rows_by_shape.values()))]
    ratios = {f"{shape} ({SHAPES[shape].label()})": [row["ratio to bare nn.LSTM"] for row in rows]
              for shape, rows in rows_by_shape.items()}
    return bar_chart(names, ratios, out_png, value_label="forward+backward time / bare nn.LSTM",
                     title=f"lrr.LSTM speed, batch {BATCH} ({device})",
                     reference=1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--markdown", help="also write the tables to this file")
    parser.add_argument("--plot", help="also draw the ratios as a bar chart to this PNG file "
                        '(needs matplotlib: pip install "lightning-rnn-reg[report]")')
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-shape", choices=list(SHAPES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(SHAPES[args.child_shape], args.child, args.device, args.threads)
        return
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, device {args.device}, "
          f"oneDNN {torch.backends.mkldnn.is_available()}", flush=True)
    tables, rows_by_shape = [], {}
    for shape in args.shapes:
        medians = time_round_robin(SHAPES[shape], args.repeats, args.warmup, args.device)
        extra = first_call_and_memory(shape, args.device, args.threads)
        rows_by_shape[shape] = _rows(medians, extra, args.device)
        tables.append(table(shape, rows_by_shape[shape], args.device))
        print(tables[-1] + "\n", flush=True)
    if args.markdown:
        with open(args.markdown, "w") as handle:
            handle.write("\n\n".join(tables) + "\n")
    if args.plot:
        plot(rows_by_shape, args.plot, args.device)


if __name__ == "__main__":
    main()
