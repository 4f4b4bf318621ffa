"""Checkpoints of real short fits hold plain data only (``torch.load(weights_only=True)``), for
each task and with NT-ASGD, CurriculumDropout, RateSchedule and ModelCheckpoint; loading
refuses, with a clear error, another task's checkpoint, corrupted files, non-checkpoints and
pickled objects (which never run), and a data vocabulary that differs from the model's."""

from __future__ import annotations

import io
import os
import pathlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

import lightning_rnn_reg as lrr
from lightning_rnn_reg.data import TextCorpus
from lightning_rnn_reg.data.conll import CoNLL2003
from lightning_rnn_reg.data.sentiment import SentimentDataModule
from lightning_rnn_reg.tasks.checkpoint import TASK_KEY, CheckpointError, read_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


# ----------------------------------------------------------------------- tiny corpora
def write_stalling_corpus(root: Path) -> Path:
    """Validation loss only rises: NT-ASGD (``nonmono=1``) switches after the 3rd epoch."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.txt").write_text(" a b c d \n" * 20 + " z \n")
    (root / "valid.txt").write_text(" z z z z \n" * 4)
    (root / "test.txt").write_text(" z z z z \n" * 4)
    return root


def write_conll(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    sentence = ["John NNP I-NP I-PER", "visited VBD I-VP O", "Paris NNP I-NP I-LOC",
                ". . O O", ""]
    for name in ("train.txt", "valid.txt", "test.txt"):
        (root / name).write_text("\n".join(["-DOCSTART- -X- -X- O", ""] + sentence * 6))
    return root


def write_tsv(root: Path, words: tuple[str, str] = ("great", "awful")) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rows = "".join(f"a {words[i % 2]} film\t{('pos', 'neg')[i % 2]}\n" for i in range(24))
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        (root / name).write_text("text\tlabel\n" + rows)
    return root


def _trainer(root: Path, callbacks: list[L.Callback], **kw: Any) -> L.Trainer:
    args: dict[str, Any] = {"accelerator": "cpu", "logger": False, "enable_progress_bar": False,
                            "enable_model_summary": False, "num_sanity_val_steps": 0,
                            "default_root_dir": str(root), "max_epochs": 1}
    args.update(kw)
    return L.Trainer(callbacks=callbacks, **args)


def _fit(model: L.LightningModule, data: L.LightningDataModule, root: Path,
         callbacks: list[L.Callback] = (), **kw: Any) -> Path:
    """Fit, and return the last checkpoint ModelCheckpoint wrote."""
    saver = ModelCheckpoint(dirpath=root, save_last=True)
    _trainer(root, [saver, *callbacks], **kw).fit(model, datamodule=data)
    return root / "last.ckpt"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """One short real fit per task, each with the callbacks that keep state."""
    root = tmp_path_factory.mktemp("checkpoints")
    L.seed_everything(0, verbose=False)
    lm_data = TextCorpus(write_stalling_corpus(root / "lm_data"), batch_size=2,
                         eval_batch_size=2, bptt=10)
    lm = lrr.LanguageModel(lm_data.vocab_size, embedding_dim=8, hidden_size=8, num_layers=2,
                           optimizer="nt_asgd", lr=5.0, nonmono=1, bptt=10,
                           regularizers=[lrr.LockedDropout(0.2), lrr.WeightDrop(0.2),
                                         lrr.Zoneout(cell=0.1, hidden=0.1),
                                         lrr.ActivationRegularization(1.0)])
    lm_ckpt = _fit(lm, lm_data, root / "lm", max_epochs=4, gradient_clip_val=0.5, callbacks=[
        lrr.CurriculumDropout(0.1, targets="LockedDropout"),
        lrr.RateSchedule("linear", targets="Zoneout", steps=6)])
    tag_data = CoNLL2003(write_conll(root / "tag_data"), "train.txt", "valid.txt", "test.txt",
                         char_vocab=True, batch_size=4)
    tagger = lrr.SequenceTagger(tag_data.vocab_size, tag_data.num_tags, embedding_dim=8,
                                hidden_size=8, char_vocab_size=tag_data.char_vocab_size,
                                char_embedding_dim=4, char_hidden_size=4, use_caps=True,
                                regularizers=[lrr.UpdateDropout(0.2)])
    tag_ckpt = _fit(tagger, tag_data, root / "tagger", callbacks=[lrr.CurriculumDropout(0.1)])
    cls_data = SentimentDataModule(write_tsv(root / "cls_data"), format="tsv", batch_size=8)
    classifier = lrr.SequenceClassifier(cls_data.vocab_size, cls_data.num_classes,
                                        embedding_dim=8, hidden_size=8,
                                        regularizers=[lrr.RecurrentDropout(0.2)])
    cls_ckpt = _fit(classifier, cls_data, root / "classifier",
                    callbacks=[lrr.RateSchedule("linear", steps=4)])
    return SimpleNamespace(root=root, lm=lm, lm_data=lm_data, lm_ckpt=lm_ckpt, tagger=tagger,
                           tag_data=tag_data, tag_ckpt=tag_ckpt, classifier=classifier,
                           cls_data=cls_data, cls_ckpt=cls_ckpt)


# ------------------------------------------------------------------ plain data only
@pytest.mark.parametrize("task", ["lm", "tag", "cls"])
def test_checkpoints_of_real_fits_load_with_weights_only(runs, task):
    checkpoint = torch.load(getattr(runs, f"{task}_ckpt"), weights_only=True)
    assert {"state_dict", "optimizer_states", "callbacks", "loops", "hyper_parameters",
            "lrr", TASK_KEY} <= set(checkpoint)


def test_nt_asgd_averages_and_schedule_states_are_in_the_checkpoint(runs):
    checkpoint = torch.load(runs.lm_ckpt, weights_only=True)
    nt_asgd = [state for key, state in checkpoint["callbacks"].items()
               if key.startswith("NTASGD")]
    assert len(nt_asgd) == 1 and nt_asgd[0]["averaging"] is True
    assert set(checkpoint["lrr"]["eval_weights"]) == {n for n, _ in runs.lm.named_parameters()}
    finals = [state["finals"] for key, state in checkpoint["callbacks"].items()
              if key.startswith(("CurriculumDropout", "RateSchedule"))]
    assert finals == [{"0_LockedDropout": {"p": 0.2}},
                      {"2_Zoneout": {"cell": 0.1, "hidden": 0.1}}]
    assert checkpoint["hyper_parameters"]["regularizers"][0]["init_args"]["p"] == 0.2


@pytest.mark.parametrize(("task", "cls"), [("lm", lrr.LanguageModel),
                                           ("tag", lrr.SequenceTagger),
                                           ("cls", lrr.SequenceClassifier)])
def test_load_from_checkpoint_rebuilds_the_same_weights(runs, task, cls):
    original = {"lm": runs.lm, "tag": runs.tagger, "cls": runs.classifier}[task]
    loaded = cls.load_from_checkpoint(getattr(runs, f"{task}_ckpt"))
    assert type(loaded) is cls
    for name, value in original.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[name], value)


def test_a_subclass_loads_its_parents_checkpoint(runs):
    class Probed(lrr.LanguageModel):
        pass

    assert isinstance(Probed.load_from_checkpoint(runs.lm_ckpt), Probed)


def test_load_from_an_open_file_object(runs):
    with open(runs.lm_ckpt, "rb") as handle:
        buffer = io.BytesIO(handle.read())
    assert isinstance(lrr.LanguageModel.load_from_checkpoint(buffer), lrr.LanguageModel)


# ---------------------------------------------------------------------- wrong files
def test_another_tasks_checkpoint_is_refused_before_building_a_model(runs):
    with pytest.raises(CheckpointError, match=r"saved by lightning_rnn_reg\.tasks\.tagger\."
                                              r"SequenceTagger, not by LanguageModel"):
        lrr.LanguageModel.load_from_checkpoint(runs.tag_ckpt)


def test_a_parents_loader_refuses_a_subclass_checkpoint(runs, tmp_path):
    class Bigger(lrr.SequenceClassifier):
        pass

    model = Bigger(runs.cls_data.vocab_size, runs.cls_data.num_classes, embedding_dim=8,
                   hidden_size=8)
    path = _fit(model, runs.cls_data, tmp_path, max_steps=1, limit_val_batches=0)
    with pytest.raises(CheckpointError, match=r"saved by .*Bigger, not by SequenceClassifier"):
        lrr.SequenceClassifier.load_from_checkpoint(path)


def test_trainer_ckpt_path_of_another_task_is_refused(runs):
    model = lrr.LanguageModel(runs.lm_data.vocab_size, embedding_dim=8, hidden_size=8,
                              num_layers=2)
    trainer = _trainer(runs.root, [], enable_checkpointing=False)
    with pytest.raises(CheckpointError, match=r"saved by .*SequenceClassifier, not by "
                                              r"LanguageModel"):
        trainer.test(model, datamodule=runs.lm_data, ckpt_path=runs.cls_ckpt, verbose=False)


def test_truncated_checkpoint_is_a_clear_error(runs, tmp_path):
    path = tmp_path / "truncated.ckpt"
    path.write_bytes(runs.lm_ckpt.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match=r"truncated.ckpt' is truncated, corrupted or not "
                                              r"a checkpoint"):
        lrr.LanguageModel.load_from_checkpoint(path)


def test_a_text_file_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.ckpt"
    path.write_text("these are not weights\n")
    with pytest.raises(CheckpointError, match=r"notes.ckpt' is (truncated, corrupted or )?not a "
                                              r"checkpoint"):
        read_checkpoint(path)


def test_a_torch_file_without_state_dict_is_not_a_lightning_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a Lightning checkpoint: it holds dict "
                                              "without a 'state_dict'"):
        lrr.SequenceTagger.load_from_checkpoint(path)


def test_a_checkpoint_of_a_foreign_module_is_refused(tmp_path):
    path = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": {"vocab_size": 3}},
               path)
    with pytest.raises(CheckpointError, match="not saved by a lightning-rnn-reg task"):
        lrr.LanguageModel.load_from_checkpoint(path)


def test_a_pickled_object_is_refused_by_name(runs, tmp_path):
    checkpoint = torch.load(runs.lm_ckpt, weights_only=True)
    checkpoint["hyper_parameters"]["data_dir"] = pathlib.PurePosixPath("/data")
    path = tmp_path / "with_path.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match=r"holds a pickled pathlib.PurePosixPath"):
        lrr.LanguageModel.load_from_checkpoint(path)


class _Payload:
    """Unpickling it would create the file ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_malicious_checkpoint_runs_no_code(runs, tmp_path):
    marker = tmp_path / "pwned"
    checkpoint = torch.load(runs.lm_ckpt, weights_only=True)
    checkpoint["lrr"]["payload"] = _Payload(marker)
    path = tmp_path / "evil.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match=r"pickled posix.mkdir.*could run code"):
        lrr.LanguageModel.load_from_checkpoint(path)
    assert not marker.exists()


