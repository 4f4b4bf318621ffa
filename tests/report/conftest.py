"""Fixtures for the report tests: two short real fits of a tiny language model that log to
TensorBoard (validation every epoch, curriculum dropout so the rates move, the regularizer
monitor), read back by the report; and a helper that writes synthetic event files."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger

import lightning_rnn_reg as lrr
from lightning_rnn_reg.data import TextCorpus

EPOCHS, TRAIN_BATCHES, GAMMA = 3, 4, 0.3
RUNS: dict[str, tuple[float, Callable[[], list[lrr.Regularizer]]]] = {
    # folder -> (lr, regularizers): the second run has no WeightDrop
    "run_lr1": (1.0, lambda: [lrr.LockedDropout(0.4, at="input"), lrr.WeightDrop(0.2)]),
    "run_lr3": (3.0, lambda: [lrr.LockedDropout(0.2, at="input")]),
}


def _write_counting_corpus(root: Path) -> Path:
    """Lines counting up in words, so the tiny model has something to learn."""
    numbers = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    root.mkdir(parents=True, exist_ok=True)
    for split, lines in (("train", 60), ("valid", 12), ("test", 12)):
        text = "\n".join(" ".join(numbers[(k + i) % 10] for i in range(5)) for k in range(lines))
        (root / f"{split}.txt").write_text(text + "\n")
    return root


def _fit(root: Path, corpus: Path, lr: float, regularizers: list[lrr.Regularizer]) -> None:
    L.seed_everything(0, verbose=False)
    data = TextCorpus(str(corpus), batch_size=4, eval_batch_size=2, bptt=8)
    model = lrr.LanguageModel(data.vocab_size, embedding_dim=8, hidden_size=8, num_layers=1,
                              tie_weights=False, lr=lr, regularizers=regularizers)
    trainer = L.Trainer(
        accelerator="cpu", devices=1, max_epochs=EPOCHS, limit_train_batches=TRAIN_BATCHES,
        limit_val_batches=2, num_sanity_val_steps=0, log_every_n_steps=1,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        logger=TensorBoardLogger(save_dir=str(root)), default_root_dir=str(root),
        callbacks=[lrr.CurriculumDropout(GAMMA), lrr.RegularizerMonitor(every_n_steps=1)])
    trainer.fit(model, datamodule=data)


@pytest.fixture(scope="package")
def real_runs(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """``root`` holding ``run_lr1/`` and ``run_lr3/`` (each ``lightning_logs/version_0``
    with event files and ``hparams.yaml``), their ``dirs``, and the ``epochs`` and curriculum
    ``gamma`` they ran with."""
    root = tmp_path_factory.mktemp("report_runs")
    corpus = _write_counting_corpus(root / "corpus")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models: fastest so, and no oversubscription
    try:
        for name, (lr, regularizers) in RUNS.items():
            _fit(root / name, corpus, lr, regularizers())
    finally:
        torch.set_num_threads(threads)
    return SimpleNamespace(root=root, dirs=[root / name for name in RUNS], epochs=EPOCHS,
                           gamma=GAMMA)


def write_events(folder: Path, scalars: Mapping[str, Sequence[tuple[int, float]]]) -> Path:
    """Synthetic event file: ``tag -> [(step, value), ...]`` written with TensorBoard's
    writer (through torch) into ``folder``."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(folder))
    for tag, points in scalars.items():
        for step, value in points:
            writer.add_scalar(tag, value, step)
    writer.close()
    return folder


@pytest.fixture
def events_writer() -> Callable[[Path, Mapping[str, Sequence[tuple[int, float]]]], Path]:
    """:func:`write_events`, for tests that need event files but no training."""
    return write_events
