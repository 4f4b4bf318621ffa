"""LanguageModel: carried state, loss-side terms, fraternal loss, a real short fit, checkpoints."""

from __future__ import annotations

import contextlib
import io
import itertools
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
import torch.nn.functional as F

import lightning_rnn_reg as lrr
from lightning_rnn_reg.callbacks import NTASGD
from lightning_rnn_reg.data import TextCorpus, Vocabulary

V = 30


def _model(**kw) -> lrr.LanguageModel:
    args = {"vocab_size": V, "embedding_dim": 8, "hidden_size": 12, "num_layers": 2, "lr": 1.0}
    args.update(kw)
    return lrr.LanguageModel(**args)


def _batch(length: int = 6, batch: int = 3):
    tokens = torch.randint(0, V, (length + 1, batch))
    return tokens[:-1], tokens[1:]


def test_forward_shapes_and_tied_decoder():
    model = _model(embedding_dim=8, hidden_size=12, tie_weights=True)
    tokens, _ = _batch()
    logits, state = model(tokens)
    assert logits.shape == (6, 3, V)
    assert model.decoder.weight is model.embedding.weight
    assert state[-1][0].shape == (1, 3, 8)  # last layer projects to the embedding size
    assert state[0][0].shape == (1, 3, 12)


def test_untied_model_keeps_hidden_size_everywhere():
    model = _model(tie_weights=False)
    _, state = model(_batch()[0])
    assert all(layer_state[0].shape[-1] == 12 for layer_state in state)
    assert model.decoder.weight is not model.embedding.weight


def test_hidden_state_is_carried_detached_and_reset_each_epoch():
    model = _model()
    model.trainer = L.Trainer(logger=False, enable_checkpointing=False)
    model.log = lambda *a, **k: None
    model.optimizers = lambda: torch.optim.SGD(model.parameters(), lr=1.0)
    tokens, targets = _batch()
    model.training_step((tokens, targets), 0)
    carried = model._states["train"]
    assert all(t.grad_fn is None and not t.requires_grad for s in carried for t in s)
    with lrr.no_dropout():
        expected, _ = model(tokens, carried)
    assert not torch.allclose(expected, model(tokens)[0])
    model.on_train_epoch_start()
    assert "train" not in model._states


def test_ar_and_tar_terms_equal_their_formulas():
    model = _model(regularizers=[lrr.ActivationRegularization(2.0),
                                 lrr.TemporalActivationRegularization(1.5),
                                 lrr.LockedDropout(0.5, at="output")])
    tokens, targets = _batch()
    torch.manual_seed(3)
    loss, terms, _ = model.compute_loss(tokens, targets, None)
    torch.manual_seed(3)
    raw, dropped, _ = model.encode(tokens)
    logits = model.head(dropped)
    torch.testing.assert_close(terms["ar"], 2.0 * dropped.pow(2).mean())
    torch.testing.assert_close(terms["tar"], 1.5 * (raw[1:] - raw[:-1]).pow(2).mean())
    ce = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
    torch.testing.assert_close(terms["ce"], ce)
    torch.testing.assert_close(loss, ce + terms["ar"] + terms["tar"])


def test_fraternal_with_kappa_zero_equals_mean_of_two_plain_losses():
    regs = [lrr.LockedDropout(0.4, at="output"), lrr.FraternalDropout(0.0)]
    model = _model(regularizers=regs)
    tokens, targets = _batch()
    torch.manual_seed(5)
    loss, terms, _ = model.compute_loss(tokens, targets, None)
    torch.manual_seed(5)
    first = F.cross_entropy(model(tokens)[0].reshape(-1, V), targets.reshape(-1))
    second = F.cross_entropy(model(tokens)[0].reshape(-1, V), targets.reshape(-1))
    torch.testing.assert_close(loss, 0.5 * (first + second))
    assert terms["fraternal"] == 0


def test_fraternal_without_dropout_equals_plain_training_loss():
    model = _model(regularizers=[lrr.FraternalDropout(0.1)])
    plain = _model()
    plain.load_state_dict(model.state_dict())
    tokens, targets = _batch()
    loss, _, _ = model.compute_loss(tokens, targets, None)
    plain_loss, _, _ = plain.compute_loss(tokens, targets, None)
    torch.testing.assert_close(loss, plain_loss)


