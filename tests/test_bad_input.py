"""Bad inputs across the public API, the data files, checkpoints and the CLI: each gives a clear,
specific error (the exception type and a message fragment naming what is wrong) and leaves no
partial output file behind.

One table, one id per case. A case writes its input files (corpora, configs) into one
temporary folder and runs with another, empty one as the working directory (where Lightning
and the CLI put logs, checkpoints and saved configs); after the error the working directory
must still be empty and the input folder hold no output (checkpoint, log folder).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

import lightning_rnn_reg as lrr
from lightning_rnn_reg.cli import main
from lightning_rnn_reg.data import TextCorpus
from lightning_rnn_reg.data.conll import CoNLL2003
from lightning_rnn_reg.data.sentiment import SentimentDataModule, read_sst
from lightning_rnn_reg.data.vocab import Vocabulary
from lightning_rnn_reg.regularizers import Regularizer
from lightning_rnn_reg.tasks.checkpoint import CheckpointError

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


class Case(NamedTuple):
    """``call(folder, checkpoints)`` must raise ``error`` (or warn, for a ``Warning``) with a
    message matching ``match``."""

    id: str
    call: Callable[[Path, SimpleNamespace], Any]
    error: type[BaseException]
    match: str


# ----------------------------------------------------------------------------- helpers
def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _corpus(folder: Path, train: str, other: str = " a b \n") -> Path:
    for name, text in (("train.txt", train), ("valid.txt", other), ("test.txt", other)):
        _write(folder, name, text)
    return folder


def _lstm(*inputs: Any, path: str = "auto", **kw: Any) -> Any:
    return lrr.LSTM(4, 8, path=path)(torch.randn(5, 2, 4), *inputs, **kw)


def _lengths(*values: Any) -> Any:
    return _lstm(lengths=torch.tensor(values))


class _ForgetfulLM(lrr.LanguageModel):
    """A subclass whose layers drop the regularizers they are given."""

    def make_layer(self, input_size: int, hidden_size: int, regularizers: list) -> Any:
        return lrr.LSTM(input_size, hidden_size)


def _forgetful_setup(folder: Path, _: Any) -> None:
    _ForgetfulLM(10, 4, 4, 1, regularizers=[lrr.WeightDrop(0.3)]).setup("fit")


def _conll(folder: Path, text: str) -> Any:
    _write(folder, "train.txt", text)
    return CoNLL2003(folder, "train.txt", "train.txt", "train.txt").vocab


def _tsv(folder: Path, train: str, dev: str | None = None) -> Any:
    _write(folder, "train.tsv", train)
    _write(folder, "dev.tsv", dev or train)
    _write(folder, "test.tsv", train)
    data = SentimentDataModule(folder, format="tsv")
    data.setup("fit")
    return data


def _fixed_vocab_corpus(folder: Path, _: Any) -> Any:
    data = TextCorpus(_corpus(folder, " a b zebra a \n"), vocab=Vocabulary(["<unk>", "<eos>",
                                                                            "a", "b"]),
                      unknown_warning_threshold=0.0)
    return data.split_ids("train")


def _short_corpus(folder: Path, _: Any) -> Any:
    return TextCorpus(_corpus(folder, " a \n"), batch_size=20).train_dataloader()


# --------------------------------------------------------------------------- the CLI
CONFIG = """\
trainer:
  max_epochs: 1
  limit_train_batches: 2
  limit_val_batches: 1
  accelerator: cpu
  enable_progress_bar: false
model:
  class_path: lightning_rnn_reg.LanguageModel
  init_args:
    embedding_dim: 4
    hidden_size: 4
    num_layers: 1
    regularizers:
      - class_path: lightning_rnn_reg.LockedDropout
        init_args: {p: 0.3}
data:
  class_path: lightning_rnn_reg.data.TextCorpus
  init_args:
    data_dir: corpus
    batch_size: 2
    eval_batch_size: 1
    bptt: 4
