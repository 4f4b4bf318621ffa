"""CoNLL column files and tagged sentences held in lists: reading and checking them.

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

Sentences held in Python lists (``(tokens, tags)`` pairs) get the same checks
(:func:`checked_sentences`), for :meth:`~lightning_rnn_reg.data.conll.CoNLL2003.from_sentences`.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_rnn_reg.data.readers import DataSource, read_lines
from lightning_rnn_reg.data.tagging import TaggedSentence
from lightning_rnn_reg.tag_schemes import (
    INTERNAL_SCHEME,
    check_scheme,
    invalid_positions,
    spans,
    split_tag,
    tags_from_spans,
)

__all__ = ["DOCSTART", "CoNLLFormatWarning", "check_types", "checked_sentences", "read_conll"]

DOCSTART = "-DOCSTART-"


class CoNLLFormatWarning(UserWarning):
    """Lines of a column file were repaired because ``strict=False`` (one warning per file)."""


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


def checked_sentences(where: str, items: Any, scheme: str, strict: bool
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


def check_types(where: str, sentences: list[TaggedSentence], types: set[str]) -> None:
    """Raise ``ValueError`` at the first tag whose entity type is not one of ``types`` (those
    of the training split: the tag set has no id for it)."""
    for index, sentence in enumerate(sentences):
        for position, tag in enumerate(sentence.tags):
            kind = split_tag(tag)[1]
            if kind and kind not in types:
                raise ValueError(f"{where} sentence {index}, token {position}: entity type "
                                 f"{kind!r} does not occur in train (types: {sorted(types)}); "
                                 "the tag set is built from the training sentences")