def test_fraternal_penalty_is_kappa_times_mean_squared_logit_difference():
    model = _model(regularizers=[lrr.LockedDropout(0.4, at="output"), lrr.FraternalDropout(0.3)])
    tokens, targets = _batch()
    torch.manual_seed(2)
    _, terms, _ = model.compute_loss(tokens, targets, None)
    torch.manual_seed(2)
    z1, z2 = model(tokens)[0], model(tokens)[0]
    torch.testing.assert_close(terms["fraternal"], 0.3 * (z1 - z2).pow(2).mean())


@pytest.mark.parametrize("bad", [{"level": "byte"}, {"optimizer": "rmsprop"},
                                 {"lr_schedule": "cosine"}, {"vocab_size": 0}, {"lr": -1.0},
                                 {"nonmono": 0}, {"mc_samples": -1},
                                 {"optimizer": "nt_asgd", "lr_schedule": "plateau"}])
def test_bad_hyperparameters_raise(bad):
    with pytest.raises(ValueError):
        _model(**bad)


def _fit(model, data, tmp_path, epochs=2):
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path, gradient_clip_val=0.5)
    before = trainer.validate(model, datamodule=data, verbose=False)[0]["val/ppl"]
    trainer.fit(model, datamodule=data)
    after = trainer.validate(model, datamodule=data, verbose=False)[0]["val/ppl"]
    return trainer, before, after


def test_short_fit_lowers_validation_perplexity_and_checkpoint_round_trips(pattern_corpus,
                                                                           tmp_path):
    L.seed_everything(0)
    data = TextCorpus(pattern_corpus, batch_size=8, eval_batch_size=4, bptt=10)
    regs = [lrr.LockedDropout(0.2, at="input"), lrr.WeightDrop(0.2),
            lrr.ActivationRegularization(1.0), lrr.TemporalActivationRegularization(1.0)]
    model = lrr.LanguageModel(data.vocab_size, embedding_dim=16, hidden_size=24, num_layers=2,
                              lr=5.0, regularizers=regs)
    trainer, before, after = _fit(model, data, tmp_path)
    assert after < 0.5 * before
    path = tmp_path / "lm.ckpt"
    trainer.save_checkpoint(path)
    raw = torch.load(path, weights_only=True)  # plain data only: no pickled objects
    assert Vocabulary.from_state(raw["lrr"]["vocabulary"]) == data.vocab
    restored = lrr.LanguageModel.load_from_checkpoint(path)
    assert [type(r) for r in restored.regularizers] == [type(r) for r in regs]
    assert restored.regularizers[1].p == 0.2
    assert Vocabulary.from_state(restored.vocabulary_state) == data.vocab
    restored.eval()
    model.eval()
    tokens = torch.randint(0, data.vocab_size, (5, 2))
    torch.testing.assert_close(restored(tokens)[0], model(tokens)[0])


def test_monte_carlo_evaluation_averages_probabilities(pattern_corpus, tmp_path):
    L.seed_everything(0)
    data = TextCorpus(pattern_corpus, batch_size=8, eval_batch_size=4, bptt=10)
    model = lrr.LanguageModel(data.vocab_size, embedding_dim=8, hidden_size=8, num_layers=1,
                              mc_samples=3, regularizers=[lrr.LockedDropout(0.5, at="output")])
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path, limit_val_batches=3)
    mc = trainer.validate(model, datamodule=data, verbose=False)[0]["val/ppl"]
    model.hparams["mc_samples"] = 0
    plain = trainer.validate(model, datamodule=data, verbose=False)[0]["val/ppl"]
    assert mc != plain and mc > 1.0


def test_zaremba_schedule_keeps_lr_then_divides_every_epoch():
    model = _model(lr=20.0, lr_schedule="zaremba", lr_decay=2.0, lr_decay_start=4)
    config = model.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(7):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates == pytest.approx([20, 20, 20, 20, 10, 5, 2.5])


def test_plateau_schedule_divides_when_validation_does_not_improve():
    model = _model(lr=35.0, lr_schedule="plateau", lr_decay=1.5)
    config = model.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert config["lr_scheduler"]["monitor"] == "val/loss"
    for loss in (5.0, 4.0, 4.5):
        optimizer.step()
        scheduler.step(loss)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(35.0 / 1.5)


# ----------------------------------------------------------------------------------- NT-ASGD
NT_LR, NT_STEPS_PER_EPOCH, NT_EPOCHS = 1.0, 5, 5


def _params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def _assert_params_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor],
                         atol: float = 1e-6) -> None:
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=atol, msg=name)


