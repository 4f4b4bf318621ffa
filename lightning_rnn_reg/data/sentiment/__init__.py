"""Sentence and tweet classification data: SemEval Twitter, the Stanford Sentiment Treebank,
and any TSV/CSV file with a text and a label column; one padded ``batch_first`` batch type.

One concept a module; every public name is importable from here, as it was when this package
was one module (LightningCLI configs name ``lightning_rnn_reg.data.sentiment.X``):

- :mod:`~lightning_rnn_reg.data.sentiment.examples`: :class:`SentimentExample`,
  :class:`ClassificationBatch` and what every reader shares (malformed lines: ``ValueError``
  naming the file and line, or with ``strict=False`` skipped and counted in one
  :class:`SentimentDataWarning` per file);
- one reader a format: :mod:`~lightning_rnn_reg.data.sentiment.semeval`
  (:func:`read_semeval`), :mod:`~lightning_rnn_reg.data.sentiment.sst` (:func:`read_sst`,
  :func:`parse_sst_tree`), :mod:`~lightning_rnn_reg.data.sentiment.delimited`
  (:func:`read_delimited`);
- :mod:`~lightning_rnn_reg.data.sentiment.formats`: the table ``format=`` looks up;
- :mod:`~lightning_rnn_reg.data.sentiment.module`: :class:`SentimentDataModule` (files, or
  examples held in Python lists: :meth:`SentimentDataModule.from_examples`).
"""

from lightning_rnn_reg.data.sentiment.delimited import read_delimited
from lightning_rnn_reg.data.sentiment.examples import (
    PAD,
    ClassificationBatch,
    SentimentDataWarning,
    SentimentExample,
    collate_examples,
)
from lightning_rnn_reg.data.sentiment.module import SentimentDataModule
from lightning_rnn_reg.data.sentiment.semeval import (
    SEMEVAL_LABELS,
    normalize_semeval_text,
    read_semeval,
)
from lightning_rnn_reg.data.sentiment.sst import SST2_LABELS, SST5_LABELS, parse_sst_tree, read_sst

__all__ = [
    "PAD",
    "SEMEVAL_LABELS",
    "SST2_LABELS",
    "SST5_LABELS",
    "ClassificationBatch",
    "SentimentDataModule",
    "SentimentDataWarning",
    "SentimentExample",
    "collate_examples",
    "normalize_semeval_text",
    "parse_sst_tree",
    "read_delimited",
    "read_semeval",
    "read_sst",
]
