"""LightningDataModules and readers for the benchmarks (no torchtext)."""

from lightning_rnn_reg.data.language_modeling import (
    LMBatch,
    PennTreebank,
    PennTreebankChar,
    TextCorpus,
    WikiText2,
    WikiText2Sample,
    batchify,
    bptt_windows,
)
from lightning_rnn_reg.data.vocab import Vocabulary

__all__ = [
    "LMBatch",
    "PennTreebank",
    "PennTreebankChar",
    "TextCorpus",
    "Vocabulary",
    "WikiText2",
    "WikiText2Sample",
    "batchify",
    "bptt_windows",
]
