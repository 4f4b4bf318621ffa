"""SequenceClassifier: shapes, padding invariance, pooling definitions, regularizer sites, a
real short fit, checkpoint round trip to ``classify``, and synced metrics under ``ddp_spawn``.

The fit corpus is synthetic: sentences of filler words, labelled ``pos`` when the keyword
``great`` occurs. Everything the DDP workers need is module level and paths are strings, so
the trainer pickles.
"""

from __future__ import annotations

import copy
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import pytest
import torch

import lightning_rnn_reg as lrr
from lightning_rnn_reg.data.sentiment import SentimentDataModule
from lightning_rnn_reg.data.vocab import Vocabulary
from lightning_rnn_reg.tasks.classifier import POOLINGS, SequenceClassifier

V, C = 40, 3
FILLER = [f"w{i}" for i in range(20)]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models (tests/conftest.py)


def _model(**kw: Any) -> SequenceClassifier:
    args: dict[str, Any] = {"vocab_size": V, "num_classes": C, "embedding_dim": 8,
                            "hidden_size": 6}
    args.update(kw)
    return SequenceClassifier(**args)


def _trainer(**kw: Any) -> L.Trainer:
    options: dict[str, Any] = {
        "accelerator": "cpu", "devices": 1, "logger": False, "enable_checkpointing": False,
        "enable_progress_bar": False, "enable_model_summary": False, "num_sanity_val_steps": 0}
    options.update(kw)
    return L.Trainer(**options)


def write_keyword_corpus(root: Path, sizes: tuple[int, int, int] = (600, 120, 60),
                         classes: tuple[str, ...] = ("neg", "pos"), seed: int = 0) -> Path:
    """TSV splits: label ``classes[1]`` iff ``great`` occurs (3-class: ``awful`` -> 0)."""
    rng = random.Random(seed)

    def line() -> str:
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 10))]
        label = rng.randrange(len(classes))
        keyword = {0: "awful", 1: "", 2: "great"}[label] if len(classes) == 3 else (
            "great" if label else "")
        if keyword:
            words.insert(rng.randrange(len(words) + 1), keyword)
        return f"{' '.join(words)}\t{classes[label]}\n"

    for name, n in zip(("train.tsv", "dev.tsv", "test.tsv"), sizes, strict=True):
        (root / name).write_text("text\tlabel\n" + "".join(line() for _ in range(n)))
    return root


