"""The CoNLL2003 data module: CoNLL column files for sequence tagging (NER) as padded batches.

The files are read by :func:`~lightning_rnn_reg.data.conll_reader.read_conll` (column format,
tag schemes, malformed input and ``strict=False`` repairs: see
:mod:`~lightning_rnn_reg.data.conll_reader`), whose names are importable from here too.

Sentences held in Python lists (``(tokens, tags)`` pairs): :meth:`CoNLL2003.from_sentences`,
the same data module as a column file of them would give, with the same checks.

What the model sees of a sentence (word ids, characters, capitalization classes, tag ids) is
defined in :mod:`~lightning_rnn_reg.data.tagging`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

from torch import Tensor

from lightning_rnn_reg.data.conll_reader import (
    DOCSTART,
    CoNLLFormatWarning,
    check_types,
    checked_sentences,
    read_conll,
)
from lightning_rnn_reg.data.readers import DATA_ENV_VAR, data_dir_or_default, report_unknown
from lightning_rnn_reg.data.split_module import FileSplitDataModule
from lightning_rnn_reg.data.tagging import TaggedSentence, TaggingBatch, TaggingVocabulary
from lightning_rnn_reg.data.vocab import UNK, Vocabulary
from lightning_rnn_reg.tag_schemes import check_scheme, split_tag
from lightning_rnn_reg.validation import check_positive_ints

__all__ = ["DOCSTART", "CoNLL2003", "CoNLLFormatWarning", "read_conll"]

log = logging.getLogger(__name__)


class CoNLL2003(FileSplitDataModule):
    """CoNLL-2003 NER (Tjong Kim Sang & De Meulder 2003), or any column file, as padded batches.

    Batches are :class:`TaggingBatch` (``batch_first``). The vocabularies come from the
    training file, read on first use and cached, so ``vocab_size``, ``num_tags``,
    ``char_vocab_size`` and ``tag_names`` are available before :meth:`setup` (the CLI links
    them to the model). Unknown words of a split become ``<unk>``; their share is reported
    once per split (a warning above ``unknown_warning_threshold``, an info log otherwise).

    Loaders (:func:`~lightning_rnn_reg.data.batching.bucket_loader`): training buckets
    sentences of similar length, shuffled with ``seed + epoch``, the same number of batches
    on every rank; evaluation sorts by length and gives each sentence to exactly one rank, so
    metrics summed over ranks are exact. The predict loader reads the test file in file order.

    Args:
        data_dir: the folder of the files (default ``$LRR_DATA/conll2003``).
        train: training file name in ``data_dir``.
        valid: validation file name in ``data_dir``.
        test: test file name in ``data_dir``.
        tag_scheme: scheme of the files' tags (``IOB1`` for the original CoNLL-2003 files).
        token_column: the column that holds the token.
        tag_column: the column that holds its tag.
        min_count: training words seen fewer times become ``<unk>``.
        lowercase: lowercase the words (the capitalization feature keeps the case).
        char_vocab: build a character vocabulary and fill ``TaggingBatch.chars``.
        max_word_length: characters kept per word (the first ones); ``None`` keeps all.
        batch_size: training sentences per batch and rank.
        eval_batch_size: validation / test sentences per batch and rank.
        strict: raise on malformed lines instead of repairing them.
        num_workers: ``DataLoader`` workers.
        seed: seed of the training order.
        unknown_warning_threshold: share of unknown words above which a split warns.

    Example:
        >>> dm = CoNLL2003("data/conll2003", lowercase=True, char_vocab=True)  # doctest: +SKIP
        >>> dm.num_tags, dm.tag_names[:3]  # doctest: +SKIP
        (17, ['O', 'B-LOC', 'I-LOC'])
    """

    SUBFOLDER: ClassVar[str] = "conll2003"
    IN_MEMORY_FROM: ClassVar[str] = "from_sentences"
    VOCABULARY_KEY: ClassVar[str] = "vocabulary"

    def __init__(
        self,
        data_dir: str | Path | None = None,
        train: str = "eng.train",
        valid: str = "eng.testa",
        test: str = "eng.testb",
        tag_scheme: str = "IOB1",
        token_column: int = 0,
        tag_column: int = -1,
        min_count: int = 1,
        lowercase: bool = False,
        char_vocab: bool = False,
        max_word_length: int | None = 30,
        batch_size: int = 32,
        eval_batch_size: int = 64,
        strict: bool = True,
        num_workers: int = 0,
        seed: int = 0,
        unknown_warning_threshold: float = 0.05,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        data_dir = data_dir_or_default(data_dir, self.SUBFOLDER, name)
        check_positive_ints(name, min_count=min_count, batch_size=batch_size,
                            eval_batch_size=eval_batch_size)
        if num_workers < 0:
            raise ValueError(f"{name}: num_workers must be >= 0, got {num_workers}")
        self.data_dir = Path(data_dir)
        self.files = {"train": train, "valid": valid, "test": test}
        self.tag_scheme = check_scheme(tag_scheme)
        self.token_column, self.tag_column = token_column, tag_column
        self.min_count, self.lowercase = min_count, lowercase
        self.char_vocab, self.max_word_length = char_vocab, max_word_length
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.strict, self.num_workers, self.seed = strict, num_workers, seed
        self.unknown_warning_threshold = unknown_warning_threshold
        self._vocabulary: TaggingVocabulary | None = None
        self._sentences: dict[str, list[TaggedSentence]] = {}
        self._examples: dict[str, list[dict[str, Tensor | None]]] = {}
        self._in_memory = False

    #: Constructor arguments about files, which :meth:`from_sentences` does not take.
    FILE_OPTIONS: ClassVar[tuple[str, ...]] = ("data_dir", "token_column", "tag_column")

    @classmethod
    def from_sentences(
        cls,
        train: Sequence[tuple[Sequence[str], Sequence[str]]],
        valid: Sequence[tuple[Sequence[str], Sequence[str]]],
        test: Sequence[tuple[Sequence[str], Sequence[str]]] | None = None,
        tag_scheme: str = "IOB1",
        **options: Any,
    ) -> CoNLL2003:
        """The data module of tagged sentences held in memory: ``(tokens, tags)`` per sentence.

        It behaves as the module of column files of the same sentences does (vocabularies
        and tag set from ``train``, the same batches, ``vocab_size`` / ``num_tags`` /
        ``char_vocab_size`` / ``tag_names``, checkpoint state), with the reader's checks:
        the tags are read in ``tag_scheme`` (``"IOB1"``, ``"IOB2"`` or ``"IOBES"``; see
        :mod:`~lightning_rnn_reg.tag_schemes`) and converted to IOBES, and a tag the
        scheme forbids (e.g. IOB2 tags declared ``"IOBES"``: ``B-PER I-PER O``) is an error
        naming the sentence and token (0-based); with ``strict=False`` it is read as
        conlleval reads it, counted in one :class:`CoNLLFormatWarning`. ``test=None``: no
        test split (``Trainer.test`` / ``predict`` then raise). ``options`` are the
        constructor's other arguments (``lowercase``, ``char_vocab``, ``min_count``,
        ``batch_size``, ``eval_batch_size``, ``strict``, ``seed``, ...).

        Raises:
            TypeError: a split that is not a sequence of ``(tokens, tags)`` pairs of lists of
                str (e.g. a file name: use the constructor; or a sentence as one str), or a
                file option (:attr:`FILE_OPTIONS`).
            ValueError: an empty split or sentence, an empty token, tokens and tags of
                different lengths, a tag with a prefix outside the scheme, a tag the scheme
                forbids at its place, an entity type of ``valid`` / ``test`` absent from
                ``train``.

        Example::

            dm = CoNLL2003.from_sentences(
                train=[(["EU", "rejects", "German", "call"], ["B-ORG", "O", "B-MISC", "O"])],
                valid=[(["Peter", "Blackburn"], ["B-PER", "I-PER"])], tag_scheme="IOB2")
        """
        name = cls._in_memory_name(options, "column files; in-memory sentences are "
                                            "(tokens, tags) pairs")
        module = cls(data_dir=Path(f"<{name}>"), tag_scheme=tag_scheme, **options)
        for split, items in (("train", train), ("valid", valid), ("test", test)):
            if items is not None:
                module._sentences[split] = checked_sentences(f"{name}: {split}", items,
                                                              module.tag_scheme, module.strict)
        types = {split_tag(tag)[1] for s in module._sentences["train"] for tag in s.tags} - {""}
        for split in ("valid", "test"):
            if split in module._sentences:
                check_types(f"{name}: {split}", module._sentences[split], types)
        module._in_memory = True
        return module

    # ----------------------------------------------------------------------- vocabulary
    @property
    def vocabulary(self) -> TaggingVocabulary:
        """Words, characters and tags (built from the training file on first access)."""
        if self._vocabulary is None:
            self._vocabulary = TaggingVocabulary.build(
                self.sentences("train"), min_count=self.min_count, lowercase=self.lowercase,
                char_vocab=self.char_vocab, max_word_length=self.max_word_length,
                source_scheme=self.tag_scheme)
        return self._vocabulary

    @property
    def vocab(self) -> Vocabulary:
        """The word vocabulary."""
        return self.vocabulary.words

    @property
    def vocab_size(self) -> int:
        """Rows of the word embedding."""
        return len(self.vocabulary.words)

    @property
    def char_vocab_size(self) -> int:
        """Rows of the character embedding; ``0`` without a character vocabulary."""
        chars = self.vocabulary.chars
        return len(chars) if chars is not None else 0

    @property
    def num_tags(self) -> int:
        """Number of tags (internal scheme, IOBES)."""
        return len(self.vocabulary.tag_names)

    @property
    def tag_names(self) -> list[str]:
        """The tags in id order (internal scheme, IOBES)."""
        return list(self.vocabulary.tag_names)

    def vocabulary_state(self) -> dict[str, Any]:
        """The vocabularies as plain data, for the model's checkpoint."""
        return self.vocabulary.to_state()

    def state_dict(self) -> dict[str, Any]:
        """Saved in Lightning checkpoints: the vocabularies and the training position as
        plain data."""
        return {"vocabulary": self.vocabulary_state(), **self.position_state()}

    def adopt_vocabulary(self, state: Any) -> None:
        vocabulary = TaggingVocabulary.from_state(state)
        if vocabulary != self._vocabulary:
            self._vocabulary = vocabulary
            self._examples.clear()

    # ------------------------------------------------------------------------- splits
    def in_memory_splits(self) -> Collection[str] | None:
        return self._sentences if self._in_memory else None

    def sentences(self, split: str) -> list[TaggedSentence]:
        """The sentences of ``split`` (tags in IOBES), read once."""
        if self._in_memory and split not in self._sentences:
            if split not in self.files:
                raise ValueError(f"unknown split {split!r}; expected one of {list(self.files)}")
            raise ValueError(f"{type(self).__name__}: no {split} split (from_sentences was "
                             f"given {split}=None)")
        if split not in self._sentences:
            self._sentences[split] = read_conll(
                self.path(split), tag_scheme=self.tag_scheme, token_column=self.token_column,
                tag_column=self.tag_column, strict=self.strict,
                missing_hint=f"Point data_dir (or {DATA_ENV_VAR}) at the folder that holds it.")
        return self._sentences[split]

    def examples(self, split: str) -> list[dict[str, Tensor | None]]:
        """The encoded sentences of ``split`` (see :meth:`TaggingVocabulary.encode`)."""
        if split not in self._examples:
            vocabulary = self.vocabulary
            encoded, unknown, total = [], 0, 0
            for sentence in self.sentences(split):
                try:
                    example, missing = vocabulary.encode(sentence.tokens, sentence.tags)
                except ValueError as err:
                    raise ValueError(f"{self._where(split)}: {err}") from None
                encoded.append(example)
                unknown, total = unknown + missing, total + len(sentence.tokens)
            self._examples[split] = encoded
            report_unknown(self._where(split), unknown, total, UNK,
                           self.unknown_warning_threshold, what="words", logger=log)
        return self._examples[split]

    # ------------------------------------------------------------------ lightning hooks
    def split_dataset(self, split: str) -> tuple[list[dict[str, Tensor | None]], list[int]]:
        examples = self.examples(split)
        return examples, [len(cast(Tensor, e["tokens"])) for e in examples]  # always given

    def collate(self, items: list[Any]) -> TaggingBatch:
        return self.vocabulary.collate(items)