# ------------------------------------------------------------------------ vocabularies
def test_a_loaded_language_model_refuses_data_with_another_vocabulary(runs, tmp_path):
    root = tmp_path / "other"
    root.mkdir()
    for name in ("train.txt", "valid.txt", "test.txt"):  # same size, other words
        (root / name).write_text(" e f g h \n" * 20 + " y \n")
    other = TextCorpus(root, batch_size=2, eval_batch_size=2, bptt=10)
    assert other.vocab_size == runs.lm_data.vocab_size
    model = lrr.LanguageModel.load_from_checkpoint(runs.lm_ckpt)
    with pytest.raises(ValueError, match="the data's vocabulary differs from the model's"):
        _trainer(tmp_path, [], enable_checkpointing=False).test(model, datamodule=other)


def test_a_loaded_classifier_refuses_data_with_another_vocabulary(runs, tmp_path):
    other = SentimentDataModule(write_tsv(tmp_path / "other", ("fine", "bad")), format="tsv",
                                batch_size=8)
    assert other.vocab_size == runs.cls_data.vocab_size
    model = lrr.SequenceClassifier.load_from_checkpoint(runs.cls_ckpt)
    with pytest.raises(ValueError, match="the data's vocabulary differs from the model's"):
        _trainer(tmp_path, [], enable_checkpointing=False).test(model, datamodule=other)


