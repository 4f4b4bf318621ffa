"""ScaleLRByWindow: each step's lr is ``base * window length / bptt`` (Merity et al. 2017),
the base rate is back after the step and is the one logged, and its state resumes."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import pytest
import torch
from torch import nn

import lightning_rnn_reg as lrr
from lightning_rnn_reg.callbacks import ScaleLRByWindow
from lightning_rnn_reg.callbacks.variable_bptt import window_length
from lightning_rnn_reg.data import LMBatch, TextCorpus
from tests.callbacks.conftest import write_tiny_corpus

BPTT = 10


def _trainer_with(lrs: tuple[float, ...]) -> Any:
    params = [nn.Parameter(torch.zeros(2)) for _ in lrs]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, lrs, strict=True)]
    optimizer = torch.optim.SGD(groups)
    return SimpleNamespace(optimizers=[optimizer])


def _lrs(trainer: Any) -> list[float]:
    return [group["lr"] for group in trainer.optimizers[0].param_groups]


def test_each_group_is_scaled_by_the_window_and_restored_after_the_batch():
    trainer, callback = _trainer_with((2.0, 0.5)), ScaleLRByWindow(bptt=8)
    for length in (4, 12, 8):
        batch = (torch.zeros(length, 3, dtype=torch.long),) * 2
        callback.on_train_batch_start(trainer, None, batch, 0)  # type: ignore[arg-type]
        assert _lrs(trainer) == pytest.approx([2.0 * length / 8, 0.5 * length / 8])
        assert callback.base_lr() == 2.0
        callback.on_train_batch_end(trainer, None, None, batch, 0)  # type: ignore[arg-type]
        assert _lrs(trainer) == [2.0, 0.5] and callback.base_lr() is None


def test_a_batch_cut_short_keeps_the_base_through_the_state_dict():
    trainer, callback = _trainer_with((2.0,)), ScaleLRByWindow(bptt=8)
    callback.on_train_batch_start(trainer, None, torch.zeros(4, 1), 0)  # type: ignore[arg-type]
    restored = ScaleLRByWindow(bptt=8)
    restored.load_state_dict(callback.state_dict())  # saved mid-batch: lr is 1.0 now
    restored.on_train_batch_start(trainer, None, torch.zeros(16, 1), 1)  # type: ignore[arg-type]
    assert _lrs(trainer) == [4.0]  # from the base 2.0, not the scaled 1.0
    restored.on_train_batch_end(trainer, None, None, None, 1)  # type: ignore[arg-type]
    assert _lrs(trainer) == [2.0]
    assert ScaleLRByWindow(8).state_dict() == {"base_lrs": None}
    assert restored.state_key != ScaleLRByWindow(9).state_key


def test_window_length_of_every_batch_form():
    inputs = torch.zeros(7, 2, dtype=torch.long)
    assert window_length(LMBatch(inputs, inputs, 7, 10, 0)) == 7
    assert window_length({"inputs": inputs, "targets": inputs}) == 7
    assert window_length((inputs, inputs)) == 7
    assert window_length(inputs) == 7


def test_bptt_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="ScaleLRByWindow: bptt must be an integer >= 1"):
        ScaleLRByWindow(0)


class LRProbe(L.Callback):
    """Per step: the window length, the lr the optimizer steps with, the logged lr."""

    def __init__(self) -> None:
        self.steps: list[dict[str, float]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.steps.append({"length": window_length(batch)})

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.steps[-1]["stepped"] = optimizer.param_groups[0]["lr"]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.steps[-1]["logged"] = float(trainer.callback_metrics["lr"])


def _fit(root: Path, callbacks: list[L.Callback], **model_kw: Any
         ) -> tuple[lrr.LanguageModel, L.Trainer]:
    L.seed_everything(0, verbose=False)
    data = TextCorpus(write_tiny_corpus(root / "corpus"), batch_size=4, eval_batch_size=2,
                      bptt=BPTT, variable_bptt=True, seed=1)
    model = lrr.LanguageModel(data.vocab_size, embedding_dim=8, hidden_size=8, num_layers=1,
                              lr=2.0, **model_kw)
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False, callbacks=callbacks,
                        enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, num_sanity_val_steps=0,
                        default_root_dir=root)
    trainer.fit(model, datamodule=data)
    return model, trainer


@pytest.fixture(scope="module")
def scaled(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    probe = LRProbe()
    model, trainer = _fit(tmp_path_factory.mktemp("scaled"), [ScaleLRByWindow(BPTT), probe])
    return SimpleNamespace(model=model, trainer=trainer, probe=probe)


def test_a_fit_steps_with_the_window_scaled_lr_and_logs_the_base(scaled):
    steps = scaled.probe.steps
    assert len({step["length"] for step in steps}) > 1  # variable windows
    for step in steps:
        assert step["stepped"] == pytest.approx(2.0 * step["length"] / BPTT)
        assert step["logged"] == 2.0
    assert scaled.trainer.optimizers[0].param_groups[0]["lr"] == 2.0


def test_language_model_bptt_attaches_the_same_callback(scaled, tmp_path):
    probe = LRProbe()
    model, trainer = _fit(tmp_path, [probe], bptt=BPTT)
    assert [type(cb) for cb in trainer.callbacks].count(ScaleLRByWindow) == 1
    assert probe.steps == scaled.probe.steps
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(),
                                                 scaled.model.parameters(), strict=True))
