"""What every sentiment reader shares: the example and batch types, and the line errors.

Readers return :class:`SentimentExample` ``(text, label, line)`` records and raise
``ValueError`` naming the file and line on a malformed line (wrong column count, unknown or
empty label, empty text, unbalanced tree, bad UTF-8); with ``strict=False`` they skip such
lines instead and issue one :class:`SentimentDataWarning` per file that counts them
(:class:`LineErrors`). Blank lines are skipped (:func:`numbered_lines`).

Batches (:class:`ClassificationBatch`): ``tokens`` ``(B, T)`` padded with the ``<pad>`` id,
``lengths`` ``(B,)``, ``labels`` ``(B,)`` class indices into ``class_names``.

Examples held in Python lists are checked as a reader checks lines (:func:`checked_examples`).
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor

from lightning_rnn_reg.data.batching import pad_sequences
from lightning_rnn_reg.data.readers import DATA_ENV_VAR, read_lines

__all__ = [
    "PAD",
    "ClassificationBatch",
    "ExampleErrors",
    "LineErrors",
    "SentimentDataWarning",
    "SentimentExample",
    "check_label",
    "checked_examples",
    "collate_examples",
    "numbered_lines",
]

#: The padding token (id 1 of a vocabulary built here: ``<unk>`` is 0).
PAD = "<pad>"


class SentimentDataWarning(UserWarning):
    """Lines of a data file that a reader dropped: malformed ones (``strict=False``) or
    repeated SemEval tweet ids; or in-memory examples dropped (``strict=False``). One warning
    per file (or split) and cause, with the count."""


class SentimentExample(NamedTuple):
    """One labelled text: the (normalised) ``text``, its ``label`` name, and the ``line`` of
    the file it was read from (1-based; in-memory examples: the 0-based index in their
    list)."""

    text: str
    label: str
    line: int


class ClassificationBatch(NamedTuple):
    """A padded batch of token sequences with one class each, ``batch_first``.

    Attributes:
        tokens: ``(B, T)`` long tensor of token ids, padded with the ``<pad>`` id after
            each sequence's end.
        lengths: ``(B,)`` long tensor of valid lengths (``1 <= length <= T``).
        labels: ``(B,)`` long tensor of class indices.

    Example:
        >>> batch = collate_examples([(torch.tensor([5, 6]), 1), (torch.tensor([7]), 0)], 1)
        >>> batch.tokens.tolist(), batch.lengths.tolist(), batch.labels.tolist()
        ([[5, 6], [7, 1]], [2, 1], [1, 0])
    """

    tokens: Tensor
    lengths: Tensor
    labels: Tensor


def collate_examples(items: Sequence[tuple[Tensor, int]], pad_index: int) -> ClassificationBatch:
    """``(ids, class)`` pairs -> :class:`ClassificationBatch` (padded with ``pad_index``)."""
    tokens, lengths = pad_sequences([ids for ids, _ in items], pad_value=pad_index)
    return ClassificationBatch(tokens, lengths, torch.tensor([c for _, c in items]))


# ------------------------------------------------------------------------------ line errors
class LineErrors:
    """Raises on a malformed line (``strict``) or counts it and warns once per file."""

    #: What a number counts: lines of a file (:class:`ExampleErrors`: in-memory examples).
    ITEM: ClassVar[str] = "line"
    #: ``stacklevel`` of the warning of :meth:`report`: the code that called the reader.
    STACKLEVEL: ClassVar[int] = 3

    def __init__(self, source: Path | str, strict: bool) -> None:
        self.source, self.strict = source, strict
        self.skipped: list[tuple[int, str]] = []

    def where(self, number: int) -> str:
        """How messages name item ``number`` of the source."""
        return f"{self.source}: line {number}"

    def fail(self, number: int, reason: str) -> None:
        if self.strict:
            raise ValueError(f"{self.where(number)}: {reason} (pass strict=False to skip "
                             f"malformed {self.ITEM}s)")
        self.skipped.append((number, reason))

    def report(self) -> None:
        if self.skipped:
            number, reason = self.skipped[0]
            warnings.warn(f"{self.source}: skipped {len(self.skipped)} malformed {self.ITEM}(s) "
                          f"(strict=False); the first, {self.ITEM} {number}: {reason}",
                          SentimentDataWarning, stacklevel=self.STACKLEVEL)


class ExampleErrors(LineErrors):
    """:class:`LineErrors` for in-memory examples: messages name the split and the index."""

    ITEM: ClassVar[str] = "example"
    STACKLEVEL: ClassVar[int] = 4

    def where(self, number: int) -> str:
        return f"{self.source} example {number}"


def numbered_lines(path: Path, errors: LineErrors) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of the non-blank lines; undecodable lines go to ``errors``."""
    hint = f"Point data_dir (or the {DATA_ENV_VAR} environment variable) at its folder."
    try:
        lines: list[str | None] = list(read_lines(path, missing_hint=hint))
    except ValueError:  # not UTF-8: read_lines' message names the line; decode line by line
        if errors.strict:
            raise
        raw = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        lines = [_decode_or_none(chunk) for chunk in raw]
    for number, text in enumerate(lines, start=1):
        if text is None:
            errors.fail(number, "not valid UTF-8")
        elif text.strip():
            yield number, text


def _decode_or_none(chunk: bytes) -> str | None:
    try:
        return chunk.decode("utf-8")
    except UnicodeDecodeError:
        return None


def check_label(label: str, labels: Collection[str] | None) -> str | None:
    """The reason ``label`` is unusable, or ``None``."""
    if not label:
        return "empty label"
    if labels is not None and label not in labels:
        return f"unknown label {label!r} (expected one of {sorted(labels)})"
    return None


def checked_examples(where: str, items: Any, labels: Collection[str] | None,
                      strict: bool) -> list[SentimentExample]:
    """In-memory ``(text, label)`` pairs as examples (``line``: the index in ``items``),
    checked as a reader checks lines (see :meth:`SentimentDataModule.from_examples`)."""
    if isinstance(items, (str, bytes, Path)) or not isinstance(items, Sequence):
        raise TypeError(f"{where} must be a sequence of (text, label) pairs, got "
                        f"{type(items).__name__} (for files, use SentimentDataModule(data_dir="
                        "..., format=...))")
    if not items:
        raise ValueError(f"{where} is empty: give at least one (text, label) pair")
    errors = ExampleErrors(where, strict)
    examples: list[SentimentExample] = []
    for index, item in enumerate(items):
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise TypeError(f"{where} example {index}: expected a (text, label) pair, got "
                            f"{item!r}")
        text, label = item
        for field, value in (("text", text), ("label", label)):
            if not isinstance(value, str):
                raise TypeError(f"{where} example {index}: the {field} must be a str, got "
                                f"{type(value).__name__} {value!r}")
        reason = check_label(label, labels) or (None if text.strip() else "empty text")
        if reason is not None:
            errors.fail(index, reason)
            continue
        examples.append(SentimentExample(text.strip(), label, index))
    errors.report()
    if not examples:
        raise ValueError(f"{where}: no examples left (strict=False dropped them all)")
    return examples
