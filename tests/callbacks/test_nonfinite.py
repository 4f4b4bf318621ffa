"""NonFiniteGuard in real fits: nan losses and inf gradients skip the step (weights and optimizer
state untouched, with clipping, momentum and NT-ASGD's averaged SGD), are counted and logged,
stop training after ``max_consecutive`` in a row, and never reach a saved checkpoint."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

import lightning_rnn_reg as lrr
from lightning_rnn_reg.callbacks import NonFiniteError, NonFiniteGuard
from lightning_rnn_reg.callbacks.nonfinite import nonfinite_tensors
from lightning_rnn_reg.data import TextCorpus


class PoisonedLM(lrr.LanguageModel):
    """A language model whose loss is nan (``poison_loss``) or whose first gradient is inf
    (``poison_grad``) at the given optimizer steps."""

    poison_loss: frozenset[int] = frozenset()
    poison_grad: frozenset[int] = frozenset()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = super().training_step(batch, batch_idx)
        return loss * float("nan") if self.global_step in self.poison_loss else loss

    def on_after_backward(self) -> None:
        if self.global_step in self.poison_grad:
            next(self.parameters()).grad[0, 0] = float("inf")


class StepProbe(L.Callback):
    """Records, per optimizer step, whether the weights and the optimizer state changed."""

    def __init__(self) -> None:
        self.changed: list[bool] = []
        self.state_changed: list[bool] = []
        self.optimizers: list[type] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._weights = [p.detach().clone() for p in pl_module.parameters()]
        self._state = _state_tensors(trainer.optimizers[0])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = list(pl_module.parameters())
        self.changed.append(any(not torch.equal(a, b) for a, b in zip(self._weights, now,
                                                                      strict=True)))
        state = _state_tensors(trainer.optimizers[0])
        self.state_changed.append(len(state) != len(self._state) or any(
            not torch.equal(a, b) for a, b in zip(self._state, state, strict=True)))
        self.optimizers.append(type(trainer.optimizers[0]))


def _state_tensors(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [value.detach().clone() for state in optimizer.state.values()
            for value in state.values() if isinstance(value, torch.Tensor)]


def _fit(data: TextCorpus, callbacks: Iterable[L.Callback], root: Path, max_epochs: int = 1,
         poison_loss: Iterable[int] = (), poison_grad: Iterable[int] = (),
         **model_kw: Any) -> tuple[PoisonedLM, L.Trainer]:
    L.seed_everything(0, verbose=False)
    args: dict[str, Any] = {"embedding_dim": 8, "hidden_size": 8, "num_layers": 1, "lr": 1.0,
                            "momentum": 0.9}
    args.update(model_kw)
    model = PoisonedLM(data.vocab_size, **args)
    model.poison_loss, model.poison_grad = frozenset(poison_loss), frozenset(poison_grad)
    callbacks = list(callbacks)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0,
                        enable_checkpointing=any(isinstance(cb, ModelCheckpoint)
                                                 for cb in callbacks),
                        limit_val_batches=2, max_epochs=max_epochs, gradient_clip_val=0.5,
                        default_root_dir=str(root), callbacks=callbacks)
    trainer.fit(model, datamodule=data)
    return model, trainer


@pytest.fixture
def data(tiny_corpus: Path) -> TextCorpus:
    return TextCorpus(str(tiny_corpus), batch_size=4, eval_batch_size=2, bptt=10)


def _assert_finite(model: torch.nn.Module) -> None:
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())


def test_nan_loss_and_inf_gradient_steps_leave_weights_and_momentum_untouched(data, tmp_path):
    probe = StepProbe()
    model, trainer = _fit(data, [probe], tmp_path, poison_loss={2, 3}, poison_grad={6})
    assert probe.changed == [step not in {2, 3, 6} for step in range(10)]
    assert probe.state_changed == [step not in {2, 3, 6} for step in range(10)]
    _assert_finite(model)


def test_skipped_steps_are_counted_and_logged(data, tmp_path):
    guard = NonFiniteGuard(max_consecutive=3)
    _, trainer = _fit(data, [guard], tmp_path, poison_loss={2, 3}, poison_grad={6})
    assert (guard.skipped, guard.consecutive) == (3, 0)
    assert float(trainer.callback_metrics["train/skipped_steps"]) == 3.0


def test_training_stops_after_max_consecutive_bad_steps_with_a_clear_message(data, tmp_path):
    probe = StepProbe()
    with pytest.raises(NonFiniteError, match=r"nan/inf in 3 optimizer steps in a row "
                                             r"\(max_consecutive=3; 3 skipped"):
        _fit(data, [NonFiniteGuard(max_consecutive=3), probe], tmp_path,
             poison_loss=range(4, 100))
    assert probe.changed == [True] * 4 + [False] * 2  # the 3rd bad step raised before its end


def test_weights_stay_finite_when_stopped(data, tmp_path):
    L.seed_everything(0, verbose=False)
    model = PoisonedLM(data.vocab_size, embedding_dim=8, hidden_size=8, num_layers=1)
    model.poison_loss = frozenset(range(1, 100))
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, max_epochs=1,
                        callbacks=[NonFiniteGuard(max_consecutive=2)])
    with pytest.raises(NonFiniteError):
        trainer.fit(model, datamodule=data)
    _assert_finite(model)


def test_checkpoints_saved_after_bad_steps_hold_only_finite_numbers(data, tmp_path):
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=3,
                                  save_top_k=-1)
    _fit(data, [checkpoints], tmp_path, poison_loss={1, 2, 4, 5}, poison_grad={7})
    saved = sorted((tmp_path / "ckpt").glob("*.ckpt"))
    assert len(saved) == 3
    for path in saved:
        checkpoint = torch.load(path, weights_only=True)
        assert list(nonfinite_tensors({k: checkpoint[k] for k in
                                       ("state_dict", "optimizer_states")})) == []


def test_a_checkpoint_with_nan_weights_is_refused_and_not_written(data, tmp_path):
    model, trainer = _fit(data, [], tmp_path)
    with torch.no_grad():
        model.decoder.bias[0] = float("nan")
    path = tmp_path / "bad.ckpt"
    with pytest.raises(NonFiniteError, match=r"refusing to save .* state_dict\.decoder\.bias"):
        trainer.save_checkpoint(path)
    assert not path.exists()


def test_the_guard_is_on_by_default_once(data, tmp_path):
    _, trainer = _fit(data, [], tmp_path, poison_loss={1})
    guards = [cb for cb in trainer.callbacks if isinstance(cb, NonFiniteGuard)]
    assert len(guards) == 1 and guards[0].skipped == 1


def test_a_guard_given_to_the_trainer_replaces_the_default(data, tmp_path):
    mine = NonFiniteGuard(max_consecutive=7)
    _, trainer = _fit(data, [mine], tmp_path, poison_loss={1})
    guards = [cb for cb in trainer.callbacks if isinstance(cb, NonFiniteGuard)]
    assert guards == [mine] and mine.skipped == 1


def _stalling_corpus(root: Path) -> TextCorpus:
    """Validation loss only rises (see tests/tasks/test_language_model.py): NT-ASGD with
    ``nonmono=1`` switches to averaged SGD after the 3rd epoch (5 steps each)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.txt").write_text(" a b c d \n" * 20 + " z \n")
    (root / "valid.txt").write_text(" z z z z \n" * 4)
    (root / "test.txt").write_text(" z z z z \n" * 4)
    return TextCorpus(root, batch_size=2, eval_batch_size=2, bptt=10)


def test_bad_steps_are_skipped_before_and_after_the_nt_asgd_switch(tmp_path):
    probe = StepProbe()
    bad = {3, 17, 18}
    model, trainer = _fit(_stalling_corpus(tmp_path / "corpus"), [probe], tmp_path,
                          max_epochs=5, poison_loss=bad, optimizer="nt_asgd", lr=5.0,
                          momentum=0.0, nonmono=1)
    nt_asgd = [cb for cb in trainer.callbacks if isinstance(cb, lrr.callbacks.NTASGD)]
    assert nt_asgd[0].averaging and probe.optimizers[16] is torch.optim.ASGD
    assert probe.changed == [step not in bad for step in range(25)]
    assert [probe.state_changed[s] for s in sorted(bad)] == [False] * len(bad)
    _assert_finite(model)


def test_counts_round_trip_through_the_callback_state():
    guard = NonFiniteGuard(4)
    guard.skipped, guard.consecutive = 5, 2
    restored = NonFiniteGuard(4)
    restored.load_state_dict(guard.state_dict())
    assert (restored.skipped, restored.consecutive) == (5, 2)
