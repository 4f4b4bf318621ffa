"""The file formats :class:`~lightning_rnn_reg.data.sentiment.SentimentDataModule` reads: one
table, format name -> :class:`SentimentFormat`, so a new format is one entry of
:data:`FORMATS`."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Protocol

from lightning_rnn_reg.data.sentiment.delimited import read_delimited
from lightning_rnn_reg.data.sentiment.examples import SentimentExample
from lightning_rnn_reg.data.sentiment.semeval import SEMEVAL_LABELS, read_semeval
from lightning_rnn_reg.data.sentiment.sst import SST2_LABELS, SST5_LABELS, read_sst

__all__ = ["FORMATS", "ReadOptions", "SentimentFormat"]


class ReadOptions(Protocol):
    """The data module's options a format's reader and classes may use."""

    text_column: str
    label_column: str
    sst_classes: int
    strict: bool


@dataclass(frozen=True)
class SentimentFormat:
    """How the data module reads one ``format``.

    Attributes:
        read: ``read(path, labels, options)``: the examples of one file; ``labels`` are the
            classes known so far (``None`` while the training file of a format without fixed
            classes is read: its labels become the classes).
        files: the default train, valid and test file names.
        folder: the ``$LRR_DATA`` subfolder ``data_dir`` defaults to (``None``: ``data_dir``
            must be given).
        classes: the classes the format fixes, given the options (``None``: the ``labels``
            argument, else the sorted labels of the training file).
        fixed_classes: why ``labels`` must not be passed (``None``: they may be).
        pretokenized: the text is its tokens joined by single spaces (SST's tree leaves):
            split on spaces, not tokenized.
    """

    read: Callable[[Path, Collection[str] | None, ReadOptions], list[SentimentExample]]
    files: tuple[str, str, str]
    folder: str | None = None
    classes: Callable[[ReadOptions], tuple[str, ...]] | None = None
    fixed_classes: str | None = None
    pretokenized: bool = False


def _read_semeval(path: Path, labels: Collection[str] | None,
                  options: ReadOptions) -> list[SentimentExample]:
    return read_semeval(path, labels=labels or SEMEVAL_LABELS, strict=options.strict)


def _read_sst(path: Path, labels: Collection[str] | None,
              options: ReadOptions) -> list[SentimentExample]:
    return read_sst(path, classes=options.sst_classes, strict=options.strict)


def _read_delimited(path: Path, labels: Collection[str] | None, options: ReadOptions, *,
                    delimiter: str) -> list[SentimentExample]:
    return read_delimited(path, text_column=options.text_column,
                          label_column=options.label_column, delimiter=delimiter,
                          labels=labels, strict=options.strict)


def _sst_classes(options: ReadOptions) -> tuple[str, ...]:
    return SST2_LABELS if options.sst_classes == 2 else SST5_LABELS


#: Every format, by the name ``format=`` takes (see :class:`SentimentFormat`).
FORMATS: Mapping[str, SentimentFormat] = {
    "semeval": SentimentFormat(
        _read_semeval,
        ("twitter-2013train-A.tsv", "twitter-2013dev-A.tsv", "twitter-2013test-A.tsv"),
        folder="semeval_twitter", classes=lambda options: SEMEVAL_LABELS),
    "sst": SentimentFormat(
        _read_sst, ("train.txt", "dev.txt", "test.txt"), folder="sst", classes=_sst_classes,
        fixed_classes="SST classes are fixed by sst_classes", pretokenized=True),
    "tsv": SentimentFormat(partial(_read_delimited, delimiter="\t"),
                           ("train.tsv", "dev.tsv", "test.tsv")),
    "csv": SentimentFormat(partial(_read_delimited, delimiter=","),
                           ("train.csv", "dev.csv", "test.csv")),
}
