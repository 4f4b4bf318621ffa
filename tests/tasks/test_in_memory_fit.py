"""Fitting the classifier and the tagger from in-memory data (``from_examples`` /
``from_sentences``): the fit runs, the checkpoint holds the data's vocabulary, and the loaded
model works on raw text with no data module."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

import lightning_rnn_reg as lrr
from lightning_rnn_reg.data import CoNLL2003, SentimentDataModule, TaggingVocabulary, Vocabulary

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models (tests/conftest.py)

STEPS = 6


def _trainer(root: Path) -> L.Trainer:
    return L.Trainer(max_steps=STEPS, logger=False, enable_progress_bar=False,
                     enable_model_summary=False, enable_checkpointing=False,
                     num_sanity_val_steps=0, limit_val_batches=1, default_root_dir=root)


def _texts(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    filler = ["the", "film", "plot", "was", "it", "so"]
    return [(" ".join([*rng.choices(filler, k=3), keyword]), label)
            for keyword, label in (rng.choice([("great", "pos"), ("awful", "neg")])
                                   for _ in range(n))]


def _sentences(n: int, seed: int) -> list[tuple[list[str], list[str]]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        name = rng.choice([["John"], ["Mary", "Smith"]])
        place = rng.choice(["Paris", "Berlin"])
        out.append(([*name, "visited", place],
                    ["B-PER"] + ["I-PER"] * (len(name) - 1) + ["O", "B-LOC"]))
    return out


def _fit_and_save(root, name: str, model, data) -> dict[str, Any]:
    """Fit ``model`` on ``data``, save ``root/<name>.ckpt``; what the tests read."""
    trainer = _trainer(root)
    trainer.fit(model, datamodule=data)
    path = root / f"{name}.ckpt"
    trainer.save_checkpoint(path)
    return {"data": data, "model": model, "trainer": trainer, "path": path}


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("classifier")
    torch.manual_seed(0)
    data = SentimentDataModule.from_examples(_texts(40, 0), _texts(8, 1), batch_size=8)
    model = lrr.SequenceClassifier(data.vocab_size, data.num_classes, embedding_dim=8,
                                   hidden_size=8)
    return _fit_and_save(root, "classifier", model, data)


def test_classifier_fit_on_in_memory_examples_runs_every_step(classifier_run: dict[str, Any]):
    assert classifier_run["trainer"].global_step == STEPS


def test_classifier_checkpoint_holds_the_in_memory_vocabulary(classifier_run: dict[str, Any]):
    checkpoint = torch.load(classifier_run["path"], weights_only=True)
    assert Vocabulary.from_state(checkpoint["SentimentDataModule"]["vocab"]) == (
        classifier_run["data"].vocab)


def test_loaded_classifier_classifies_text_as_the_fitted_one(classifier_run: dict[str, Any]):
    loaded = lrr.SequenceClassifier.load_from_checkpoint(classifier_run["path"])
    texts = ["the film was great", "so awful", "an unseen word"]
    assert loaded.classify(texts) == classifier_run["model"].classify(texts)


@pytest.fixture(scope="module")
def tagger_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("tagger")
    torch.manual_seed(0)
    data = CoNLL2003.from_sentences(_sentences(40, 0), _sentences(8, 1), tag_scheme="IOB2",
                                    char_vocab=True, batch_size=8)
    model = lrr.SequenceTagger(data.vocab_size, data.num_tags,
                               char_vocab_size=data.char_vocab_size, embedding_dim=8,
                               hidden_size=8, char_embedding_dim=4, char_hidden_size=4)
    return _fit_and_save(root, "tagger", model, data)


def test_tagger_fit_on_in_memory_sentences_runs_every_step(tagger_run: dict[str, Any]):
    assert tagger_run["trainer"].global_step == STEPS


def test_tagger_checkpoint_holds_the_in_memory_vocabularies(tagger_run: dict[str, Any]):
    checkpoint = torch.load(tagger_run["path"], weights_only=True)
    assert TaggingVocabulary.from_state(checkpoint["CoNLL2003"]["vocabulary"]) == (
        tagger_run["data"].vocabulary)


def test_loaded_tagger_tags_in_the_declared_scheme_as_the_fitted_one(
        tagger_run: dict[str, Any]):
    loaded = lrr.SequenceTagger.load_from_checkpoint(tagger_run["path"])
    sentences = [["Mary", "Smith", "visited", "Paris"], ["Anna", "visited", "Rome"]]
    assert loaded.tag(sentences) == tagger_run["model"].tag(sentences)