# ------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_forward_shapes_for_every_cell_pooling_and_direction(cell: str, pooling: str,
                                                             bidirectional: bool) -> None:
    model = _model(cell=cell, pooling=pooling, bidirectional=bidirectional, num_layers=2)
    tokens, lengths = torch.randint(0, V, (4, 9)), torch.tensor([9, 2, 5, 1])
    raw, mask, features = model.encode(tokens, lengths)
    directions = 2 if bidirectional else 1
    assert raw.shape == (9, 4, directions * 6) and mask.shape == (9, 4)
    assert features.shape == (4, directions * 6)
    assert model(tokens, lengths).shape == (4, C)
    assert model(tokens).shape == (4, C)  # no lengths: every sequence is full length


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_logits_do_not_depend_on_padding_or_batch_mates(cell: str, pooling: str) -> None:
    model = _model(cell=cell, pooling=pooling, num_layers=2).eval()
    short = torch.randint(0, V, (1, 3))
    long = torch.randint(0, V, (1, 8))
    padded = torch.cat([torch.cat([short, torch.randint(0, V, (1, 5))], 1), long])  # junk pad
    with torch.no_grad():
        alone = model(short, torch.tensor([3]))
        batched = model(padded, torch.tensor([3, 8]))
        long_alone = model(long, torch.tensor([8]))
    torch.testing.assert_close(batched[0], alone[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(batched[1], long_alone[0], rtol=0, atol=1e-6)


def test_last_pooling_is_forward_last_valid_step_and_backward_first_step() -> None:
    model = _model(pooling="last").eval()
    tokens, lengths = torch.randint(0, V, (3, 7)), torch.tensor([7, 4, 2])
    with torch.no_grad():
        raw, _, features = model.encode(tokens, lengths)
    for b, length in enumerate(lengths.tolist()):
        torch.testing.assert_close(features[b, :6], raw[length - 1, b, :6])
        torch.testing.assert_close(features[b, 6:], raw[0, b, 6:])


def test_max_and_mean_pooling_exclude_padding() -> None:
    tokens, lengths = torch.randint(0, V, (2, 6)), torch.tensor([6, 3])
    for pooling, reduce in (("max", lambda x: x.amax(0)), ("mean", lambda x: x.mean(0))):
        model = _model(pooling=pooling).eval()
        with torch.no_grad():
            raw, _, features = model.encode(tokens, lengths)
        torch.testing.assert_close(features[1], reduce(raw[:3, 1]))


class LoopClassifier(SequenceClassifier):
    """Forces the custom recurrence loop (``path="loop"``) instead of the fused kernel."""

    def make_layer(self, input_size: int, hidden_size: int, regularizers: list) -> Any:
        return lrr.LSTM(input_size, hidden_size, bidirectional=True, regularizers=regularizers,
                        path="loop")


@pytest.mark.parametrize("pooling", POOLINGS)
def test_loop_path_pools_like_the_fused_path(pooling: str) -> None:
    torch.manual_seed(3)
    fused = _model(pooling=pooling).eval()
    loop = LoopClassifier(**dict(fused.hparams)).eval()
    loop.load_state_dict(fused.state_dict())
    tokens, lengths = torch.randint(0, V, (3, 7)), torch.tensor([7, 4, 1])
    with torch.no_grad():
        torch.testing.assert_close(loop(tokens, lengths), fused(tokens, lengths), rtol=0,
                                   atol=1e-5)


# -------------------------------------------------------------------------- regularizers
def _regularized(**kw: Any) -> SequenceClassifier:
    return _model(num_layers=2, regularizers=[
        lrr.EmbeddingDropout(0.2), lrr.LockedDropout(0.3, at="input"),
        lrr.Dropout(0.3, at="between"), lrr.UpdateDropout(0.3), lrr.Dropout(0.5, at="output"),
        lrr.ActivationRegularization(1.0), lrr.TemporalActivationRegularization(1.0),
        lrr.FraternalDropout(0.1)], **kw)


def test_regularizers_act_in_training_and_vanish_in_eval() -> None:
    model = _regularized()
    tokens, lengths = torch.randint(0, V, (4, 8)), torch.tensor([8, 5, 3, 1])
    model.train()
    assert not torch.allclose(model(tokens, lengths), model(tokens, lengths))
    model.eval()
    torch.testing.assert_close(model(tokens, lengths), model(tokens, lengths), rtol=0, atol=0)


def test_loss_holds_every_loss_site_term_and_backpropagates() -> None:
    model = _regularized().train()
    tokens, lengths, labels = torch.randint(0, V, (4, 8)), torch.tensor([8, 5, 3, 1]), \
        torch.tensor([0, 1, 2, 1])
    loss, terms, logits = model.compute_loss(tokens, lengths, labels)
    assert sorted(terms) == ["ar", "ce", "fraternal", "tar"]
    assert logits.shape == (4, C) and torch.isfinite(loss)
    loss.backward()
    assert model.embedding.weight.grad is not None and model.classifier.weight.grad is not None


def test_output_dropout_masks_each_example_of_the_pooled_vector() -> None:
    model = _model(regularizers=[lrr.LockedDropout(0.5, at="output")]).train()
    tokens = torch.randint(0, V, (64, 5))
    _, _, dropped = model.encode(tokens)
    zero_share = float((dropped == 0).float().mean())
    assert 0.35 < zero_share < 0.65  # one Bernoulli(0.5) per example and unit


@pytest.mark.parametrize(("kw", "message"), [
    ({"regularizers": [lrr.Dropout(0.2, at="between")]}, "num_layers >= 2"),
    ({"regularizers": [lrr.EmbeddingDropout(0.1, batch_first=True)]}, "batch_first=False"),
    ({"cell": "rnn"}, "cell must be one of"),
    ({"pooling": "attention"}, "pooling must be one of"),
    ({"num_classes": 1}, "num_classes must be >= 2"),
    ({"optimizer": "rmsprop"}, "optimizer must be one of"),
    ({"class_names": ["a", "b"]}, "num_classes=3 distinct names"),
])
def test_invalid_arguments_are_rejected(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _model(**kw)


# ------------------------------------------------------------------- data and metrics
def test_f1_pn_is_tracked_only_when_positive_and_negative_are_classes() -> None:
    assert "f1_pn" not in _model().metrics["val"]
    named = _model(class_names=["negative", "neutral", "positive"])
    assert named.metrics["val"]["f1_pn"].positive_class == 2
    assert named.metrics["test"]["f1_pn"].negative_class == 0
    assert "f1_pn" not in _model(class_names=["a", "b", "c"]).metrics["val"]
    later = _model()
    later.adopt_data(SimpleNamespace(class_names=("negative", "neutral", "positive")))
    assert "f1_pn" in later.metrics["val"] and later.class_names[2] == "positive"


def test_adopt_data_checks_sizes_and_names_against_the_model() -> None:
    model = _model(class_names=["x", "y", "z"])
    with pytest.raises(ValueError, match="vocab_size=40"):
        model.adopt_data(SimpleNamespace(vocab=Vocabulary(["<unk>", "a"])))
    with pytest.raises(ValueError, match="class_names"):
        model.adopt_data(SimpleNamespace(class_names=["z", "y", "x"]))
    with pytest.raises(ValueError, match="tokenizer_options"):
        _model(tokenizer_options={"lowercase": False}).adopt_data(
            SimpleNamespace(tokenizer_options={"lowercase": True}))


def test_classify_needs_a_vocabulary() -> None:
    with pytest.raises(RuntimeError, match="no vocabulary"):
        _model().classify(["hello"])


# ------------------------------------------------------------------ a real short fit
@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Two epochs on the keyword corpus; validation accuracy before and after."""
    root = write_keyword_corpus(tmp_path_factory.mktemp("keyword"))
    data = SentimentDataModule(str(root), format="tsv", batch_size=32, eval_batch_size=64)
    torch.manual_seed(0)
    model = SequenceClassifier(data.vocab_size, data.num_classes, embedding_dim=16,
                               hidden_size=16, pooling="max", lr=0.02)
    trainer = _trainer(max_epochs=2)
    before = trainer.validate(model, datamodule=data, verbose=False)[0]
    trainer.fit(model, datamodule=data)
    after = trainer.validate(model, datamodule=data, verbose=False)[0]
    checkpoint = root / "model.ckpt"
    trainer.save_checkpoint(checkpoint)
    return SimpleNamespace(model=model, data=data, trainer=trainer, before=before, after=after,
                           checkpoint=checkpoint)


def test_short_fit_clearly_improves_validation_accuracy(fitted: SimpleNamespace) -> None:
    assert fitted.before["val/acc"] < 0.75
    assert fitted.after["val/acc"] > 0.95
    assert fitted.after["val/loss"] < fitted.before["val/loss"]
    assert set(fitted.after) >= {"val/acc", "val/f1", "val/loss"}
    assert "val/f1_pn" not in fitted.after  # classes "neg" / "pos" are not SemEval's names


def test_model_carries_the_data_as_plain_data(fitted: SimpleNamespace) -> None:
    model, data = fitted.model, fitted.data
    assert model.class_names == ["neg", "pos"]
    assert model.hparams["tokenizer_options"] == data.tokenizer_options
    assert model.vocabulary == data.vocab
    checkpoint = torch.load(fitted.checkpoint, weights_only=True)  # plain data only
    assert checkpoint["hyper_parameters"]["class_names"] == ["neg", "pos"]
    assert Vocabulary.from_state(checkpoint["lrr"]["vocabulary"]) == data.vocab


def test_checkpoint_round_trip_then_classify_needs_no_data(fitted: SimpleNamespace) -> None:
    loaded = SequenceClassifier.load_from_checkpoint(fitted.checkpoint)
    texts = ["w1 w2 GREAT w3", "w4 w5 w6", "great", "w7 unseenword w8 w9"]
    assert loaded.classify(texts) == ["pos", "neg", "pos", "neg"]
    assert loaded.classify(texts) == fitted.model.classify(texts)
    for name, value in fitted.model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value)


def test_predict_returns_class_names_in_file_order(fitted: SimpleNamespace) -> None:
    batches = fitted.trainer.predict(fitted.model, datamodule=fitted.data)
    names = [name for batch in batches for name in batch]
    lines = (fitted.data.data_dir / "test.tsv").read_text().splitlines()[1:]
    assert names == fitted.model.classify([line.split("\t")[0] for line in lines])
    assert len(names) == 60 and set(names) == {"neg", "pos"}


# -------------------------------------------------------------------------------- DDP
class MetricsToFile(L.Callback):
    """Rank 0 writes the synced metrics; every rank writes how many examples it evaluated."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.examples = 0

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx,
                                dataloader_idx=0) -> None:
        self.examples += int(batch.labels.numel())

    def on_validation_end(self, trainer, pl_module) -> None:
        record = {"examples": self.examples, "world_size": trainer.world_size}
        if trainer.global_rank == 0:
            record["metrics"] = {k: float(v) for k, v in trainer.callback_metrics.items()}
        torch.save(record, Path(self.out_dir) / f"rank{trainer.global_rank}.pt")


def test_ddp_synced_metrics_equal_the_single_process_ones(tmp_path: Path) -> None:
    classes = ("negative", "neutral", "positive")
    root = write_keyword_corpus(tmp_path, sizes=(200, 90, 10), classes=classes, seed=1)
    data = SentimentDataModule(str(root), format="tsv", labels=list(classes),
                               eval_batch_size=16)
    torch.manual_seed(5)
    model = SequenceClassifier(data.vocab_size, 3, embedding_dim=8, hidden_size=8,
                               init_range=0.5)  # untrained, but with varied predictions
    single = _trainer().validate(copy.deepcopy(model), datamodule=data, verbose=False)[0]
    out_dir = tmp_path / "ddp"
    out_dir.mkdir()
    _trainer(strategy="ddp_spawn", devices=2, callbacks=[MetricsToFile(str(out_dir))]
             ).validate(model, datamodule=data, verbose=False)
    records = [torch.load(out_dir / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert [r["world_size"] for r in records] == [2, 2]
    assert all(r["examples"] > 0 for r in records)  # each rank evaluated its own share
    assert sum(r["examples"] for r in records) == 90  # ... and together every example once
    synced = records[0]["metrics"]
    assert set(single) == {"val/acc", "val/f1", "val/f1_pn", "val/loss"}
    assert 0.2 < single["val/acc"] < 0.9  # not a degenerate one-class prediction
    for name, value in single.items():
        assert synced[name] == pytest.approx(value, rel=1e-5, abs=1e-6), name
