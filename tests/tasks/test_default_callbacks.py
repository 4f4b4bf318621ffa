"""The callbacks a task attaches to its fits (``configure_callbacks``): a NonFiniteGuard unless
built with ``nonfinite_guard=False``; for the language model NTASGD with
``optimizer="nt_asgd"`` and ScaleLRByWindow with ``bptt``; never one of a type the Trainer
already has."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest

import lightning_rnn_reg as lrr
from lightning_rnn_reg.callbacks import NTASGD, NonFiniteGuard, ScaleLRByWindow
from lightning_rnn_reg.data import TextCorpus
from tests.tasks.conftest import write_pattern_corpus

TASKS = {
    "lm": lambda **kw: lrr.LanguageModel(20, embedding_dim=4, hidden_size=4, num_layers=1,
                                         **kw),
    "tagger": lambda **kw: lrr.SequenceTagger(20, 5, embedding_dim=4, hidden_size=4, **kw),
    "classifier": lambda **kw: lrr.SequenceClassifier(20, 2, embedding_dim=4, hidden_size=4,
                                                      **kw),
}


@pytest.mark.parametrize("task", TASKS)
def test_a_nonfinite_guard_is_attached_unless_switched_off(task):
    assert [type(cb) for cb in TASKS[task]().configure_callbacks()] == [NonFiniteGuard]
    off = TASKS[task](nonfinite_guard=False)
    assert off.configure_callbacks() == []
    assert off.hparams["nonfinite_guard"] is False


def test_the_language_model_attaches_its_optimization_callbacks():
    model = TASKS["lm"](optimizer="nt_asgd", nonmono=3, bptt=7, nonfinite_guard=False)
    nt_asgd, scale = model.configure_callbacks()
    assert isinstance(nt_asgd, NTASGD) and nt_asgd.nonmono == 3
    assert isinstance(scale, ScaleLRByWindow) and scale.bptt == 7


def _fit(root: Path, model: lrr.LanguageModel, callbacks: list[L.Callback]) -> L.Trainer:
    data = TextCorpus(write_pattern_corpus(root, (60, 20, 20)), batch_size=4,
                      eval_batch_size=4, bptt=5)
    model = type(model)(data.vocab_size, **{k: v for k, v in model.hparams.items()
                                            if k not in ("vocab_size", "regularizers")})
    trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, callbacks=callbacks,
                        enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, limit_val_batches=1, default_root_dir=root)
    trainer.fit(model, datamodule=data)
    return trainer


def test_a_fit_with_the_guard_off_has_no_nonfinite_guard(tmp_path):
    trainer = _fit(tmp_path, TASKS["lm"](nonfinite_guard=False), [])
    assert not any(isinstance(cb, NonFiniteGuard) for cb in trainer.callbacks)


def test_the_trainers_callbacks_are_kept_and_not_duplicated(tmp_path):
    mine = [NonFiniteGuard(3), NTASGD(2), ScaleLRByWindow(5)]
    trainer = _fit(tmp_path, TASKS["lm"](optimizer="nt_asgd", bptt=5), list(mine))
    for callback in mine:
        assert [cb for cb in trainer.callbacks if isinstance(cb, type(callback))] == [callback]
