"""LanguageModel: carried state, loss-side terms, fraternal loss, a real short fit, checkpoints."""

from __future__ import annotations

import random
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F

import lightning_rnn_reg as lrr
from lightning_rnn_reg.data import TextCorpus, Vocabulary

V = 30


def _model(**kw) -> lrr.LanguageModel:
    args = {"vocab_size": V, "embedding_dim": 8, "hidden_size": 12, "num_layers": 2, "lr": 1.0}
    args.update(kw)
    return lrr.LanguageModel(**args)


def _batch(length: int = 6, batch: int = 3):
    tokens = torch.randint(0, V, (length + 1, batch))
    return tokens[:-1], tokens[1:]


@pytest.fixture
def pattern_corpus(tmp_path: Path) -> Path:
    """A learnable corpus: sentences from a tiny grammar, 3 splits."""
    rng = random.Random(0)
    subjects, verbs, objects = ["the cat", "a dog", "my bird"], ["sees", "likes"], ["fish", "milk"]

    def lines(n: int) -> str:
        return "\n".join(
            f" {rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)} " for _ in range(n)
        ) + "\n"

    for name, n in (("train.txt", 1500), ("valid.txt", 200), ("test.txt", 200)):
        (tmp_path / name).write_text(lines(n))
    return tmp_path


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
                                 {"lr_schedule": "cosine"}, {"vocab_size": 0}, {"lr": -1.0}])
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
