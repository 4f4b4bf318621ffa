"""Fixtures for the callback tests: a tiny corpus, a small regularized language model and a
quiet CPU trainer, so that each real fit takes a second or two."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import pytest

import lightning_rnn_reg as lrr
from lightning_rnn_reg.data import TextCorpus

WORDS = ["the", "cat", "sat", "on", "a", "mat", "and", "a", "dog", "saw", "it"]
BATCH, EVAL_BATCH, BPTT = 4, 2, 10  # 400 train tokens -> 100 per stream -> 10 windows/epoch


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_thread: None) -> None:
    """Every callback test runs on one torch thread (see ``tests/conftest.py``)."""


def write_tiny_corpus(root: Path) -> Path:
    """train / valid / test text cycling through a few words (400 / 80 / 80 tokens)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, lines in (("train.txt", 80), ("valid.txt", 16), ("test.txt", 16)):
        text = "".join(" ".join(WORDS[(i + j) % len(WORDS)] for j in range(4)) + "\n"
                       for i in range(lines))
        (root / name).write_text(text)
    return root


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_corpus(tmp_path_factory.mktemp("tiny_corpus"))


def _data(corpus: Path, batch_size: int = BATCH) -> TextCorpus:
    return TextCorpus(str(corpus), batch_size=batch_size, eval_batch_size=EVAL_BATCH, bptt=BPTT)


def _model(vocab_size: int, regularizers: list[lrr.Regularizer], size: int = 8,
               ) -> lrr.LanguageModel:
    return lrr.LanguageModel(vocab_size, embedding_dim=size, hidden_size=size, num_layers=2,
                             tie_weights=False, lr=1.0, regularizers=regularizers)


def _trainer(root: Path | str, callbacks: list[L.Callback], **kw: Any) -> L.Trainer:
    args: dict[str, Any] = {"accelerator": "cpu", "devices": 1, "logger": False,
                            "enable_checkpointing": False, "enable_progress_bar": False,
                            "enable_model_summary": False, "limit_val_batches": 2,
                            "num_sanity_val_steps": 1, "default_root_dir": str(root)}
    args.update(kw)
    return L.Trainer(callbacks=callbacks, **args)


@pytest.fixture(scope="session")
def make_lm(tiny_corpus: Path) -> Callable[..., tuple[lrr.LanguageModel, TextCorpus]]:
    """``make_lm(regularizers, size=8)``: a freshly seeded model and the tiny corpus."""

    def make(regularizers: list[lrr.Regularizer], size: int = 8, seed: int = 0
             ) -> tuple[lrr.LanguageModel, TextCorpus]:
        L.seed_everything(seed, verbose=False)
        data = _data(tiny_corpus)
        return _model(data.vocab_size, regularizers, size), data

    return make


@pytest.fixture(scope="session")
def quiet_trainer() -> Callable[..., L.Trainer]:
    """``quiet_trainer(root, callbacks, **trainer_kwargs)``: CPU, no logger or checkpoints,
    validation on 2 batches."""
    return _trainer
