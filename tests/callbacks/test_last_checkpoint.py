"""LastCheckpoint: last.ckpt after each epoch and every N steps, and on Ctrl-C at the next
step boundary (then the fit stops with Lightning's interrupt handling)."""

from __future__ import annotations

import os
import signal

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_rnn_reg.callbacks import LastCheckpoint


class _Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(3, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).square().mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _loader(n: int = 12) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(n, 3, generator=g)), batch_size=1)


class _Steps(Callback):
    """Record the global step after every saved checkpoint and every batch."""

    def __init__(self) -> None:
        self.saved: list[int] = []

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        self.saved.append(checkpoint["global_step"])


def _trainer(tmp_path, *callbacks, **kw) -> L.Trainer:
    return L.Trainer(default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                     enable_model_summary=False, callbacks=list(callbacks), **kw)


def test_saves_every_n_steps_and_at_epoch_end(tmp_path):
    steps = _Steps()
    trainer = _trainer(tmp_path, LastCheckpoint(every_n_train_steps=5), steps, max_epochs=1)
    trainer.fit(_Tiny(), _loader(12))
    assert steps.saved == [5, 10, 12]
    assert os.listdir(tmp_path / "checkpoints") == ["last.ckpt"]  # no other file kept


def test_fit_with_ckpt_path_last_finds_it(tmp_path):
    _trainer(tmp_path, LastCheckpoint(), max_epochs=1).fit(_Tiny(), _loader(6))
    trainer = _trainer(tmp_path, LastCheckpoint(), max_epochs=2)
    trainer.fit(_Tiny(), _loader(6), ckpt_path="last")
    assert trainer.global_step == 12


class _InterruptAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGINT)  # arrives while this step runs


def test_first_sigint_finishes_the_step_saves_and_exits_1(tmp_path):
    # A shell's background job starts with SIGINT ignored: begin from Python's own handler
    # whatever launched pytest, and put the launcher's back afterwards.
    launcher = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _sigint_run(tmp_path)
    finally:
        signal.signal(signal.SIGINT, launcher)


def _sigint_run(tmp_path):
    steps = _Steps()
    trainer = _trainer(tmp_path, _InterruptAt(4), LastCheckpoint(every_n_train_steps=0), steps,
                       max_epochs=1)
    with pytest.raises(SystemExit) as stopped:
        trainer.fit(_Tiny(), _loader(12))
    assert stopped.value.code == 1
    assert steps.saved == [5]  # the step in flight (the 5th) finished, then last.ckpt
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == 5
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_handler_is_restored_after_a_normal_fit(tmp_path):
    before = signal.getsignal(signal.SIGINT)
    _trainer(tmp_path, LastCheckpoint(), max_epochs=1).fit(_Tiny(), _loader(3))
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.parametrize("bad", [-1, 2.5, True])
def test_bad_interval_raises(bad):
    with pytest.raises(ValueError, match="every_n_train_steps"):
        LastCheckpoint(every_n_train_steps=bad)
