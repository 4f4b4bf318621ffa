"""Which recurrent dropouts lose long-term memory: the Temporal Order benchmark of Semeniuta
et al. 2016, with an LSTM 1 x 256 and each recurrent scheme at rate 0.5.

Task (:class:`lightning_rnn_reg.data.TemporalOrder`): classify the order of two markers
(A/B) hidden in a sequence of C/D noise, one marker in each of the first two thirds; 4
classes, chance 25%. Fixed training set of 200 batches of 32 and 10,000 test sequences,
generated from the seed; lengths 15 ("short") and 30 ("medium").

Model: symbols -> Embedding(5, 8) -> lrr.LSTM(8, 256) with one recurrent regularizer ->
last state -> Linear(256, 4), trained with Lightning for a fixed number of epochs (Adam, lr
1e-3, gradient norm clipped at 5; Semeniuta's code uses SGD lr 0.1 for up to 1000 epochs,
which does not fit a CPU budget). Reported per scheme and length: test accuracy (eval
mode, the paper's test-time semantics), and training-set accuracy measured twice after
training: with the masks on (train mode, what the optimizer saw) and in eval mode.

Expected from Semeniuta 2016: CellDropout per-sequence learns the training data but fails
at test on medium sequences (its test-time scaling problem); UpdateDropout solves both
lengths. The table reports what comes out, whatever it is.

Usage::

    python benchmarks/memory.py                     # full run: 2 lengths x 7 schemes
    python benchmarks/memory.py --quick             # under 5 minutes on 2 CPU cores
    python benchmarks/memory.py --seeds 1 2 3 --epochs 40 --markdown memory.md --plot memory.png
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass

import torch

import lightning_rnn_reg as lrr
from lightning_rnn_reg.data import TemporalOrder
from lightning_rnn_reg.report import bar_chart, markdown_table

RATE = 0.5
SCHEMES: dict[str, Callable[[], list[lrr.Regularizer]]] = {
    "none": lambda: [],
    "RecurrentDropout per-sequence (Gal)": lambda: [lrr.RecurrentDropout(RATE, per_sequence=True)],
    "RecurrentDropout per-step": lambda: [lrr.RecurrentDropout(RATE, per_sequence=False)],
    "CellDropout per-sequence (Moon)": lambda: [lrr.CellDropout(RATE, per_sequence=True)],
    "CellDropout per-step": lambda: [lrr.CellDropout(RATE, per_sequence=False)],
    "UpdateDropout per-step (Semeniuta)": lambda: [lrr.UpdateDropout(RATE, per_sequence=False)],
    "UpdateDropout per-sequence": lambda: [lrr.UpdateDropout(RATE, per_sequence=True)],
}
LENGTHS = {15: "short", 30: "medium"}


@dataclass(frozen=True)
class Budget:
    """What every run gets: model width, training set, epochs, test set."""

    hidden: int = 256
    embedding: int = 8
    train_batches: int = 200
    batch_size: int = 32
    epochs: int = 30
    test_size: int = 10000
    lr: float = 1e-3


@dataclass
class Result:
    """One run's scores."""

    scheme: str
    length: int
    seed: int
    test_acc: float
    train_acc_masks_on: float
    train_acc_eval: float
    seconds: float


def _accuracy(model: lrr.SequenceClassifier, data: TemporalOrder, split: str,
              train_mode: bool) -> float:
    dataset = data.dataset(split)
    model.train(train_mode)
    correct = 0
    with torch.no_grad():
        for start in range(0, len(dataset), 1000):
            tokens = dataset.ids[start : start + 1000]
            labels = dataset.labels[start : start + 1000]
            correct += int((model(tokens).argmax(-1) == labels).sum())
    model.eval()
    return correct / len(dataset)


def run_one(scheme: str, length: int, seed: int, budget: Budget) -> Result:
    """Train one scheme on one length from one seed and score it."""
    import lightning as L

    torch.set_num_threads(1)
    L.seed_everything(seed, verbose=False)
    data = TemporalOrder(length=length, train_batches=budget.train_batches,
                         batch_size=budget.batch_size, valid_size=500,
                         test_size=budget.test_size, seed=seed)
    model = lrr.SequenceClassifier(
        data.vocab_size, data.num_classes, embedding_dim=budget.embedding,
        hidden_size=budget.hidden, bidirectional=False, pooling="last", lr=budget.lr,
        regularizers=SCHEMES[scheme]())
    trainer = L.Trainer(max_epochs=budget.epochs, gradient_clip_val=5.0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0,
                        limit_val_batches=0, deterministic=True)
    start = time.perf_counter()
    trainer.fit(model, data)
    seconds = time.perf_counter() - start
    return Result(scheme, length, seed, _accuracy(model, data, "test", False),
                  _accuracy(model, data, "train", True), _accuracy(model, data, "train", False),
                  seconds)