"""


def _cli(folder: Path, edit: tuple[str, str] | None = None, *extra: str,
         command: str = "fit") -> None:
    _corpus(folder / "corpus", " a b c d e f \n" * 10)
    config = CONFIG.replace("data_dir: corpus", f"data_dir: {folder / 'corpus'}")
    if edit is not None:
        assert edit[0] in config
        config = config.replace(*edit)
    _write(folder, "config.yaml", config)
    main([command, "--config", str(folder / "config.yaml"), *extra])


def _cli_ckpt(folder: Path, checkpoints: SimpleNamespace, name: str) -> None:
    _cli(folder, None, "--ckpt_path", str(getattr(checkpoints, name)), command="test")


# ------------------------------------------------------------------------ checkpoints
@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A language model and a classifier checkpoint (one training step each), a truncated
    copy, a text file and the language model's data."""
    root = tmp_path_factory.mktemp("bad_input_checkpoints")
    L.seed_everything(0, verbose=False)
    lm_data = TextCorpus(_corpus(root / "lm", " a b c d \n" * 10, " a b c d \n" * 4),
                         batch_size=2, eval_batch_size=2, bptt=4)
    cls_root = root / "cls"
    rows = "text\tlabel\n" + "a good film\tpos\nan awful film\tneg\n" * 4
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        _write(cls_root, name, rows)
    cls_data = SentimentDataModule(cls_root, format="tsv", batch_size=4)
    paths = {}
    for name, model, data in (
            ("lm", lrr.LanguageModel(lm_data.vocab_size, 4, 4, 1), lm_data),
            ("classifier", lrr.SequenceClassifier(cls_data.vocab_size, cls_data.num_classes,
                                                  embedding_dim=4, hidden_size=4), cls_data)):
        saver = ModelCheckpoint(dirpath=root / name, filename="model")
        L.Trainer(max_steps=1, limit_val_batches=0, logger=False, enable_progress_bar=False,
                  enable_model_summary=False, callbacks=[saver]).fit(model, datamodule=data)
        paths[name] = root / name / "model.ckpt"
    truncated = root / "truncated.ckpt"
    truncated.write_bytes(paths["lm"].read_bytes()[:4000])
    text = _write(root, "notes.ckpt", "not a checkpoint\n")
    return SimpleNamespace(**paths, truncated=truncated, text=text, lm_data=lm_data)


def _other_vocabulary_test(folder: Path, checkpoints: SimpleNamespace) -> None:
    other = TextCorpus(_corpus(folder, " e f g h \n" * 10, " e f g h \n" * 4), batch_size=2,
                       eval_batch_size=2, bptt=4)
    assert other.vocab_size == checkpoints.lm_data.vocab_size
    model = lrr.LanguageModel.load_from_checkpoint(checkpoints.lm)
    L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
              enable_checkpointing=False, default_root_dir=str(folder)).test(model, other)


