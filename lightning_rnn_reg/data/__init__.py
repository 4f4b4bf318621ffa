"""LightningDataModules and readers for the benchmarks (no torchtext)."""

from lightning_rnn_reg.data.conll import CoNLL2003, CoNLLFormatWarning, read_conll
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
from lightning_rnn_reg.data.sentiment import (
    ClassificationBatch,
    SentimentDataModule,
    SentimentDataWarning,
    read_delimited,
    read_semeval,
    read_sst,
)
from lightning_rnn_reg.data.tagging import TaggingBatch, TaggingVocabulary
from lightning_rnn_reg.data.temporal_order import (
    TEMPORAL_ORDER_CLASSES,
    TemporalOrder,
    temporal_order_sequences,
)
from lightning_rnn_reg.data.tokenizer import tokenize
from lightning_rnn_reg.data.vocab import Vocabulary

__all__ = [
    "TEMPORAL_ORDER_CLASSES",
    "ClassificationBatch",
    "CoNLL2003",
    "CoNLLFormatWarning",
    "LMBatch",
    "PennTreebank",
    "PennTreebankChar",
    "SentimentDataModule",
    "SentimentDataWarning",
    "TaggingBatch",
    "TaggingVocabulary",
    "TemporalOrder",
    "TextCorpus",
    "Vocabulary",
    "WikiText2",
    "WikiText2Sample",
    "batchify",
    "bptt_windows",
    "read_conll",
    "read_delimited",
    "read_semeval",
    "read_sst",
    "temporal_order_sequences",
    "tokenize",
]