def _ax(optimizer: torch.optim.Optimizer, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: optimizer.state[p]["ax"].clone() for name, p in module.named_parameters()
            if "ax" in optimizer.state.get(p, {})}


def _nt_asgd(trainer: L.Trainer) -> NTASGD:
    """The NTASGD callback the model attached (optimizer="nt_asgd")."""
    return next(cb for cb in trainer.callbacks if isinstance(cb, NTASGD))


class NTASGDProbe(L.Callback):
    """Records, at every training step, the optimizer, the weights before and after the step,
    the gradients and the running averages; and the weights that each validation ran with."""

    def __init__(self) -> None:
        self.steps: list[dict] = []
        self.val_weights: dict[int, dict[str, torch.Tensor]] = {}
        self.val_losses: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.steps.append({"epoch": trainer.current_epoch, "before": _params(pl_module)})

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.steps[-1]["grads"] = {n: p.grad.clone() for n, p in pl_module.named_parameters()}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        optimizer = trainer.optimizers[0]
        self.steps[-1].update(after=_params(pl_module), optimizer=type(optimizer),
                              averaging=_nt_asgd(trainer).averaging,
                              ax=_ax(optimizer, pl_module))

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx,
                                  dataloader_idx=0) -> None:
        if not trainer.sanity_checking and batch_idx == 0:
            self.val_weights[trainer.current_epoch] = _params(pl_module)

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.val_losses.append(float(trainer.callback_metrics["val/loss"]))