# ------------------------------------------------------------------------------ table
RATE = r"must be in \[0, 1\)"
CASES = [
    # regularizer rates
    Case("dropout_negative_rate", lambda f, c: lrr.Dropout(-0.1), ValueError,
         rf"Dropout\.p {RATE}, got -0\.1"),
    Case("locked_dropout_rate_one", lambda f, c: lrr.LockedDropout(1.0), ValueError,
         rf"LockedDropout\.p {RATE}, got 1\.0"),
    Case("dropout_nan_rate", lambda f, c: lrr.Dropout(float("nan")), ValueError,
         rf"Dropout\.p {RATE}, got nan"),
    Case("dropout_string_rate", lambda f, c: lrr.Dropout("0.5"), TypeError,
         r"Dropout\.p must be a float, got str '0\.5'"),
    Case("dropout_bool_rate", lambda f, c: lrr.Dropout(True), TypeError,
         r"Dropout\.p must be a float, got bool"),
    Case("rate_set_out_of_range_later", lambda f, c: setattr(lrr.RecurrentDropout(0.2), "p", 2),
         ValueError, rf"RecurrentDropout\.p {RATE}, got 2\.0"),
    Case("zoneout_cell_above_one", lambda f, c: lrr.Zoneout(cell=1.5), ValueError,
         rf"Zoneout\.cell {RATE}, got 1\.5"),
    Case("zoneout_negative_hidden", lambda f, c: lrr.Zoneout(hidden=-0.1), ValueError,
         rf"Zoneout\.hidden {RATE}, got -0\.1"),
    Case("ar_negative_alpha", lambda f, c: lrr.ActivationRegularization(-1.0), ValueError,
         r"ActivationRegularization\.alpha must be a finite number >= 0, got -1\.0"),
    Case("tar_infinite_beta", lambda f, c: lrr.TemporalActivationRegularization(float("inf")),
         ValueError, r"TemporalActivationRegularization\.beta must be a finite number >= 0"),
    Case("dropout_unknown_site", lambda f, c: lrr.Dropout(0.1, at="middle"), ValueError,
         r"Dropout: at must be one of \('input', 'between', 'output'\), got 'middle'"),
    # regularizers where they cannot act
    Case("weight_drop_on_a_vector", lambda f, c: lrr.WeightDrop(0.5)(torch.randn(4)), TypeError,
         r"WeightDrop acts on a hidden-to-hidden weight matrix \(W_hh, 2-D\); got shape \(4,\)"),
    Case("weight_drop_on_a_module", lambda f, c: lrr.WeightDrop(0.5)(torch.nn.Linear(3, 3)),
         TypeError, r"W_hh, 2-D\); got Linear"),
    Case("cell_site_regularizer_on_the_fused_path",
         lambda f, c: lrr.LSTM(4, 4, regularizers=[lrr.Zoneout(0.1)], path="fused"), ValueError,
         r"path='fused' cannot run Zoneout, which acts inside the recurrence"),
    Case("cell_dropout_on_a_gru", lambda f, c: lrr.GRU(4, 4, regularizers=[lrr.CellDropout(0.1)]),
         ValueError, r"GRU: CellDropout acts on an LSTM cell state; GRU has none"),
    Case("loss_regularizer_given_to_a_layer",
         lambda f, c: lrr.LSTM(4, 4, regularizers=[lrr.ActivationRegularization(1.0)]),
         ValueError, r"ActivationRegularization acts at site 'loss', which a recurrent layer "
                     r"cannot serve"),
    Case("two_weight_drops_in_one_layer",
         lambda f, c: lrr.LSTM(4, 4, regularizers=[lrr.WeightDrop(0.1), lrr.WeightDrop(0.2)]),
         ValueError, r"WeightDrop and WeightDrop both set the weight .weight_hh.; give one"),
    Case("make_layer_that_drops_its_regularizers", _forgetful_setup, ValueError,
         r"_ForgetfulLM: WeightDrop acts inside a recurrent layer, but no layer holds it"),
    # recurrent layer inputs
    Case("lstm_input_of_rank_four", lambda f, c: lrr.LSTM(4, 8)(torch.randn(5, 2, 4, 1)),
         ValueError, r"expected input of rank 3 .* got shape \(5, 2, 4, 1\)"),
    Case("lstm_input_feature_size", lambda f, c: lrr.LSTM(4, 8)(torch.randn(5, 2, 3)),
         ValueError, r"input\.size\(-1\) must equal input_size=4, got 3"),
    Case("lstm_h0_wrong_batch",
         lambda f, c: _lstm((torch.zeros(1, 3, 8), torch.zeros(1, 3, 8))), ValueError,
         r"expected h_0 of shape \(1, 2, 8\), got \(1, 3, 8\)"),
    Case("lstm_h0_wrong_size_on_the_loop",
         lambda f, c: _lstm((torch.zeros(1, 2, 7), torch.zeros(1, 2, 8)), path="loop"),
         ValueError, r"expected h_0 of shape \(1, 2, 8\), got \(1, 2, 7\)"),
    Case("lstm_state_not_a_tuple", lambda f, c: _lstm(torch.zeros(1, 2, 8)), ValueError,
         r"hx must be a tuple \(h_0, c_0\)"),
    Case("lengths_longer_than_the_sequence", lambda f, c: _lengths(6, 3), ValueError,
         r"lengths must lie in \[1, 5\] \(the sequence length\), got min 3, max 6"),
    Case("lengths_zero", lambda f, c: _lengths(0, 3), ValueError,
         r"lengths must lie in \[1, 5\] .* got min 0"),
    Case("lengths_negative", lambda f, c: _lengths(-1, 3), ValueError, r"got min -1, max 3"),
    Case("lengths_wrong_count", lambda f, c: _lengths(5, 3, 2), ValueError,
         r"lengths must have shape \(2,\), got \(3,\)"),
    Case("lengths_not_integers", lambda f, c: _lengths(2.5, 3.0), ValueError,
         r"lengths must be integers, got torch\.float32"),
    # regularizer specs (YAML / checkpoints)
    Case("spec_unknown_class_path",
         lambda f, c: Regularizer.from_spec({"class_path": "lightning_rnn_reg.Dropuot"}),
         ValueError, r"unknown regularizer class_path 'lightning_rnn_reg\.Dropuot'"),
    Case("spec_class_that_is_not_a_regularizer",
         lambda f, c: Regularizer.from_spec({"class_path": "torch.nn.Linear"}), ValueError,
         r"'torch\.nn\.Linear' is not a lightning_rnn_reg Regularizer"),
    Case("spec_unknown_rate_key",
         lambda f, c: Regularizer.from_spec({"class_path": "Zoneout", "init_args": {"c": 0.1}}),
         TypeError, r"Zoneout: unknown argument\(s\) \['c'\]; it takes \['cell', 'hidden', "),
    Case("spec_given_as_a_string", lambda f, c: lrr.LanguageModel(10, regularizers=["Dropout"]),
         TypeError, r"a regularizer must be a Regularizer object or a dict with 'class_path'"),
    # task modules
    Case("language_model_vocab_size_zero", lambda f, c: lrr.LanguageModel(0), ValueError,
         r"LanguageModel: vocab_size must be >= 1, got 0"),
    Case("language_model_unknown_optimizer",
         lambda f, c: lrr.LanguageModel(10, optimizer="rmsprop"), ValueError,
         r"optimizer must be one of \('sgd', 'adam', 'nt_asgd'\), got 'rmsprop'"),
    Case("classifier_one_class", lambda f, c: lrr.SequenceClassifier(10, 1), ValueError,
         r"SequenceClassifier: num_classes must be >= 2, got 1"),
    Case("tagger_between_dropout_with_one_layer",
         lambda f, c: lrr.SequenceTagger(10, 5, regularizers=[lrr.Dropout(0.1, at="between")]),
         ValueError, r"SequenceTagger: Dropout\(at='between'\) acts between recurrent layers, "
                     r"but SequenceTagger has num_layers=1, so it would never act"),
    Case("classify_a_single_string",
         lambda f, c: lrr.SequenceClassifier(10, 2).classify("a text"), TypeError,
         r"classify takes a list of texts, not one str"),
    Case("nonfinite_guard_zero", lambda f, c: lrr.NonFiniteGuard(max_consecutive=0), ValueError,
         r"max_consecutive must be an integer >= 1, got 0"),
    # data files
    Case("empty_corpus_file", lambda f, c: TextCorpus(_corpus(f, "\n\n")).vocab, ValueError,
         r"train\.txt: the file is empty \(it holds no tokens\)"),
    Case("missing_corpus_file", lambda f, c: TextCorpus(f / "nowhere").vocab, FileNotFoundError,
         r"nowhere/train\.txt: no such file"),
    Case("corpus_too_short_for_the_batch", _short_corpus, ValueError,
         r"train\.txt: 2 tokens are too few for 20 streams of at least 2 tokens"),
    Case("unknown_tokens_with_a_fixed_vocabulary", _fixed_vocab_corpus, UserWarning,
         r"train\.txt: 1 of 5 tokens \(20\.00%\) are not in the vocabulary and were mapped "
         r"to '<unk>'"),
    Case("conll_line_with_missing_column",
         lambda f, c: _conll(f, "EU NNP I-NP I-ORG\nrejects VBZ I-VP\n"), ValueError,
         r"train\.txt: line 2: 3 columns, but the first data line \(line 1\) has 4"),
    Case("conll_invalid_tag", lambda f, c: _conll(f, "EU NNP I-NP X-ORG\n"), ValueError,
         r"train\.txt: line 1: tag 'X-ORG' is not 'O' or one of the prefixes"),
    Case("conll_file_without_sentences", lambda f, c: _conll(f, "-DOCSTART- -X- -X- O\n\n"),
         ValueError, r"train\.txt: the file holds no sentence"),
    Case("sst_unbalanced_tree",
         lambda f, c: list(read_sst(_write(f, "sst.txt", "(3 (2 good) (2 film)\n"))),
         ValueError, r"sst\.txt: line 1: unbalanced tree: missing '\)'"),
    Case("sst_label_out_of_range",
         lambda f, c: list(read_sst(_write(f, "sst.txt", "(2 (2 ok))\n(7 (2 good))\n"))),
         ValueError, r"sst\.txt: line 2: expected a label 0-4 after '\(', got '7'"),
    Case("sentiment_unknown_label",
         lambda f, c: _tsv(f, "text\tlabel\ngood\tpos\nbad\tneg\n", "text\tlabel\nok\tmeh\n"),
         ValueError, r"dev\.tsv: line 2: unknown label 'meh' \(expected one of \['neg', 'pos'\]\)"),
    Case("sentiment_row_with_extra_field",
         lambda f, c: _tsv(f, "text\tlabel\ngood\tpos\textra\n"), ValueError,
         r"train\.tsv: line 2: expected 2 fields like the header, got 3"),
    Case("sentiment_header_without_text_column",
         lambda f, c: _tsv(f, "sentence\tlabel\ngood\tpos\n"), ValueError,
         r"train\.tsv: line 1: the header \['sentence', 'label'\] lacks the column\(s\) "
         r"\['text'\]"),
    Case("vocabulary_with_repeated_tokens", lambda f, c: Vocabulary(["<unk>", "a", "a"]),
         ValueError, r"Vocabulary tokens must be unique; repeated: \['a'\]"),
    # checkpoints
    Case("checkpoint_of_another_task",
         lambda f, c: lrr.LanguageModel.load_from_checkpoint(c.classifier), CheckpointError,
         r"saved by lightning_rnn_reg\.tasks\.classifier\.SequenceClassifier, not by "
         r"LanguageModel"),
    Case("truncated_checkpoint",
         lambda f, c: lrr.LanguageModel.load_from_checkpoint(c.truncated), CheckpointError,
         r"truncated\.ckpt' is truncated, corrupted or not a checkpoint"),
    Case("text_file_as_checkpoint",
         lambda f, c: lrr.SequenceTagger.load_from_checkpoint(c.text), CheckpointError,
         r"notes\.ckpt' is (truncated, corrupted or )?not a checkpoint"),
    Case("data_vocabulary_differs_from_the_checkpoints", _other_vocabulary_test, ValueError,
         r"LanguageModel: the data's vocabulary differs from the model's"),
    # the CLI (real in-process calls)
    Case("cli_malformed_yaml", lambda f, c: _cli(f, ("  max_epochs: 1", " max_epochs: [1")),
         SystemExit, r"Problems parsing config"),
    Case("cli_unknown_model_class_path",
         lambda f, c: _cli(f, ("LanguageModel", "LanguageModle")),
         SystemExit, r"module 'lightning_rnn_reg' has no attribute 'LanguageModle'"),
    Case("cli_unknown_model_option", lambda f, c: _cli(f, ("hidden_size", "hidden_sise")),
         SystemExit, r"Option 'hidden_sise' is not accepted"),
    Case("cli_unknown_regularizer_class_path", lambda f, c: _cli(f, ("LockedDropout", "Lockd")),
         SystemExit, r"unknown regularizer class_path 'lightning_rnn_reg\.Lockd'"),
    Case("cli_unknown_regularizer_rate_key", lambda f, c: _cli(f, ("{p: 0.3}", "{q: 0.3}")),
         SystemExit, r"LockedDropout: unknown argument\(s\) \['q'\]; it takes \['p', 'at'"),
    Case("cli_regularizer_rate_out_of_range", lambda f, c: _cli(f, ("{p: 0.3}", "{p: 1.5}")),
         SystemExit, rf"LockedDropout\.p {RATE}, got 1\.5"),
    Case("cli_test_with_a_corrupted_checkpoint", lambda f, c: _cli_ckpt(f, c, "truncated"),
         SystemExit, r"truncated\.ckpt' is truncated, corrupted or not a checkpoint"),
    Case("cli_test_with_a_text_file_as_checkpoint", lambda f, c: _cli_ckpt(f, c, "text"),
         SystemExit, r"notes\.ckpt' is (truncated, corrupted or )?not a checkpoint"),
]