def test_a_loaded_tagger_refuses_data_with_another_vocabulary(runs, tmp_path):
    root = write_conll(tmp_path / "other")
    for name in ("train.txt", "valid.txt", "test.txt"):
        path = root / name
        path.write_text(path.read_text().replace("John", "Mary"))
    other = CoNLL2003(root, "train.txt", "valid.txt", "test.txt", char_vocab=True)
    model = lrr.SequenceTagger.load_from_checkpoint(runs.tag_ckpt)
    with pytest.raises(ValueError, match="the data module's vocabularies differ from the "
                                         "model's"):
        _trainer(tmp_path, [], enable_checkpointing=False).test(model, datamodule=other)


def test_ckpt_path_makes_a_data_module_of_the_saving_class_adopt_the_vocabulary(runs, tmp_path):
    other = SentimentDataModule(write_tsv(tmp_path / "other", ("fine", "bad")), format="tsv",
                                batch_size=8)
    model = lrr.SequenceClassifier(other.vocab_size, other.num_classes, embedding_dim=8,
                                   hidden_size=8)
    trainer = _trainer(tmp_path, [], enable_checkpointing=False)
    with pytest.warns(UserWarning, match=r"test\.tsv: 24 of 72 tokens .* mapped to '<unk>'"):
        trainer.test(model, datamodule=other, ckpt_path=runs.cls_ckpt, verbose=False)
    assert other.vocab == runs.cls_data.vocab == model.vocabulary
