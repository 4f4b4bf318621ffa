"""NTASGD: the non-monotone trigger, ASGD in place of the optimizer from then on, evaluation
with the running average (and the live weights back after), its state in checkpoints (old
``lrr`` keys included) and an exact resume after the switch."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn

import lightning_rnn_reg as lrr
from lightning_rnn_reg.callbacks import NTASGD
from lightning_rnn_reg.data import TextCorpus

STEPS_PER_EPOCH, EPOCHS = 5, 5


def _reference_switch(losses: list[float], nonmono: int) -> int | None:
    """The index of the validation that switches: the first k > n with v_k worse than the
    best of v_0 .. v_{k-n-1}."""
    for k in range(nonmono + 1, len(losses)):
        if losses[k] > min(losses[: k - nonmono]):
            return k
    return None


class _Fake(SimpleNamespace):
    def print(self, *args: Any) -> None:
        self.printed.append(" ".join(map(str, args)))


def _fake_run(lr: float = 3.0, weight_decay: float = 0.1) -> tuple[Any, Any]:
    param = nn.Parameter(torch.zeros(3))
    sgd = torch.optim.SGD([param], lr=lr, weight_decay=weight_decay)
    strategy = SimpleNamespace(optimizers=[sgd])
    trainer = SimpleNamespace(sanity_checking=False, state=SimpleNamespace(fn="fit"),
                              callback_metrics={}, strategy=strategy, current_epoch=0)
    trainer.optimizers = strategy.optimizers
    module = _Fake(printed=[], parameters=lambda: iter([param]),
                   use_eval_weights=lambda on: False)
    return trainer, module


def _validate(callback: NTASGD, trainer: Any, module: Any, loss: float) -> None:
    trainer.callback_metrics = {"val/loss": torch.tensor(loss)}
    callback.on_validation_epoch_end(trainer, module)
    trainer.optimizers = trainer.strategy.optimizers
    trainer.current_epoch += 1


@pytest.mark.parametrize("nonmono", [1, 2, 5])
@pytest.mark.parametrize("seed", range(6))
def test_it_switches_exactly_when_the_non_monotone_condition_first_holds(nonmono, seed):
    rng = random.Random(seed)
    losses = [rng.uniform(1.0, 2.0) - 0.05 * k for k in range(15)]  # noisy, slowly falling
    callback, (trainer, module) = NTASGD(nonmono), _fake_run()
    switched_at = None
    for k, loss in enumerate(losses):
        _validate(callback, trainer, module, loss)
        if callback.averaging and switched_at is None:
            switched_at = k
    assert switched_at == _reference_switch(losses, nonmono)
    assert callback.val_losses == pytest.approx(losses)
    if switched_at is None:
        assert isinstance(trainer.strategy.optimizers[0], torch.optim.SGD)
        return
    asgd = trainer.strategy.optimizers[0]
    assert isinstance(asgd, torch.optim.ASGD)
    group = asgd.param_groups[0]
    assert (group["lr"], group["t0"], group["lambd"], group["weight_decay"]) == (3.0, 0, 0.0, 0.1)
    assert module.printed == [f"NT-ASGD: switching to averaged SGD at epoch {switched_at}"]


def test_a_rising_loss_switches_after_nonmono_plus_two_validations():
    callback, (trainer, module) = NTASGD(nonmono=2), _fake_run()
    for k, loss in enumerate([1.0, 1.1, 1.2, 1.3]):
        _validate(callback, trainer, module, loss)
        assert callback.averaging is (k == 3)


def test_sanity_checks_and_other_stages_are_not_watched():
    callback, (trainer, module) = NTASGD(nonmono=1), _fake_run()
    trainer.sanity_checking = True
    _validate(callback, trainer, module, 1.0)
    trainer.sanity_checking, trainer.state.fn = False, "validate"
    _validate(callback, trainer, module, 1.0)
    assert callback.val_losses == []


def test_nonmono_must_be_a_positive_integer():
    with pytest.raises(ValueError, match="NTASGD: nonmono must be an integer >= 1, got 0"):
        NTASGD(0)


def test_state_dict_round_trips_and_old_lrr_keys_load():
    callback = NTASGD(3)
    callback.averaging, callback.val_losses = True, [2.0, 1.5, 1.7]
    restored = NTASGD(3)
    restored.load_state_dict(callback.state_dict())
    assert (restored.averaging, restored.val_losses) == (True, [2.0, 1.5, 1.7])
    assert restored.state_key == callback.state_key != NTASGD(4).state_key
    legacy = NTASGD(3)
    legacy.on_load_checkpoint(None, None, {"callbacks": {}, "lrr": {  # type: ignore[arg-type]
        "averaging": True, "val_losses": [3.0, 2.0]}})
    assert (legacy.averaging, legacy.val_losses) == (True, [3.0, 2.0])


def test_a_module_without_evaluation_weights_is_refused():
    with pytest.raises(TypeError, match="NTASGD needs a lightning-rnn-reg task"):
        NTASGD().setup(None, L.LightningModule(), "fit")  # type: ignore[arg-type]


def test_a_learning_rate_scheduler_is_refused(tmp_path):
    data = _stalling_corpus(tmp_path / "corpus")
    model = _model(data.vocab_size, lr_schedule="zaremba", lr_decay=2.0)
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, callbacks=[NTASGD()],
                        enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, default_root_dir=tmp_path)
    with pytest.raises(ValueError, match="use no learning-rate scheduler"):
        trainer.fit(model, datamodule=data)


# ------------------------------------------------------------------------ real fits
def _stalling_corpus(root: Path) -> TextCorpus:
    """Validation loss only rises: nonmono=1 switches after the 3rd epoch (5 steps each)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.txt").write_text(" a b c d \n" * 20 + " z \n")
    (root / "valid.txt").write_text(" z z z z \n" * 4)
    (root / "test.txt").write_text(" z z z z \n" * 4)
    return TextCorpus(root, batch_size=2, eval_batch_size=2, bptt=10)


