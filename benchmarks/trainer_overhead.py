"""Tokens per second of LM training in a Lightning Trainer vs a bare PyTorch loop.

The same :class:`~lightning_rnn_reg.LanguageModel` (Zaremba et al. 2014 small: 2 x 200,
embedding 200, 10k words, no dropout), the same PTB batches (20 x 35), the same optimizer
(SGD, lr 20, as ``examples/configs/zaremba_small.yaml``) and clipping (global norm 0.25):

* **bare**: ``zero_grad -> compute_loss -> backward -> clip_grad_norm_ -> step``, the
  carried state detached between windows, as a hand-written PyTorch loop does it;
* **Lightning**: ``Trainer.fit`` of the same model as the CLI runs it (TensorBoard logger,
  checkpointing, the task's default callbacks, progress bar off as in a batch job), timed
  from the start of step ``--skip`` to the end of the last step by a callback, so start-up
  and the first steps are not counted.

Rounds alternate (bare, Lightning, bare, ...) so that a noisy machine hits both alike; the
ratio of the medians is reported. Needs the PTB files (``$LRR_DATA/ptb`` or
``../shared/data/ptb``).

Usage::

    python benchmarks/trainer_overhead.py --rounds 3 --steps 40
    python benchmarks/trainer_overhead.py --profile   # where Lightning's per-step time goes
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils._pytree import tree_map
from torch.utils.data import DataLoader

import lightning_rnn_reg as lrr
from lightning_rnn_reg.data import PennTreebank

BATCH, BPTT, CLIP, LR = 20, 35, 0.25, 20.0


def _data_dir() -> Path:
    root = os.environ.get("LRR_DATA") or str(Path(__file__).resolve().parents[2] / "shared"
                                             / "data")
    return Path(root) / "ptb"


def batches(count: int) -> list[Any]:
    """The first ``count`` training windows of PTB (20 x 35)."""
    data = PennTreebank(str(_data_dir()), batch_size=BATCH, eval_batch_size=BATCH, bptt=BPTT)
    data.setup("fit")
    out = []
    for batch in data.train_dataloader():
        out.append(batch)
        if len(out) == count:
            break
    return out


def model() -> lrr.LanguageModel:
    torch.manual_seed(0)
    return lrr.LanguageModel(vocab_size=10000, embedding_dim=200, hidden_size=200,
                             num_layers=2, tie_weights=False, init_range=0.1,
                             optimizer="sgd", lr=LR)


def bare_loop(data: list[Any], skip: int) -> float:
    """Seconds for the steps after the first ``skip``, in a hand-written loop."""
    net = model().train()
    optimizer = torch.optim.SGD(net.parameters(), lr=LR)
    state = None
    start = 0.0
    for index, batch in enumerate(data):
        if index == skip:
            start = time.perf_counter()
        tokens, targets = batch.inputs, batch.targets
        optimizer.zero_grad(set_to_none=True)
        loss, _, state = net.compute_loss(tokens, targets, state)
        state = tree_map(torch.Tensor.detach, state)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP)
        optimizer.step()
    return time.perf_counter() - start


class _StepTimer(L.Callback):
    def __init__(self, skip: int) -> None:
        self.skip, self.start, self.end = skip, 0.0, 0.0

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step == self.skip:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        self.end = time.perf_counter()


def lightning_fit(data: list[Any], skip: int, profiler: Any = None) -> float:
    """Seconds for the steps after the first ``skip``, in ``Trainer.fit``."""
    timer = _StepTimer(skip)
    with tempfile.TemporaryDirectory() as root:
        trainer = L.Trainer(max_steps=len(data), max_epochs=1, accelerator="cpu", devices=1,
                            gradient_clip_val=CLIP, default_root_dir=root,
                            enable_progress_bar=False, enable_model_summary=False,
                            limit_val_batches=0, num_sanity_val_steps=0, callbacks=[timer],
                            profiler=profiler)
        loader = DataLoader(data, batch_size=None, shuffle=False)
        trainer.fit(model(), train_dataloaders=loader)
    return timer.end - timer.start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=40, help="timed steps per round")
    parser.add_argument("--skip", type=int, default=5, help="untimed first steps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--profile", action="store_true",
                        help="one Lightning round under Lightning's SimpleProfiler")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = batches(args.skip + args.steps)
    tokens = args.steps * BATCH * BPTT
    if args.profile:
        lightning_fit(data, args.skip, profiler="simple")
        return
    bare, lit = [], []
    for round_ in range(args.rounds):
        bare.append(tokens / bare_loop(data, args.skip))
        lit.append(tokens / lightning_fit(data, args.skip))
        print(f"round {round_ + 1}: bare {bare[-1]:.0f} tok/s, Lightning {lit[-1]:.0f} tok/s "
              f"({lit[-1] / bare[-1]:.3f}x)", flush=True)
    b, m = statistics.median(bare), statistics.median(lit)
    print(f"median: bare {b:.0f} tok/s (spread {min(bare):.0f}-{max(bare):.0f}), Lightning "
          f"{m:.0f} tok/s (spread {min(lit):.0f}-{max(lit):.0f}): {m / b:.3f}x")


if __name__ == "__main__":
    main()
