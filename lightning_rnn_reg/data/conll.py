"""CoNLL column files for sequence tagging (NER): the reader and the CoNLL2003 data module.

Column format (CoNLL-2003: ``word POS chunk NER``): one token per line, fields separated by
whitespace (spaces or tabs), the token in column ``token_column`` and its tag in
``tag_column`` (negative counts from the end), a blank line between sentences. A line with a
``-DOCSTART-`` field (whatever its other columns) ends the current sentence and is skipped;
runs of blank lines never make empty sentences.

Tags are read in the declared scheme (``IOB1``, ``IOB2`` or ``IOBES``, see
:mod:`~lightning_rnn_reg.tag_schemes`) and converted to the internal scheme, IOBES. The
tag set is ``O`` followed, for every entity type of the training file in sorted order, by
``B-T I-T E-T S-T``.

Malformed input raises ``ValueError`` naming the file and line: a line whose number of
columns differs from the file's first data line, a tag the scheme forbids (e.g. ``I-X`` after
``O`` or after ``B-Y`` in IOB2), a tag with an unknown prefix, bad UTF-8. With
``strict=False`` the first two are repaired (a wrong column count: the line is skipped; a
forbidden tag: read as conlleval reads it, e.g. IOB2 ``O I-X`` becomes ``O B-X``) and counted in
one :class:`CoNLLFormatWarning` per file; the last two still raise.

Sentences held in Python lists (``(tokens, tags)`` pairs): :meth:`CoNLL2003.from_sentences`,
the same data module as a column file of them would give, with the same checks.

What the model sees of a sentence (word ids, characters, capitalization classes, tag ids) is
defined in :mod:`~lightning_rnn_reg.data.tagging`.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

from torch import Tensor

from lightning_rnn_reg.data.readers import (
    DATA_ENV_VAR,
    DataSource,
    default_data_dir,
    read_lines,
    report_unknown,
)
from lightning_rnn_reg.data.split_module import SplitDataModule
from lightning_rnn_reg.data.tagging import TaggedSentence, TaggingBatch, TaggingVocabulary
from lightning_rnn_reg.data.vocab import UNK, Vocabulary
from lightning_rnn_reg.tag_schemes import (
    INTERNAL_SCHEME,
    check_scheme,
    invalid_positions,
    spans,
    split_tag,
    tags_from_spans,
)

__all__ = ["DOCSTART", "CoNLL2003", "CoNLLFormatWarning", "read_conll"]

log = logging.getLogger(__name__)

DOCSTART = "-DOCSTART-"


class CoNLLFormatWarning(UserWarning):
    """Lines of a column file were repaired because ``strict=False`` (one warning per file)."""


# --------------------------------------------------------------------------------- reading
def read_conll(
    source: DataSource,
    *,
    tag_scheme: str = "IOB1",
    token_column: int = 0,
    tag_column: int = -1,
    strict: bool = True,
    missing_hint: str = "",
) -> list[TaggedSentence]:
    """Read a column file into sentences with IOBES tags (see the module docstring).

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: malformed input (file and line named), or no sentence at all.

    Example:
        >>> _ = Path("/tmp/two.conll").write_text("-DOCSTART- O\\n\\nEU I-ORG\\nsays O\\n")
        >>> read_conll(Path("/tmp/two.conll"))
        [TaggedSentence(tokens=['EU', 'says'], tags=['S-ORG', 'O'])]
    """
    reader = _ColumnReader(source, check_scheme(tag_scheme), token_column, tag_column, strict)
    for number, line in enumerate(read_lines(source, missing_hint=missing_hint), start=1):
        reader.feed(number, line.split())
    return reader.finish()


class _ColumnReader:
    """State of one pass over a column file: the open sentence, the width, the repairs."""

    def __init__(self, source: DataSource, scheme: str, token_column: int, tag_column: int,
                 strict: bool) -> None:
        self.source, self.scheme, self.strict = source, scheme, strict
        self.columns = (token_column, tag_column)
        self.width: tuple[int, int] | None = None  # (number of columns, line that set it)
        self.sentences: list[TaggedSentence] = []
        self.tokens: list[str] = []
        self.tags: list[str] = []
        self.lines: list[int] = []
        self.repairs: Counter[str] = Counter()
        self.first_repair: int | None = None

    def error(self, number: int, message: str) -> ValueError:
        return ValueError(f"{self.source}: line {number}: {message}")

    def repaired(self, kind: str, number: int) -> None:
        self.repairs[kind] += 1
        self.first_repair = min(number, self.first_repair or number)

    def feed(self, number: int, fields: list[str]) -> None:
        if not fields or DOCSTART in fields:
            self.flush()
            return
        if self.width is None:
            for column in self.columns:
                if not -len(fields) <= column < len(fields):
                    raise self.error(number, f"column {column} does not exist: the first data "
                                             f"line has {len(fields)} columns")
            self.width = (len(fields), number)
        elif len(fields) != self.width[0]:
            if self.strict:
                raise self.error(number, f"{len(fields)} columns, but the first data line (line "
                                         f"{self.width[1]}) has {self.width[0]}")
            self.repaired("skipped (wrong number of columns)", number)
            return
        tag = fields[self.columns[1]]
        try:
            split_tag(tag, self.scheme)
        except ValueError as err:
            raise self.error(number, str(err)) from None
        self.tokens.append(fields[self.columns[0]])
        self.tags.append(tag)
        self.lines.append(number)

    def flush(self) -> None:
        if not self.tokens:
            return
        for index in invalid_positions(self.tags, self.scheme):
            number = self.lines[index]
            if self.strict:
                raise self.error(number, _invalid_tag(self.tags, index, self.scheme))
            self.repaired(f"invalid {self.scheme} tag read as conlleval reads it", number)
        internal = tags_from_spans(spans(self.tags), len(self.tags), INTERNAL_SCHEME)
        self.sentences.append(TaggedSentence(self.tokens, internal))
        self.tokens, self.tags, self.lines = [], [], []

    def finish(self) -> list[TaggedSentence]:
        self.flush()
        if not self.sentences:
            raise ValueError(f"{self.source}: the file holds no sentence")
        if self.repairs:
            kinds = ", ".join(f"{count} {kind}" for kind, count in self.repairs.items())
            warnings.warn(f"{self.source}: strict=False repaired {sum(self.repairs.values())} "
                          f"lines ({kinds}); the first is line {self.first_repair}",
                          CoNLLFormatWarning, stacklevel=3)
        return self.sentences


def _invalid_tag(tags: Sequence[str], index: int, scheme: str) -> str:
    """Why ``tags[index]`` breaks ``scheme``: the tag and its neighbours."""
    prev = tags[index - 1] if index else "the sentence start"
    nxt = tags[index + 1] if index + 1 < len(tags) else "the sentence end"
    return f"tag {tags[index]!r} between {prev!r} and {nxt!r} is not valid {scheme}"


def _checked_sentences(where: str, items: Any, scheme: str, strict: bool
                       ) -> list[TaggedSentence]:
    """In-memory ``(tokens, tags)`` pairs as sentences with IOBES tags, checked as
    :func:`read_conll` checks a file (see :meth:`CoNLL2003.from_sentences`)."""
    if isinstance(items, (str, bytes, Path)) or not isinstance(items, Sequence):
        raise TypeError(f"{where} must be a sequence of (tokens, tags) pairs, got "
                        f"{type(items).__name__} (for column files, use CoNLL2003(data_dir=...))")
    if not items:
        raise ValueError(f"{where} is empty: give at least one (tokens, tags) sentence")
    sentences: list[TaggedSentence] = []
    repaired: list[tuple[int, int]] = []
    for index, item in enumerate(items):
        at = f"{where} sentence {index}"
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"{at}: expected a (tokens, tags) pair, got {item!r}")
        for field, value in zip(("tokens", "tags"), item, strict=True):
            if isinstance(value, str) or not isinstance(value, Sequence) or not all(
                    isinstance(v, str) for v in value):
                raise TypeError(f"{at}: {field} must be a list of str (one per token; e.g. "
                                f"'EU rejects'.split()), got {value!r}")
        tokens, tags = list(item[0]), list(item[1])
        if len(tokens) != len(tags):
            raise ValueError(f"{at}: {len(tokens)} tokens but {len(tags)} tags")
        if not tokens:
            raise ValueError(f"{at}: an empty sentence (give at least one token)")
        for position, (token, tag) in enumerate(zip(tokens, tags, strict=True)):
            if not token:
                raise ValueError(f"{at}, token {position}: an empty token")
            try:
                split_tag(tag, scheme)
            except ValueError as err:
                raise ValueError(f"{at}, token {position}: {err}") from None
        for position in invalid_positions(tags, scheme):
            if strict:
                raise ValueError(f"{at}, token {position}: {_invalid_tag(tags, position, scheme)}"
                                 " (pass strict=False to read it as conlleval does)")
            repaired.append((index, position))
        sentences.append(TaggedSentence(tokens, tags_from_spans(spans(tags), len(tags),
                                                                INTERNAL_SCHEME)))
    if repaired:
        index, position = repaired[0]
        warnings.warn(f"{where}: strict=False repaired {len(repaired)} invalid {scheme} tag(s), "
                      f"read as conlleval reads them; the first is sentence {index}, token "
                      f"{position}", CoNLLFormatWarning, stacklevel=3)
    return sentences


def _check_types(where: str, sentences: list[TaggedSentence], types: set[str]) -> None:
    """Raise ``ValueError`` at the first tag whose entity type is not one of ``types`` (those
    of the training split: the tag set has no id for it)."""
    for index, sentence in enumerate(sentences):
        for position, tag in enumerate(sentence.tags):
            kind = split_tag(tag)[1]
            if kind and kind not in types:
                raise ValueError(f"{where} sentence {index}, token {position}: entity type "
                                 f"{kind!r} does not occur in train (types: {sorted(types)}); "
                                 "the tag set is built from the training sentences")


# ----------------------------------------------------------------------------- data module
class CoNLL2003(SplitDataModule):
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
        if data_dir is None:
            data_dir = default_data_dir(self.SUBFOLDER)
            if data_dir is None:
                raise ValueError(f"{name}: pass data_dir, or set the {DATA_ENV_VAR} environment "
                                 f"variable to the folder that holds {self.SUBFOLDER}/")
        for arg, value in (("min_count", min_count), ("batch_size", batch_size),
                           ("eval_batch_size", eval_batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: {arg} must be an integer >= 1, got {value!r}")
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
        name = f"{cls.__name__}.from_sentences"
        given = sorted(set(options) & set(cls.FILE_OPTIONS))
        if given:
            raise TypeError(f"{name}: {given} are options of column files; in-memory "
                            "sentences are (tokens, tags) pairs")
        module = cls(data_dir=Path(f"<{name}>"), tag_scheme=tag_scheme, **options)
        for split, items in (("train", train), ("valid", valid), ("test", test)):
            if items is not None:
                module._sentences[split] = _checked_sentences(f"{name}: {split}", items,
                                                              module.tag_scheme, module.strict)
        types = {split_tag(tag)[1] for s in module._sentences["train"] for tag in s.tags} - {""}
        for split in ("valid", "test"):
            if split in module._sentences:
                _check_types(f"{name}: {split}", module._sentences[split], types)
        module._in_memory = True
        return module

    def has_split(self, split: str) -> bool:
        """Whether the data has ``split`` (in memory: the splits given to
        :meth:`from_sentences`; files: all three)."""
        return not self._in_memory or split in self._sentences

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

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Adopt the checkpoint's vocabularies (re-encoding the splits if they differ) and
        training position."""
        self.load_position_state(state_dict)
        if "vocabulary" in state_dict:
            vocabulary = TaggingVocabulary.from_state(state_dict["vocabulary"])
            if vocabulary != self._vocabulary:
                self._vocabulary = vocabulary
                self._examples.clear()

    # ------------------------------------------------------------------------- splits
    def path(self, split: str) -> Path:
        """Location of the file of ``split`` (``"train"``, ``"valid"`` or ``"test"``)."""
        if split not in self.files:
            raise ValueError(f"unknown split {split!r}; expected one of {list(self.files)}")
        if self._in_memory:
            raise ValueError(f"{type(self).__name__}: the data is in memory (from_sentences), "
                             "it has no files")
        return self.data_dir / self.files[split]

    def _where(self, split: str) -> str | Path:
        """How messages name ``split``: its file, or the in-memory split."""
        if self._in_memory:
            return f"{type(self).__name__}.from_sentences: {split}"
        return self.path(split)

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