def _params(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def _ax(trainer: L.Trainer, module: nn.Module) -> dict[str, torch.Tensor]:
    state = trainer.optimizers[0].state
    return {name: state[p]["ax"].clone() for name, p in module.named_parameters()
            if "ax" in state.get(p, {})}


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)


class EvalProbe(L.Callback):
    """The weights before, during and after each fit validation, and the averages before."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def on_validation_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.records.append({"live": _params(pl_module), "ax": _ax(trainer, pl_module)})

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx,
                                  dataloader_idx=0) -> None:
        if not trainer.sanity_checking and batch_idx == 0:
            self.records[-1]["during"] = _params(pl_module)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.records[-1]["after"] = _params(pl_module)


def _model(vocab_size: int, **kw: Any) -> lrr.LanguageModel:
    args: dict[str, Any] = {"embedding_dim": 8, "hidden_size": 8, "num_layers": 1, "lr": 5.0,
                            "regularizers": [lrr.LockedDropout(0.2, at="output")]}
    return lrr.LanguageModel(vocab_size, **{**args, **kw})


def _fit(root: Path, data: TextCorpus, model: lrr.LanguageModel, callbacks: list[L.Callback],
         ckpt_path: str | None = None, epochs: int = EPOCHS) -> L.Trainer:
    L.seed_everything(0, verbose=False)
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, default_root_dir=root, callbacks=callbacks)
    trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
    return trainer


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Five epochs with an explicit NTASGD(nonmono=1) and optimizer="sgd", a checkpoint after
    every step."""
    root = tmp_path_factory.mktemp("nt_asgd_callback")
    data = _stalling_corpus(root / "corpus")
    L.seed_everything(0, verbose=False)
    model, probe = _model(data.vocab_size), EvalProbe()
    saver = ModelCheckpoint(dirpath=root / "ckpt", filename="{step}", save_top_k=-1,
                            every_n_train_steps=1)
    callback = NTASGD(nonmono=1)
    trainer = _fit(root, data, model, [callback, probe, saver])
    return SimpleNamespace(root=root, data=data, model=model, trainer=trainer, probe=probe,
                           callback=callback)


