"""Delimited files (TSV, CSV) with a header row naming a text and a label column."""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterator
from pathlib import Path

from lightning_rnn_reg.data.sentiment.examples import (
    LineErrors,
    SentimentExample,
    check_label,
    numbered_lines,
)

__all__ = ["read_delimited"]


def read_delimited(path: str | Path, *, text_column: str = "text", label_column: str = "label",
                   delimiter: str = "\t", labels: Collection[str] | None = None,
                   strict: bool = True) -> list[SentimentExample]:
    """Read a delimited file with a header row naming ``text_column`` and ``label_column``.

    Parsed with :mod:`csv`: with ``delimiter="\\t"`` (TSV) quotes are ordinary characters
    (``QUOTE_NONE``, as GLUE's files need); with any other delimiter (CSV) fields may be
    quoted, ``""`` inside a quoted field being one quote, and may span lines (a record's line
    is the line it starts on). Text and label are stripped; nothing else is changed. A
    missing column in the header is an error of the whole file.

    Malformed: a row whose field count differs from the header's, an empty text, an empty
    label or one outside ``labels`` (when given), a CSV syntax error, bad UTF-8.

    Example:
        >>> from pathlib import Path
        >>> _ = Path("/tmp/s.csv").write_text('label,text\\npos,"Fine, ""really"" ok"\\n')
        >>> read_delimited("/tmp/s.csv", delimiter=",")
        [SentimentExample(text='Fine, "really" ok', label='pos', line=2)]
    """
    path = Path(path)
    errors = LineErrors(path, strict)
    numbers: list[int] = []

    def physical_lines() -> Iterator[str]:
        for number, line in numbered_lines(path, errors):
            numbers.append(number)
            yield line + "\n"

    reader = csv.reader(physical_lines(), delimiter=delimiter,
                        quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL)
    header = _header(reader, path, numbers, (text_column, label_column))
    text_at, label_at = header.index(text_column), header.index(label_column)
    examples: list[SentimentExample] = []
    for number, row in _records(reader, numbers, errors):
        if len(row) != len(header):
            errors.fail(number, f"expected {len(header)} fields like the header, got {len(row)}")
            continue
        text, label = row[text_at].strip(), row[label_at].strip()
        reason = check_label(label, labels) or (None if text else "empty text")
        if reason is not None:
            errors.fail(number, reason)
            continue
        examples.append(SentimentExample(text, label, number))
    errors.report()
    return examples


def _header(reader: Iterator[list[str]], path: Path, numbers: list[int],
            columns: tuple[str, str]) -> list[str]:
    """The header row, its names stripped; ``ValueError`` if the file is empty or the header
    lacks one of ``columns``."""
    header = next(reader, None)
    if header is None:
        raise ValueError(f"{path}: the file is empty (expected a header row)")
    header = [name.strip() for name in header]
    missing = [c for c in columns if c not in header]
    if missing:
        raise ValueError(f"{path}: line {numbers[0]}: the header {header} lacks the "
                         f"column(s) {missing}")
    return header


def _records(reader: Iterator[list[str]], numbers: list[int],
             errors: LineErrors) -> Iterator[tuple[int, list[str]]]:
    """``(line the record starts on, its fields)`` for the records after the header; a CSV
    syntax error goes to ``errors`` (``numbers``: the line of each physical line read)."""
    while True:
        start = len(numbers)
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            errors.fail(numbers[min(start, len(numbers) - 1)], f"CSV syntax error: {err}")
            continue
        yield numbers[start], row
