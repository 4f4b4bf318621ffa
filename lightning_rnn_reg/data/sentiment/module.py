"""SentimentDataModule: labelled sentences or tweets as padded, length-bucketed batches."""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from torch import Tensor
from torch.utils.data import Dataset

from lightning_rnn_reg.data.readers import data_dir_or_default, report_unknown
from lightning_rnn_reg.data.sentiment.examples import (
    PAD,
    ClassificationBatch,
    SentimentExample,
    checked_examples,
    collate_examples,
)
from lightning_rnn_reg.data.sentiment.formats import FORMATS, SentimentFormat
from lightning_rnn_reg.data.split_module import FileSplitDataModule
from lightning_rnn_reg.data.tokenizer import tokenize
from lightning_rnn_reg.data.vocab import UNK, Vocabulary
from lightning_rnn_reg.validation import check_positive_ints

__all__ = ["SentimentDataModule"]

#: The package's logger (its name is the one the module had before it became a package).
log = logging.getLogger(__name__.rpartition(".")[0])


class _Encoded(Dataset[tuple[Tensor, int]]):
    """One split: token ids and class index per example."""

    def __init__(self, ids: list[Tensor], classes: list[int]) -> None:
        self.ids, self.classes = ids, classes

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.ids[index], self.classes[index]