def _stalling_corpus(root: Path) -> TextCorpus:
    """Validation is all ``z``, a word training makes ever rarer: validation loss only rises."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.txt").write_text(" a b c d \n" * 20 + " z \n")  # 102 tokens: 2 x 51
    (root / "valid.txt").write_text(" z z z z \n" * 4)
    (root / "test.txt").write_text(" z z z z \n" * 4)
    return TextCorpus(root, batch_size=2, eval_batch_size=2, bptt=10)  # 5 windows per epoch


def _nt_asgd_model(vocab_size: int) -> lrr.LanguageModel:
    return lrr.LanguageModel(vocab_size, embedding_dim=8, hidden_size=8, num_layers=1,
                             optimizer="nt_asgd", lr=NT_LR, nonmono=1)


def _nt_trainer(root: Path, max_epochs: int, probe: NTASGDProbe) -> L.Trainer:
    return L.Trainer(max_epochs=max_epochs, accelerator="cpu", logger=False,
                     enable_checkpointing=False, enable_progress_bar=False,
                     enable_model_summary=False, default_root_dir=root, callbacks=[probe])


@pytest.fixture(scope="module")
def nt_asgd_run(tmp_path_factory: pytest.TempPathFactory):
    """Five epochs of NT-ASGD with nonmono=1 on a corpus whose validation loss always rises."""
    root = tmp_path_factory.mktemp("nt_asgd")
    L.seed_everything(0)
    data = _stalling_corpus(root / "corpus")
    model = _nt_asgd_model(data.vocab_size)
    probe = NTASGDProbe()
    trainer = _nt_trainer(root, NT_EPOCHS, probe)
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        trainer.fit(model, datamodule=data)
    switch = next(i for i, step in enumerate(probe.steps) if step["averaging"])  # 1st ASGD step
    return SimpleNamespace(root=root, data=data, model=model, trainer=trainer, probe=probe,
                           stdout=stdout.getvalue(), switch=switch)


def test_nt_asgd_switches_once_the_validation_loss_is_worse_than_nonmono_evaluations_ago(
        nt_asgd_run):
    run = nt_asgd_run
    losses = run.probe.val_losses
    assert len(losses) == NT_EPOCHS and all(b > a for a, b in itertools.pairwise(losses))
    # the trigger saw this epoch's loss
    assert _nt_asgd(run.trainer).val_losses == pytest.approx(losses)
    # nonmono=1: at the 3rd validation (epoch 2) the loss exceeds the best of >1 evaluations ago
    assert "NT-ASGD: switching to averaged SGD at epoch 2" in run.stdout
    assert run.stdout.count("NT-ASGD: switching") == 1
    assert _nt_asgd(run.trainer).averaging
    assert run.switch == 3 * NT_STEPS_PER_EPOCH
    assert isinstance(run.trainer.optimizers[0], torch.optim.ASGD)
    assert len(run.probe.steps) == NT_EPOCHS * NT_STEPS_PER_EPOCH


def test_nt_asgd_uses_plain_sgd_and_live_weights_before_the_trigger(nt_asgd_run):
    run = nt_asgd_run
    before = run.probe.steps[: run.switch]
    assert before and all(s["epoch"] < 3 for s in before)
    for step in before:
        assert step["optimizer"] is torch.optim.SGD and not step["averaging"]
        assert step["ax"] == {}  # no averaging state at all
        expected = {n: step["before"][n] - NT_LR * step["grads"][n] for n in step["before"]}
        _assert_params_equal(step["after"], expected)  # w <- w - lr * grad
    for epoch in range(3):  # validation ran with the live weights of the epoch's last step
        last = before[(epoch + 1) * NT_STEPS_PER_EPOCH - 1]
        _assert_params_equal(run.probe.val_weights[epoch], last["after"], atol=0)


def test_nt_asgd_averages_the_iterates_and_evaluates_with_the_average(nt_asgd_run):
    run = nt_asgd_run
    after = run.probe.steps[run.switch:]
    assert len(after) == (NT_EPOCHS - 3) * NT_STEPS_PER_EPOCH
    live = [step["after"] for step in after]
    for k, step in enumerate(after):
        assert step["optimizer"] is torch.optim.ASGD and step["averaging"]
        # torch.optim.ASGD(t0=0), as AWD-LSTM uses it, averages the iterates from the second
        # step after the switch on: ax_k = mean(w_2 .. w_k) (ax_1 = w_1)
        window = live[:1] if k == 0 else live[1 : k + 1]
        mean = {n: torch.stack([w[n] for w in window]).mean(0) for n in live[0]}
        _assert_params_equal(step["ax"], mean)
        if k >= 2:
            assert not torch.allclose(step["ax"]["embedding.weight"], live[k]["embedding.weight"])
    for epoch in range(3, NT_EPOCHS):
        end = (epoch - 2) * NT_STEPS_PER_EPOCH - 1  # this epoch's last step in `after`
        # validation ran with the averaged weights ...
        _assert_params_equal(run.probe.val_weights[epoch], after[end]["ax"], atol=0)
        # ... and training went on from the live ones
        if epoch + 1 < NT_EPOCHS:
            _assert_params_equal(after[end + 1]["before"], live[end], atol=0)
    _assert_params_equal(_params(run.model), live[-1], atol=0)  # live weights after fit


def test_nt_asgd_averaging_state_round_trips_through_a_checkpoint(nt_asgd_run, tmp_path):
    run = nt_asgd_run
    path = tmp_path / "nt_asgd.ckpt"
    run.trainer.save_checkpoint(path)
    averages = _ax(run.trainer.optimizers[0], run.model)
    raw = torch.load(path, weights_only=True)
    callback = _nt_asgd(run.trainer)
    assert raw["callbacks"][callback.state_key] == {"averaging": True,
                                                    "val_losses": callback.val_losses}
    _assert_params_equal(raw["lrr"]["eval_weights"], averages, atol=0)

    # a fresh module gets the averages back ...
    restored = lrr.LanguageModel.load_from_checkpoint(path)
    _assert_params_equal(_params(restored), _params(run.model), atol=0)
    _assert_params_equal(restored.eval_weights, averages, atol=0)
    # ... evaluates with the averaged weights (the last validation of fit) and restores the live
    # ones afterwards; a stand-alone validation is no evaluation of the NT-ASGD trigger
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    result = trainer.validate(restored, datamodule=run.data, verbose=False)[0]
    assert result["val/loss"] == pytest.approx(run.probe.val_losses[-1], rel=1e-6)
    _assert_params_equal(_params(restored), _params(run.model), atol=0)
    assert _nt_asgd(trainer).val_losses == []

    # resuming fit restores the optimizer's running average, which goes on from the saved one
    probe = NTASGDProbe()
    resumed = lrr.LanguageModel.load_from_checkpoint(path)
    _nt_trainer(tmp_path, NT_EPOCHS + 1, probe).fit(resumed, datamodule=run.data,
                                                    ckpt_path=path)
    assert len(probe.steps) == NT_STEPS_PER_EPOCH
    old = [step["after"] for step in run.probe.steps[run.switch + 1:]]  # w_2 .. w_n
    new = [step["after"] for step in probe.steps]
    assert probe.steps[0]["optimizer"] is torch.optim.ASGD
    _assert_params_equal(probe.steps[0]["before"], _params(run.model), atol=0)
    expected = {n: torch.stack([w[n] for w in old + new]).mean(0) for n in new[0]}
    _assert_params_equal(probe.steps[-1]["ax"], expected)