def test_the_switch_replaces_sgd_by_asgd_after_the_third_validation(run):
    assert run.callback.averaging and len(run.callback.val_losses) == EPOCHS
    assert isinstance(run.trainer.optimizers[0], torch.optim.ASGD)
    assert [bool(r["ax"]) for r in run.probe.records] == [False, False, False, True, True]


def test_evaluation_uses_the_averages_and_puts_the_live_weights_back(run):
    for record in run.probe.records:
        expected = record["ax"] if record["ax"] else record["live"]
        assert _equal(record["during"], expected)
        assert _equal(record["after"], record["live"])
        if record["ax"]:
            assert not _equal(record["ax"], record["live"])
    assert _equal(run.model.eval_weights, _ax(run.trainer, run.model))
    assert not run.model.eval_weights_in_place


def test_the_model_attached_callback_gives_the_same_run_and_checkpoint(run, tmp_path):
    model = _model(run.data.vocab_size, optimizer="nt_asgd", nonmono=1)
    trainer = _fit(tmp_path, run.data, model, [])
    attached = [cb for cb in trainer.callbacks if isinstance(cb, NTASGD)]
    assert len(attached) == 1 and attached[0].state_key == run.callback.state_key
    assert attached[0].val_losses == run.callback.val_losses
    assert _equal(_params(model), _params(run.model))
    assert _equal(model.eval_weights, run.model.eval_weights)
    trainer.save_checkpoint(tmp_path / "attached.ckpt")
    run.trainer.save_checkpoint(tmp_path / "explicit.ckpt")
    mine, theirs = (torch.load(tmp_path / f"{name}.ckpt", weights_only=True)
                    for name in ("attached", "explicit"))
    assert mine["callbacks"][run.callback.state_key] == theirs["callbacks"][
        run.callback.state_key]
    assert _equal(mine["lrr"]["eval_weights"], theirs["lrr"]["eval_weights"])


def test_resuming_mid_epoch_after_the_switch_is_exact(run, tmp_path):
    step = 3 * STEPS_PER_EPOCH + 2  # epoch 3, two ASGD steps done
    path = run.root / "ckpt" / f"step={step}.ckpt"
    model = _model(run.data.vocab_size)
    callback = NTASGD(nonmono=1)
    trainer = _fit(tmp_path, run.data, model, [callback], ckpt_path=str(path))
    assert isinstance(trainer.optimizers[0], torch.optim.ASGD)
    assert callback.val_losses == run.callback.val_losses
    assert _equal(_params(model), _params(run.model))
    assert _equal(_ax(trainer, model), _ax(run.trainer, run.model))


def _legacy(checkpoint: dict[str, Any], key: str) -> dict[str, Any]:
    """The checkpoint as written before NT-ASGD was a callback."""
    state = checkpoint["callbacks"].pop(key)
    extra = checkpoint["lrr"]
    extra.update(averaging=state["averaging"], val_losses=state["val_losses"],
                 averaged_weights=extra.pop("eval_weights"))
    return checkpoint


def test_old_checkpoints_load_and_resume(run, tmp_path):
    step = 3 * STEPS_PER_EPOCH + 2
    checkpoint = torch.load(run.root / "ckpt" / f"step={step}.ckpt", weights_only=True)
    old = tmp_path / "old.ckpt"
    torch.save(_legacy(checkpoint, run.callback.state_key), old)
    loaded = lrr.LanguageModel.load_from_checkpoint(old)
    assert loaded.eval_weights.keys() == {n for n, _ in loaded.named_parameters()}
    model = _model(run.data.vocab_size, optimizer="nt_asgd", nonmono=1)
    trainer = _fit(tmp_path, run.data, model, [], ckpt_path=str(old))
    assert _equal(_params(model), _params(run.model))
    assert _equal(_ax(trainer, model), _ax(run.trainer, run.model))