def _run_star(args: tuple[str, int, int, Budget]) -> Result:
    return run_one(*args)


def _mean(values: list[float]) -> float | None:
    return statistics.mean(values) if values else None


def rows(results: list[Result]) -> tuple[list[dict[str, object]], list[str]]:
    """One row per scheme: test / train accuracy per length, means over seeds (with the
    standard deviation when there are several seeds)."""
    lengths = sorted({r.length for r in results})
    columns = ["scheme (p = 0.5)"] + [
        f"{LENGTHS.get(n, n)} ({n}): {name}" for n in lengths for name in _COLUMNS.values()]
    table = []
    for scheme in [s for s in SCHEMES if any(r.scheme == s for r in results)]:
        row: dict[str, object] = {"scheme (p = 0.5)": scheme}
        for n in lengths:
            runs = [r for r in results if r.scheme == scheme and r.length == n]
            for key, name in _COLUMNS.items():
                row[f"{LENGTHS.get(n, n)} ({n}): {name}"] = _cell([getattr(r, key) for r in runs])
        table.append(row)
    return table, columns


_COLUMNS = {"test_acc": "test acc", "train_acc_masks_on": "train acc, masks on",
            "train_acc_eval": "train acc, eval"}


def table(results: list[Result], budget: Budget, seeds: list[int]) -> str:
    """Markdown (through :func:`lightning_rnn_reg.report.markdown_table`) and the budget."""
    body, columns = rows(results)
    seconds = sum(r.seconds for r in results)
    return (f"{markdown_table(body, columns)}\n\nLSTM 1 x {budget.hidden}, embedding "
            f"{budget.embedding}, {budget.epochs} epochs of {budget.train_batches} batches x "
            f"{budget.batch_size}, Adam lr {budget.lr}, clip 5; test set {budget.test_size}; "
            f"seeds {seeds} (mean{' ± sd' if len(seeds) > 1 else ''}); training time "
            f"{seconds / 60:.1f} CPU-thread minutes in all.")


def _cell(values: list[float]) -> str | None:
    if not values:
        return None
    if len(values) == 1:
        return f"{100 * values[0]:.1f}%"
    return f"{100 * statistics.mean(values):.1f}% ± {100 * statistics.stdev(values):.1f}"


def plot(results: list[Result], path: str) -> dict[str, dict[str, float]]:
    """Bar chart of mean test accuracy per scheme and length
    (:func:`lightning_rnn_reg.report.bar_chart`); returns what was drawn."""
    lengths = sorted({r.length for r in results})
    schemes = [s for s in SCHEMES if any(r.scheme == s for r in results)]
    groups = {f"length {n}": [_mean([r.test_acc for r in results
                                     if r.scheme == s and r.length == n]) or 0.0
                              for s in schemes] for n in lengths}
    return bar_chart(schemes, groups, path, value_label="test accuracy (chance 0.25)",
                     title="Temporal Order, LSTM 1 x 256, recurrent dropout 0.5",
                     reference=0.25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="small budget (hidden 128, 60 batches, 8 epochs, 2000 test)")
    parser.add_argument("--lengths", nargs="+", type=int, default=list(LENGTHS))
    parser.add_argument("--schemes", nargs="+", default=list(SCHEMES), choices=list(SCHEMES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="runs in parallel, one thread each")
    parser.add_argument("--markdown", help="write the table to this file")
    parser.add_argument("--json", help="write every run's scores to this file")
    parser.add_argument("--plot", help="write a PNG bar chart of test accuracy")
    parser.add_argument("--from-json", help="redraw the table and plot of a --json file "
                        "(no training)")
    args = parser.parse_args()
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        results = [Result(**run) for run in saved["runs"]]
        _write(results, Budget(**saved["budget"]), sorted({r.seed for r in results}), args)
        return
    budget = (Budget(hidden=128, train_batches=60, epochs=8, test_size=2000) if args.quick
              else Budget())
    if args.epochs:
        budget = Budget(**{**asdict(budget), "epochs": args.epochs})
    jobs = [(s, n, seed, budget) for seed in args.seeds for n in args.lengths
            for s in args.schemes]
    start = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        results = []
        for result in pool.map(_run_star, jobs):
            print(f"{result.scheme:40s} length {result.length:3d} seed {result.seed}: test "
                  f"{result.test_acc:.3f}, train (masks on) {result.train_acc_masks_on:.3f}, "
                  f"train (eval) {result.train_acc_eval:.3f}, {result.seconds:.0f} s", flush=True)
            results.append(result)
    print(f"\nwall time {(time.perf_counter() - start) / 60:.1f} min")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"budget": asdict(budget), "runs": [asdict(r) for r in results]}, f,
                      indent=1)
    _write(results, budget, args.seeds, args)


def _write(results: list[Result], budget: Budget, seeds: list[int],
           args: argparse.Namespace) -> None:
    text = table(results, budget, seeds)
    print(f"\n{text}")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