def test_the_suite_has_at_least_thirty_distinct_cases():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)) >= 30


OUTPUTS = ("lightning_logs", "checkpoints", "config.yaml.bak")


@pytest.mark.filterwarnings("ignore::UserWarning")  # Lightning's hints about tiny runs
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_gives_a_clear_error_and_no_partial_output(case, checkpoints, tmp_path,
                                                             monkeypatch, capsys):
    inputs, workdir = tmp_path / "inputs", tmp_path / "workdir"
    inputs.mkdir()
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    if issubclass(case.error, Warning):
        with pytest.warns(case.error, match=case.match):
            case.call(inputs, checkpoints)
    elif case.error is SystemExit:  # the CLI prints the reason in brief and exits with 2
        with pytest.raises(SystemExit) as exit_info:
            case.call(inputs, checkpoints)
        assert exit_info.value.code == 2
        assert re.search(case.match, capsys.readouterr().err)
    else:
        with pytest.raises(case.error, match=case.match):
            case.call(inputs, checkpoints)
    assert list(workdir.iterdir()) == [], "output left in the working directory"
    left = [path for path in inputs.rglob("*") if path.suffix in (".ckpt", ".pt")
            or path.name in OUTPUTS]
    assert left == [], "output left next to the inputs"


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_control_the_unedited_config_fits_and_tests_from_its_checkpoint(tmp_path, monkeypatch,
                                                                       capsys):
    """The CLI cases fail because of their one edit: the base config fits, writes its outputs
    to the working directory, and ``test --ckpt_path`` of its checkpoint runs."""
    monkeypatch.chdir(tmp_path)
    _cli(tmp_path / "inputs")
    saved = sorted((tmp_path / "lightning_logs").rglob("*.ckpt"))
    assert len(saved) == 1 and (tmp_path / "lightning_logs" / "version_0" / "config.yaml").is_file()
    _cli(tmp_path / "inputs", None, "--ckpt_path", str(saved[0]), command="test")
    assert "test/ppl" in capsys.readouterr().out
