"""``lightning_rnn_reg.data`` split by concept: the old module paths still name every public
name (LightningCLI configs saved by earlier runs name full class paths), log under the same
logger, and every submodule's examples run."""

from __future__ import annotations

import doctest
import importlib
import logging
import pkgutil

import pytest

from lightning_rnn_reg.data import conll, language_modeling, sentiment

OLD_NAMES = {
    language_modeling: ["BPTTSampler", "BPTTStreams", "LMBatch", "PennTreebank",
                        "PennTreebankChar", "TextCorpus", "VariableBPTTSampler", "WikiText2",
                        "WikiText2Sample", "batchify", "bptt_windows", "read_corpus",
                        "text_to_tokens", "tokens_to_text", "variable_bptt_windows",
                        "WORD_BOUNDARY"],
    sentiment: ["PAD", "SEMEVAL_LABELS", "SST2_LABELS", "SST5_LABELS", "ClassificationBatch",
                "SentimentDataModule", "SentimentDataWarning", "SentimentExample",
                "collate_examples", "normalize_semeval_text", "parse_sst_tree",
                "read_delimited", "read_semeval", "read_sst"],
    conll: ["DOCSTART", "CoNLL2003", "CoNLLFormatWarning", "read_conll"],
}


@pytest.mark.parametrize("module", list(OLD_NAMES), ids=lambda m: m.__name__)
def test_old_module_paths_keep_their_public_names(module) -> None:
    missing = [name for name in OLD_NAMES[module] if not hasattr(module, name)]
    assert not missing
    assert set(OLD_NAMES[module]) - {"WORD_BOUNDARY"} <= set(module.__all__)


@pytest.mark.parametrize(("module", "cls"), [(language_modeling, "TextCorpus"),
                                             (sentiment, "SentimentDataModule")])
def test_data_modules_log_under_the_old_module_name(module, cls) -> None:
    defining = importlib.import_module(getattr(module, cls).__module__)
    assert defining.log is logging.getLogger(module.__name__)


def _submodules() -> list[str]:
    names = ["lightning_rnn_reg.data.conll_reader"]
    for package in (language_modeling, sentiment):
        names += [f"{package.__name__}.{info.name}"
                  for info in pkgutil.iter_modules(package.__path__)]
    return names


@pytest.mark.parametrize("name", _submodules())
def test_doctests_of_the_submodules_pass(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0