class SentimentDataModule(FileSplitDataModule):
    """Labelled sentences or tweets as padded, length-bucketed :class:`ClassificationBatch`es.

    Formats, with their default files, folder (``data_dir`` defaults to
    ``$LRR_DATA/<folder>``) and classes:

    - ``"semeval"``: ``twitter-2013train-A.tsv``, ``twitter-2013dev-A.tsv``,
      ``twitter-2013test-A.tsv`` in ``semeval_twitter``; :data:`SEMEVAL_LABELS`
      (:func:`read_semeval`);
    - ``"sst"``: ``train.txt``, ``dev.txt``, ``test.txt`` in ``sst``; :data:`SST2_LABELS`
      (``sst_classes=2``) or :data:`SST5_LABELS` (:func:`read_sst`);
    - ``"tsv"`` / ``"csv"``: ``train.tsv``, ``dev.tsv``, ``test.tsv`` (or ``.csv``) in
      ``data_dir`` (required); ``labels``, else the sorted labels of the training file
      (:func:`read_delimited`).

    The semeval defaults are SemEval-2013 Task 2B (Nakov et al. 2013); sst with
    ``sst_classes=2`` is sentence-level SST-2 (6,920 / 872 / 1,821 sentences).

    Tokens: SST's tree leaves as they are; other formats through
    :func:`~lightning_rnn_reg.data.tokenizer.tokenize` with ``normalize_twitter``; all
    lowercased with ``lowercase``. The vocabulary is built from the training split
    (``<unk>`` = 0, ``<pad>`` = 1, then by count; words seen fewer than ``min_count`` times
    become ``<unk>``); tokens of valid/test outside it become ``<unk>``, their share reported
    once per split (a warning above ``unknown_warning_threshold``). ``vocab_size``,
    ``num_classes`` and ``class_names`` work before :meth:`setup` (the training file is read
    on first use and cached). ``tokenizer_options`` are the keyword arguments of
    :func:`tokenize` that reproduce the data's tokens from raw text, so a model can carry them.

    Loaders: training batches of ``batch_size`` bucketed by length and shuffled each epoch
    (``seed + epoch``), the same number on every rank; evaluation batches of
    ``eval_batch_size`` sorted by length, each example on exactly one rank.

    Args:
        data_dir: folder of the files (default ``$LRR_DATA/semeval_twitter`` or ``.../sst``).
        format: ``"semeval"``, ``"sst"``, ``"tsv"`` or ``"csv"``.
        train: training file name in ``data_dir`` (defaults above).
        valid: validation file name in ``data_dir`` (defaults above).
        test: test file name in ``data_dir`` (defaults above).
        text_column: header name of the text column (tsv / csv).
        label_column: header name of the label column (tsv / csv).
        labels: class names in index order; every label read must be one of them.
        sst_classes: 2 (SST-2) or 5 (SST-5).
        lowercase: lowercase the text (tokenizer option).
        normalize_twitter: handles -> ``@user``, URLs -> ``<url>`` (tokenizer option).
        min_count: training words seen fewer times become ``<unk>``.
        batch_size: training examples per batch and rank.
        eval_batch_size: validation / test examples per batch and rank.
        strict: raise on a malformed line (``False``: skip it, one warning per file).
        num_workers: ``DataLoader`` worker processes.
        seed: seed of the training shuffle.
        unknown_warning_threshold: share of unknown valid/test tokens that warns.

    Example:
        >>> dm = SentimentDataModule(format="sst", sst_classes=2)  # doctest: +SKIP
        >>> dm.num_classes, dm.class_names  # doctest: +SKIP
        (2, ('negative', 'positive'))
        >>> tokens, lengths, labels = next(iter(dm.train_dataloader()))  # doctest: +SKIP
    """

    #: The formats, by name: how each is read (:mod:`~lightning_rnn_reg.data.sentiment.formats`).
    FORMATS: ClassVar[Mapping[str, SentimentFormat]] = FORMATS
    IN_MEMORY_FROM: ClassVar[str] = "from_examples"
    VOCABULARY_KEY: ClassVar[str] = "vocab"

    def __init__(
        self,
        data_dir: str | Path | None = None,
        format: str = "semeval",
        train: str | None = None,
        valid: str | None = None,
        test: str | None = None,
        text_column: str = "text",
        label_column: str = "label",
        labels: Sequence[str] | None = None,
        sst_classes: int = 2,
        lowercase: bool = True,
        normalize_twitter: bool = True,
        min_count: int = 1,
        batch_size: int = 32,
        eval_batch_size: int = 128,
        strict: bool = True,
        num_workers: int = 0,
        seed: int = 0,
        unknown_warning_threshold: float = 0.05,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if format not in self.FORMATS:
            raise ValueError(f"{name}: format must be one of {list(self.FORMATS)}, got "
                             f"{format!r}")
        spec = self.FORMATS[format]
        if sst_classes not in (2, 5):
            raise ValueError(f"{name}: sst_classes must be 2 or 5, got {sst_classes!r}")
        if spec.fixed_classes is not None and labels is not None:
            raise ValueError(f"{name}: {spec.fixed_classes}; do not pass labels")
        if labels is not None and (len(set(labels)) != len(labels) or len(labels) < 2):
            raise ValueError(f"{name}: labels must be at least 2 distinct names, got {labels}")
        check_positive_ints(name, min_count=min_count, batch_size=batch_size,
                            eval_batch_size=eval_batch_size)
        if num_workers < 0:
            raise ValueError(f"{name}: num_workers must be >= 0, got {num_workers}")
        if data_dir is None:
            if spec.folder is None:
                raise ValueError(f"{name}: format={format!r} needs data_dir")
            data_dir = data_dir_or_default(None, spec.folder, name)
        self.data_dir = Path(data_dir)
        self.format = format
        self.files = {split: given or default for split, given, default
                      in zip(("train", "valid", "test"), (train, valid, test), spec.files,
                             strict=True)}
        self.text_column, self.label_column = text_column, label_column
        self.sst_classes = sst_classes
        self.lowercase, self.normalize_twitter = lowercase, normalize_twitter
        self.min_count = min_count
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.strict, self.num_workers, self.seed = strict, num_workers, seed
        self.unknown_warning_threshold = unknown_warning_threshold
        self._labels = tuple(labels) if labels is not None else self._format_labels()
        self._vocab: Vocabulary | None = None
        self._train: list[SentimentExample] | None = None
        self._encoded: dict[str, _Encoded] = {}
        self._memory: dict[str, list[SentimentExample]] | None = None

    #: Constructor arguments about files, which :meth:`from_examples` does not take.
    FILE_OPTIONS: ClassVar[tuple[str, ...]] = ("data_dir", "format", "text_column",
                                               "label_column", "sst_classes")

    @classmethod
    def from_examples(
        cls,
        train: Sequence[tuple[str, str]],
        valid: Sequence[tuple[str, str]],
        test: Sequence[tuple[str, str]] | None = None,
        **options: Any,
    ) -> SentimentDataModule:
        """The data module of examples held in memory: ``(text, label)`` pairs per split.

        It behaves as the module of a ``format="tsv"`` file of the same texts and labels
        does (the same vocabulary, batches, ``vocab_size`` / ``num_classes`` /
        ``class_names`` / ``tokenizer_options``, checkpoint state): texts are stripped and
        tokenized with :func:`~lightning_rnn_reg.data.tokenizer.tokenize`; the classes are
        ``labels`` if given (every label must be one of them), else the sorted labels of
        ``train``, and a ``valid`` / ``test`` label outside them is an error. ``test=None``:
        no test split (``Trainer.test`` / ``predict`` then raise). ``options`` are the
        constructor's other arguments (``labels``, ``lowercase``, ``normalize_twitter``,
        ``min_count``, ``batch_size``, ``eval_batch_size``, ``strict``, ``seed``, ...).

        Raises:
            TypeError: a split that is not a sequence of ``(str, str)`` pairs (e.g. a file
                name: use the constructor), or a file option (:attr:`FILE_OPTIONS`).
            ValueError: an empty split; an empty text, or a label outside the classes
                (the split and the example's index named; ``strict=False`` drops such
                examples, with one :class:`SentimentDataWarning` per split).

        Example::

            dm = SentimentDataModule.from_examples(
                train=[("What a great film", "positive"), ("Awful", "negative")],
                valid=[("Great", "positive")], batch_size=2)
        """
        name = cls._in_memory_name(options, "data files; in-memory examples are read as a "
                                            "TSV file of their texts and labels would be")
        module = cls(data_dir=Path(f"<{name}>"), format="tsv", **options)
        memory: dict[str, list[SentimentExample]] = {}
        for split, items in (("train", train), ("valid", valid), ("test", test)):
            if items is not None:
                labels = module._labels if split == "train" else module._train_labels(memory)
                memory[split] = checked_examples(f"{name}: {split}", items, labels,
                                                  module.strict)
        module._memory = memory
        return module

    def in_memory_splits(self) -> Collection[str] | None:
        return self._memory

    def _train_labels(self, memory: Mapping[str, list[SentimentExample]]) -> tuple[str, ...]:
        """The classes once the in-memory train split is known."""
        if self._labels is None:
            self._labels = tuple(sorted({example.label for example in memory["train"]}))
        return self._labels

    # ------------------------------------------------------------------------- properties
    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names in index order (tsv / csv without ``labels``: sorted train labels)."""
        if self._labels is None:
            self._labels = tuple(sorted({example.label for example in self._train_examples()}))
        return self._labels

    @property
    def num_classes(self) -> int:
        """Number of classes: the model's output size."""
        return len(self.class_names)

    @property
    def vocab(self) -> Vocabulary:
        """The word vocabulary of the training split (built on first access)."""
        if self._vocab is None:
            train = [self.tokens(example.text) for example in self._train_examples()]
            self._vocab = Vocabulary.build(train, min_count=self.min_count, specials=(UNK, PAD))
        return self._vocab

    @property
    def vocab_size(self) -> int:
        """Number of words in the vocabulary: the model's embedding rows."""
        return len(self.vocab)

    @property
    def pad_index(self) -> int:
        """The id of ``<pad>``."""
        return self.vocab.stoi[PAD]

    @property
    def tokenizer_options(self) -> dict[str, bool]:
        """Keyword arguments of :func:`tokenize` that turn raw text into this data's tokens."""
        return {"lowercase": self.lowercase, "normalize_twitter": self.normalize_twitter}

    def tokens(self, text: str) -> list[str]:
        """The tokens of an example's text (SST: its leaves, joined by spaces; else
        :func:`tokenize`), lowercased with ``lowercase``."""
        if self.FORMATS[self.format].pretokenized:
            return (text.lower() if self.lowercase else text).split(" ")
        return tokenize(text, **self.tokenizer_options)

    # -------------------------------------------------------------------- lightning hooks
    def split_dataset(self, split: str) -> tuple[_Encoded, list[int]]:
        dataset = self.dataset(split)
        return dataset, [len(ids) for ids in dataset.ids]

    def collate(self, items: list[tuple[Tensor, int]]) -> ClassificationBatch:
        return collate_examples(items, pad_index=self.pad_index)

    def state_dict(self) -> dict[str, Any]:
        """Vocabulary, class names, tokenizer options and the training position as plain data
        (for checkpoints)."""
        return {"vocab": self.vocab.to_state(), "class_names": list(self.class_names),
                "tokenizer_options": self.tokenizer_options, **self.position_state()}

    def adopt_vocabulary(self, state: Any) -> None:
        vocab = Vocabulary.from_state(state)
        if vocab != self._vocab:
            self._vocab = vocab
            self._encoded.clear()

    # ------------------------------------------------------------------------------ data
    def dataset(self, split: str) -> _Encoded:
        """The encoded examples of ``split``: ``(ids (L,), class index)`` pairs."""
        if split not in self._encoded:
            examples = (self._train_examples() if split == "train"
                        else self._read(split, self.class_names))
            self._encoded[split] = self._encode(split, examples)
        return self._encoded[split]

    def _train_examples(self) -> list[SentimentExample]:
        if self._train is None:
            self._train = self._read("train", self._labels)
        return self._train

    def _read(self, split: str, labels: Collection[str] | None) -> list[SentimentExample]:
        if self._memory is not None:
            if split not in self._memory:
                raise ValueError(f"{type(self).__name__}: no {split} split (from_examples was "
                                 f"given {split}=None)")
            return self._memory[split]
        path = self.path(split)
        examples = self.FORMATS[self.format].read(path, labels, self)
        if not examples:
            raise ValueError(f"{path}: no examples")
        return examples

    def _encode(self, split: str, examples: list[SentimentExample]) -> _Encoded:
        vocab, index = self.vocab, {name: i for i, name in enumerate(self.class_names)}
        ids, unknown, total = [], 0, 0
        for example in examples:
            encoded, missing = vocab.encode_with_unknown(self.tokens(example.text) or [UNK])
            ids.append(encoded)
            unknown, total = unknown + missing, total + encoded.numel()
        if split != "train":
            report_unknown(self._where(split), unknown, total, UNK,
                           self.unknown_warning_threshold, logger=log)
        return _Encoded(ids, [index[example.label] for example in examples])

    def _format_labels(self) -> tuple[str, ...] | None:
        classes = self.FORMATS[self.format].classes
        return classes(self) if classes is not None else None
