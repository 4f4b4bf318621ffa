"""Trainer(precision="bf16-mixed") fits all three tasks on CPU with fused and loop-path
regularizers; "16-mixed" runs where the hardware has it (CUDA) and as Lightning's bf16 on CPU."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import pytest
import torch

import lightning_rnn_reg as lrr
from lightning_rnn_reg.data import CoNLL2003, TextCorpus
from lightning_rnn_reg.data.sentiment import SentimentDataModule
from tests.tasks.conftest import write_pattern_corpus
from tests.tasks.test_classifier import write_keyword_corpus
from tests.tasks.test_tagger import write_tagging_corpus

SETS = {
    "fused": lambda: [lrr.LockedDropout(0.2, at="input"), lrr.WeightDrop(0.2),
                      lrr.LockedDropout(0.2, at="output")],
    "loop": lambda: [lrr.UpdateDropout(0.2), lrr.RecurrentDropout(0.1),
                     lrr.LockedDropout(0.2, at="between")],
}


def _trainer(root: Path, precision: str, accelerator: str = "cpu") -> L.Trainer:
    return L.Trainer(max_steps=6, limit_val_batches=2, precision=precision,
                     accelerator=accelerator, devices=1, logger=False,
                     enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, num_sanity_val_steps=0,
                     default_root_dir=root)


def _check_fit(model: L.LightningModule, data: L.LightningDataModule, root: Path,
               precision: str, metric: str, accelerator: str = "cpu") -> None:
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    trainer = _trainer(root, precision, accelerator)
    trainer.fit(model, datamodule=data)
    assert trainer.global_step == 6
    changed = [k for k, v in model.state_dict().items()
               if v.is_floating_point() and not torch.equal(v.cpu(), before[k])]
    assert changed, "no weight changed"
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights
    value = float(trainer.validate(model, datamodule=data, verbose=False)[0][metric])
    assert math.isfinite(value)


def _language_model(root: Path, regs):
    data = TextCorpus(write_pattern_corpus(root), batch_size=8, eval_batch_size=4, bptt=10)
    model = lrr.LanguageModel(data.vocab_size, embedding_dim=16, hidden_size=16, num_layers=2,
                              lr=2.0, regularizers=regs)
    return model, data, "val/ppl"


def _tagger(root: Path, regs):
    data = CoNLL2003(write_tagging_corpus(root), "train.txt", "valid.txt", "test.txt",
                     lowercase=True, batch_size=16, eval_batch_size=8)
    model = lrr.SequenceTagger(data.vocab_size, data.num_tags, embedding_dim=16,
                               hidden_size=16, num_layers=2, lr=0.01, regularizers=regs)
    return model, data, "val/f1"


def _classifier(root: Path, regs):
    data = SentimentDataModule(str(write_keyword_corpus(root)), format="tsv", batch_size=32,
                               eval_batch_size=64)
    model = lrr.SequenceClassifier(data.vocab_size, data.num_classes, embedding_dim=16,
                                   hidden_size=16, num_layers=2, lr=0.02, regularizers=regs)
    return model, data, "val/acc"


TASKS = {"LanguageModel": _language_model, "SequenceTagger": _tagger,
         "SequenceClassifier": _classifier}


@pytest.mark.parametrize("regs", list(SETS))
@pytest.mark.parametrize("task", list(TASKS))
def test_bf16_mixed_fits_every_task(task, regs, tmp_path):
    L.seed_everything(0)
    model, data, metric = TASKS[task](tmp_path, SETS[regs]())
    paths = {m.path for m in model.modules() if isinstance(m, (lrr.LSTM, lrr.GRU))}
    assert paths == {regs}
    _check_fit(model, data, tmp_path, "bf16-mixed", metric)


def test_16_mixed_on_cpu_fits_as_lightning_bf16(tmp_path):
    L.seed_everything(0)
    model, data, metric = _language_model(tmp_path, SETS["loop"]())
    with pytest.warns(UserWarning, match="bf16"):
        trainer = _trainer(tmp_path, "16-mixed")
    assert trainer.precision == "bf16-mixed"
    _check_fit(model, data, tmp_path, "16-mixed", metric)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="16-mixed (fp16) needs CUDA")
@pytest.mark.parametrize("regs", list(SETS))
def test_16_mixed_fits_the_language_model_on_cuda(regs, tmp_path):
    L.seed_everything(0)
    model, data, metric = _language_model(tmp_path, SETS[regs]())
    _check_fit(model, data, tmp_path, "16-mixed", metric, accelerator="cuda")
