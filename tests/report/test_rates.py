"""Readable labels of the regularizer rate tags and constant rates (synthetic runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning_rnn_reg.report import Run, ScalarSeries, rate_labels
from lightning_rnn_reg.report.rates import is_constant

ONE = ScalarSeries((0, 1), (0.3, 0.3))
SPECS = [{"class_path": "lightning_rnn_reg.regularizers.embedding.EmbeddingDropout",
          "init_args": {"p": 0.1}},
         {"class_path": "lightning_rnn_reg.regularizers.dropout.LockedDropout",
          "init_args": {"at": "input", "p": 0.3}},
         {"class_path": "lightning_rnn_reg.regularizers.dropout.LockedDropout",
          "init_args": {"at": "between", "p": 0.2}},
         {"class_path": "lightning_rnn_reg.regularizers.weight_drop.WeightDrop",
          "init_args": {"p": 0.3}}]
TAGS = ["reg/0_EmbeddingDropout/p", "reg/1_LockedDropout/p", "reg/2_LockedDropout/p",
        "reg/3_WeightDrop/p"]


def _run(tags: list[str], hparams: dict[str, Any] | None = None,
         config: dict[str, Any] | None = None) -> Run:
    return Run("r", Path("r"), dict.fromkeys(tags, ONE), hparams=hparams or {},
               config=config or {})


def test_rate_labels_name_an_activation_dropout_by_its_site_from_the_hparams():
    labels = rate_labels(_run(TAGS, hparams={"regularizers": SPECS}))
    assert [label for label, _ in labels.values()] == [
        "EmbeddingDropout", "LockedDropout(at=input)", "LockedDropout(at=between)",
        "WeightDrop"]


def test_rate_labels_read_the_config_without_hparams():
    config = {"model": {"init_args": {"regularizers": SPECS}}}
    assert rate_labels(_run(TAGS, config=config))["reg/2_LockedDropout/p"] == (
        "LockedDropout(at=between)", "p")


def test_rate_labels_without_specs_number_a_class_the_run_has_twice():
    assert [label for label, _ in rate_labels(_run(TAGS)).values()] == [
        "EmbeddingDropout", "LockedDropout[1]", "LockedDropout[2]", "WeightDrop"]


def test_rate_labels_ignore_a_spec_of_another_class():
    specs = [SPECS[3], *SPECS[:3]]  # index 1 is now EmbeddingDropout's spec
    labels = rate_labels(_run(["reg/1_LockedDropout/p"], hparams={"regularizers": specs}))
    assert labels["reg/1_LockedDropout/p"] == ("LockedDropout", "p")


def test_rate_labels_read_the_monitor_tags_without_task_tags():
    tags = ["regularizers/rate/1_LockedDropout/p", "regularizers/rate/rnn.regularizers.0/cell"]
    labels = rate_labels(_run(tags, hparams={"regularizers": SPECS}))
    assert list(labels.values()) == [("LockedDropout(at=input)", "p"),
                                     ("rnn.regularizers.0", "cell")]


def test_is_constant_for_a_rate_that_never_moved():
    assert is_constant(ScalarSeries((0, 5, 9), (0.3, 0.3, 0.3)))


def test_is_constant_is_false_for_a_scheduled_rate():
    assert not is_constant(ScalarSeries((0, 5, 9), (0.0, 0.2, 0.3)))
