"""Sentence and tweet classification data: SemEval Twitter, the Stanford Sentiment Treebank,
and any TSV/CSV file with a text and a label column; one padded ``batch_first`` batch type.

Readers return :class:`SentimentExample` ``(text, label, line)`` records and raise
``ValueError`` naming the file and line on a malformed line (wrong column count, unknown or
empty label, empty text, unbalanced tree, bad UTF-8); with ``strict=False`` they skip such
lines instead and issue one :class:`SentimentDataWarning` per file that counts them. Blank
lines are skipped.

Batches (:class:`ClassificationBatch`): ``tokens`` ``(B, T)`` padded with the ``<pad>`` id,
``lengths`` ``(B,)``, ``labels`` ``(B,)`` class indices into ``class_names``.

Examples held in Python lists: :meth:`SentimentDataModule.from_examples`, the same data module
as a TSV file of those texts and labels would give.
"""

from __future__ import annotations

import csv
import html
import logging
import re
import warnings
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple, cast

import torch
from torch import Tensor
from torch.utils.data import Dataset

from lightning_rnn_reg.data.batching import pad_sequences
from lightning_rnn_reg.data.language_modeling import _check_positive, _preset_dir
from lightning_rnn_reg.data.readers import DATA_ENV_VAR, read_lines, report_unknown
from lightning_rnn_reg.data.split_module import SplitDataModule
from lightning_rnn_reg.data.tokenizer import tokenize
from lightning_rnn_reg.data.vocab import UNK, Vocabulary

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

log = logging.getLogger(__name__)

#: The padding token (id 1 of a vocabulary built here: ``<unk>`` is 0).
PAD = "<pad>"
#: SemEval message polarity classes, in index order.
SEMEVAL_LABELS = ("negative", "neutral", "positive")
#: SST-5 classes (root labels 0-4), in index order.
SST5_LABELS = ("very negative", "negative", "neutral", "positive", "very positive")
#: SST-2 classes (root labels 0-1 and 3-4; 2 is left out), in index order.
SST2_LABELS = ("negative", "positive")

_SEMEVAL_ALIASES = {"objective": "neutral", "objective-or-neutral": "neutral"}
_PTB_BRACKETS = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{",
                 "-RCB-": "}"}


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
class _LineErrors:
    """Raises on a malformed line (``strict``) or counts it and warns once per file."""

    def __init__(self, path: Path, strict: bool) -> None:
        self.path, self.strict = path, strict
        self.skipped: list[tuple[int, str]] = []

    def fail(self, line: int, reason: str) -> None:
        if self.strict:
            raise ValueError(f"{self.path}: line {line}: {reason} (pass strict=False to skip "
                             "malformed lines)")
        self.skipped.append((line, reason))

    def report(self) -> None:
        if self.skipped:
            line, reason = self.skipped[0]
            warnings.warn(f"{self.path}: skipped {len(self.skipped)} malformed line(s) "
                          f"(strict=False); the first, line {line}: {reason}",
                          SentimentDataWarning, stacklevel=3)


class _ExampleErrors(_LineErrors):
    """:class:`_LineErrors` for in-memory examples: messages name the split and the index."""

    def __init__(self, where: str, strict: bool) -> None:
        super().__init__(Path(), strict)
        self.where = where

    def fail(self, line: int, reason: str) -> None:
        if self.strict:
            raise ValueError(f"{self.where} example {line}: {reason} (pass strict=False to skip "
                             "malformed examples)")
        self.skipped.append((line, reason))

    def report(self) -> None:
        if self.skipped:
            index, reason = self.skipped[0]
            warnings.warn(f"{self.where}: skipped {len(self.skipped)} malformed example(s) "
                          f"(strict=False); the first, example {index}: {reason}",
                          SentimentDataWarning, stacklevel=4)


def _numbered_lines(path: Path, errors: _LineErrors) -> Iterator[tuple[int, str]]:
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


def _check_label(label: str, labels: Collection[str] | None) -> str | None:
    """The reason ``label`` is unusable, or ``None``."""
    if not label:
        return "empty label"
    if labels is not None and label not in labels:
        return f"unknown label {label!r} (expected one of {sorted(labels)})"
    return None


# ----------------------------------------------------------------------------------- SemEval
_U_ESCAPE = re.compile(r"\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})"
                       r"|\\u([0-9a-fA-F]{4})")
_QUOTE_RUN = re.compile(r'"+')
_CHAR_REF = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")


def _decode_u_escape(match: re.Match[str]) -> str:
    if match.group(1):
        high, low = int(match.group(1), 16), int(match.group(2), 16)
        return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    code = int(match.group(3), 16)
    return "\ufffd" if 0xD800 <= code <= 0xDFFF else chr(code)


def _unquote(text: str) -> str:
    """Undo CSV-style wrapping (see :func:`normalize_semeval_text`)."""
    if len(text) < 2 or text[0] != '"' or text[-1] != '"':
        return text
    inner = text[1:-1]
    runs = _QUOTE_RUN.findall(inner)
    if any(len(run) % 2 for run in runs):
        return text  # a lone inner quote: not a quoted field, kept verbatim
    while runs and not any(len(run) % 2 for run in runs):
        inner = _QUOTE_RUN.sub(lambda m: '"' * (len(m.group()) // 2), inner)
        runs = _QUOTE_RUN.findall(inner)
    return inner.replace('\\"', '"')


def normalize_semeval_text(text: str) -> str:
    r'''The text column of a SemEval Twitter file, as distributed -> the tweet.

    Exactly these steps, in this order (everything else is kept as it is):

    1. CSV-style quoting: a text that starts and ends with ``"`` and whose inner quotes all
       come in runs of even length is a quoted field: the outer quotes are removed and every
       run of ``2k`` quotes becomes ``k`` quotes, repeated while all runs are still even (the
       files hold fields escaped twice, ``\""""`` for one quote); then ``\"`` becomes
       ``"``. A text with a lone inner quote is not a quoted field and is kept verbatim.
    2. Literal ``\uXXXX`` escapes are decoded (``\u2019`` -> ``’``, ``\u002c`` -> ``,``),
       a surrogate pair ``\uD83D\uDE00`` to one character; a lone surrogate becomes U+FFFD.
    3. HTML character references with their semicolon (``&amp;``, ``&lt;``, ``&#39;``, ...)
       are decoded, repeatedly while any is left (some texts hold ``&amp;amp;``).

    Example:
        >>> normalize_semeval_text(r'"Why is \""""Happy Day\"""" trending? It\u2019s &amp; on"')
        'Why is "Happy Day" trending? It’s & on'
        >>> normalize_semeval_text('"Quoted" said he, "fine"')
        '"Quoted" said he, "fine"'
    '''
    text = _unquote(text)
    text = _U_ESCAPE.sub(_decode_u_escape, text)
    decoded = _CHAR_REF.sub(lambda m: html.unescape(m.group()), text)
    while decoded != text:
        text, decoded = decoded, _CHAR_REF.sub(lambda m: html.unescape(m.group()), decoded)
    return text


def read_semeval(path: str | Path, *, labels: Collection[str] = SEMEVAL_LABELS,
                 strict: bool = True) -> list[SentimentExample]:
    """Read a SemEval Twitter message-polarity file, ``id<TAB>label<TAB>text``, no header.

    Normalisation: the text as in :func:`normalize_semeval_text`; the label stripped and
    lowercased, with the 2013 spellings ``objective`` and ``objective-OR-neutral`` read as
    ``neutral``. A fourth column is ignored: ``twitter-2016test-A.tsv`` has one on every
    line, empty but for 10 lines that hold the tweet's creation time. Duplicate ids: the first
    occurrence is kept, later ones are dropped and counted in one warning per file (with how
    many carried another label).

    Malformed (``ValueError``, or skipped with ``strict=False``): fewer than 3 or more than 4
    tab-separated columns, an empty id, a label outside ``labels``, an empty text,
    bad UTF-8.

    Example:
        >>> from pathlib import Path
        >>> _ = Path("/tmp/semeval.tsv").write_text("1\\tpositive\\tGood day\\u2019s :)\\n")
        >>> read_semeval("/tmp/semeval.tsv")
        [SentimentExample(text='Good day’s :)', label='positive', line=1)]
    """
    path = Path(path)
    errors = _LineErrors(path, strict)
    examples: list[SentimentExample] = []
    first_label: dict[str, str] = {}
    duplicates = conflicting = 0
    for number, line in _numbered_lines(path, errors):
        columns = line.split("\t")
        if len(columns) not in (3, 4):
            errors.fail(number, f"expected 3 tab-separated columns (id, label, text) and an "
                                f"optional fourth, got {len(columns)}")
            continue
        tweet_id, label, text = columns[0].strip(), columns[1].strip().lower(), columns[2]
        label = _SEMEVAL_ALIASES.get(label, label)
        text = normalize_semeval_text(text).strip()
        reason = ("empty id" if not tweet_id else _check_label(label, labels)
                  or (None if text else "empty text"))
        if reason is not None:
            errors.fail(number, reason)
            continue
        if tweet_id in first_label:
            duplicates += 1
            conflicting += first_label[tweet_id] != label
            continue
        first_label[tweet_id] = label
        examples.append(SentimentExample(text, label, number))
    errors.report()
    if duplicates:
        warnings.warn(f"{path}: dropped {duplicates} line(s) whose tweet id occurred before "
                      f"(kept the first occurrence; {conflicting} of them had another label)",
                      SentimentDataWarning, stacklevel=2)
    return examples


# --------------------------------------------------------------------------------------- SST
_TREE_TOKEN = re.compile(r"\(|\)|[^ \t\n\r()]+")  # a leaf may hold a no-break space


def _unescape_ptb(word: str) -> str:
    return _PTB_BRACKETS.get(word) or word.replace("\\/", "/").replace("\\*", "*")


def parse_sst_tree(line: str) -> tuple[int, list[str]]:
    r"""A PTB-style sentiment tree ``(3 (2 It) (4 (2 's) ...))`` -> ``(root label, leaves)``.

    Every node is ``(label child ...)`` with a label ``0``-``4``; a leaf is ``(label word)``.
    Words are separated by spaces (one train word holds a no-break space: ``8\xa01\/2``).
    The PTB escapes ``-LRB- -RRB- -LSB- -RSB- -LCB- -RCB-`` are read as ``( ) [ ] { }``, and
    ``\/``, ``\*`` as ``/``, ``*``. Raises ``ValueError`` (without file context) on an
    unbalanced or malformed tree.

    Example:
        >>> parse_sst_tree(r"(3 (2 It) (4 (2 works\/plays) (2 -RRB-)))")
        (3, ['It', 'works/plays', ')'])
    """
    tokens = _TREE_TOKEN.findall(line)
    leaves: list[str] = []
    root, depth, index = -1, 0, 0
    while index < len(tokens):
        token = tokens[index]
        if depth == 0 and root >= 0:
            raise ValueError(f"text after the end of the tree: {token!r}")
        if token == ")":
            if depth == 0:
                raise ValueError("unbalanced tree: ')' without '('")
            depth, index = depth - 1, index + 1
            continue
        if token != "(":
            raise ValueError(f"unexpected {token!r}: a word must follow its node's label")
        label = tokens[index + 1] if index + 1 < len(tokens) else ""
        if label not in ("0", "1", "2", "3", "4"):
            raise ValueError(f"expected a label 0-4 after '(', got {label!r}")
        root = int(label) if root < 0 else root
        depth, index = depth + 1, index + 2
        following = tokens[index] if index < len(tokens) else ")"
        if following == ")":
            raise ValueError("a node without children")
        if following != "(":  # a leaf: exactly one word, then ')'
            if index + 1 >= len(tokens) or tokens[index + 1] != ")":
                raise ValueError(f"a leaf holds one word, got more after {following!r}")
            leaves.append(_unescape_ptb(following))
            index += 1
    if root < 0 or depth != 0:
        raise ValueError("unbalanced tree: missing ')'" if root >= 0 else "no tree")
    return root, leaves


def read_sst(path: str | Path, *, classes: int = 5, strict: bool = True
             ) -> list[SentimentExample]:
    """Read a Stanford Sentiment Treebank file (one PTB-style tree a line, Socher et al. 2013).

    ``text`` is the leaves joined by single spaces (PTB tokens, brackets restored as in
    :func:`parse_sst_tree`); the label is the root's: ``classes=5`` gives
    :data:`SST5_LABELS` by root label 0-4; ``classes=2`` (sentence-level SST-2, Kim 2014;
    Tai et al. 2015) gives ``negative`` for 0-1 and ``positive`` for 3-4 and leaves out the
    neutral (2) sentences. Malformed: an unbalanced or malformed tree, bad UTF-8.

    Example:
        >>> from pathlib import Path
        >>> _ = Path("/tmp/sst.txt").write_text("(4 (3 (2 A) (4 gem)) (2 .))\\n(2 (2 Meh))\\n")
        >>> read_sst("/tmp/sst.txt", classes=2)
        [SentimentExample(text='A gem .', label='positive', line=1)]
    """
    if classes not in (2, 5):
        raise ValueError(f"read_sst: classes must be 2 or 5, got {classes!r}")
    path = Path(path)
    errors = _LineErrors(path, strict)
    examples: list[SentimentExample] = []
    for number, line in _numbered_lines(path, errors):
        try:
            root, leaves = parse_sst_tree(line)
        except ValueError as err:
            errors.fail(number, str(err))
            continue
        if classes == 5:
            examples.append(SentimentExample(" ".join(leaves), SST5_LABELS[root], number))
        elif root != 2:
            examples.append(SentimentExample(" ".join(leaves), SST2_LABELS[root > 2], number))
    errors.report()
    return examples


# ---------------------------------------------------------------------------------- TSV/CSV
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
    errors = _LineErrors(path, strict)
    numbers: list[int] = []

    def physical_lines() -> Iterator[str]:
        for number, line in _numbered_lines(path, errors):
            numbers.append(number)
            yield line + "\n"

    reader = csv.reader(physical_lines(), delimiter=delimiter,
                        quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL)
    header = next(reader, None)
    if header is None:
        raise ValueError(f"{path}: the file is empty (expected a header row)")
    header = [name.strip() for name in header]
    missing = [c for c in (text_column, label_column) if c not in header]
    if missing:
        raise ValueError(f"{path}: line {numbers[0]}: the header {header} lacks the "
                         f"column(s) {missing}")
    text_at, label_at = header.index(text_column), header.index(label_column)
    examples: list[SentimentExample] = []
    while True:
        start = len(numbers)
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            errors.fail(numbers[min(start, len(numbers) - 1)], f"CSV syntax error: {err}")
            continue
        number = numbers[start]
        if len(row) != len(header):
            errors.fail(number, f"expected {len(header)} fields like the header, got {len(row)}")
            continue
        text, label = row[text_at].strip(), row[label_at].strip()
        reason = _check_label(label, labels) or (None if text else "empty text")
        if reason is not None:
            errors.fail(number, reason)
            continue
        examples.append(SentimentExample(text, label, number))
    errors.report()
    return examples


# ------------------------------------------------------------------------------- data module
class _Encoded(Dataset[tuple[Tensor, int]]):
    """One split: token ids and class index per example."""

    def __init__(self, ids: list[Tensor], classes: list[int]) -> None:
        self.ids, self.classes = ids, classes

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.ids[index], self.classes[index]


class SentimentDataModule(SplitDataModule):
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

    FORMATS: ClassVar[dict[str, tuple[str | None, str, str, str]]] = {
        "semeval": ("semeval_twitter", "twitter-2013train-A.tsv", "twitter-2013dev-A.tsv",
                    "twitter-2013test-A.tsv"),
        "sst": ("sst", "train.txt", "dev.txt", "test.txt"),
        "tsv": (None, "train.tsv", "dev.tsv", "test.tsv"),
        "csv": (None, "train.csv", "dev.csv", "test.csv"),
    }
    #: Splits read for each stage of :meth:`setup`.
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
        if sst_classes not in (2, 5):
            raise ValueError(f"{name}: sst_classes must be 2 or 5, got {sst_classes!r}")
        if format == "sst" and labels is not None:
            raise ValueError(f"{name}: SST classes are fixed by sst_classes; do not pass labels")
        if labels is not None and (len(set(labels)) != len(labels) or len(labels) < 2):
            raise ValueError(f"{name}: labels must be at least 2 distinct names, got {labels}")
        for arg, value in (("min_count", min_count), ("batch_size", batch_size),
                           ("eval_batch_size", eval_batch_size)):
            _check_positive(arg, value, name)
        if num_workers < 0:
            raise ValueError(f"{name}: num_workers must be >= 0, got {num_workers}")
        folder, *files = self.FORMATS[format]
        if data_dir is None and folder is None:
            raise ValueError(f"{name}: format={format!r} needs data_dir")
        self.data_dir = Path(data_dir if data_dir is not None
                             else _preset_dir(None, cast(str, folder), name))  # checked above
        self.format = format
        self.files = dict(zip(("train", "valid", "test"),
                              (given or default for given, default
                               in zip((train, valid, test), files, strict=True)), strict=True))
        self.text_column, self.label_column = text_column, label_column
        self.sst_classes = sst_classes
        self.lowercase, self.normalize_twitter = lowercase, normalize_twitter
        self.min_count = min_count
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.strict = strict
        self.num_workers = num_workers
        self.seed = seed
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
        name = f"{cls.__name__}.from_examples"
        given = sorted(set(options) & set(cls.FILE_OPTIONS))
        if given:
            raise TypeError(f"{name}: {given} are options of data files; in-memory examples "
                            "are read as a TSV file of their texts and labels would be")
        module = cls(data_dir=Path(f"<{name}>"), format="tsv", **options)
        memory: dict[str, list[SentimentExample]] = {}
        for split, items in (("train", train), ("valid", valid), ("test", test)):
            if items is not None:
                labels = module._labels if split == "train" else module._train_labels(memory)
                memory[split] = _checked_examples(f"{name}: {split}", items, labels,
                                                  module.strict)
        module._memory = memory
        return module

    def _train_labels(self, memory: Mapping[str, list[SentimentExample]]) -> tuple[str, ...]:
        """The classes once the in-memory train split is known."""
        if self._labels is None:
            self._labels = tuple(sorted({example.label for example in memory["train"]}))
        return self._labels

    def has_split(self, split: str) -> bool:
        """Whether the data has ``split`` (in memory: the splits given to
        :meth:`from_examples`; files: all three)."""
        return self._memory is None or split in self._memory

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
        if self.format == "sst":
            return (text.lower() if self.lowercase else text).split(" ")
        return tokenize(text, **self.tokenizer_options)

    def path(self, split: str) -> Path:
        """The file of ``split`` (``"train"``, ``"valid"`` or ``"test"``)."""
        if split not in self.files:
            raise ValueError(f"unknown split {split!r}; expected one of {list(self.files)}")
        if self._memory is not None:
            raise ValueError(f"{type(self).__name__}: the data is in memory (from_examples), "
                             "it has no files")
        return self.data_dir / self.files[split]

    def _where(self, split: str) -> str | Path:
        """How messages name ``split``: its file, or the in-memory split."""
        if self._memory is not None:
            return f"{type(self).__name__}.from_examples: {split}"
        return self.path(split)

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

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Adopt a checkpoint's vocabulary (re-encoding the splits if it differs) and training
        position."""
        self.load_position_state(state_dict)
        if "vocab" in state_dict:
            vocab = Vocabulary.from_state(state_dict["vocab"])
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
        path, strict = self.path(split), self.strict
        if self.format == "semeval":
            examples = read_semeval(path, labels=labels or SEMEVAL_LABELS, strict=strict)
        elif self.format == "sst":
            examples = read_sst(path, classes=self.sst_classes, strict=strict)
        else:
            examples = read_delimited(path, text_column=self.text_column,
                                      label_column=self.label_column,
                                      delimiter="\t" if self.format == "tsv" else ",",
                                      labels=labels, strict=strict)
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
        if self.format == "semeval":
            return SEMEVAL_LABELS
        if self.format == "sst":
            return SST2_LABELS if self.sst_classes == 2 else SST5_LABELS
        return None


def _checked_examples(where: str, items: Any, labels: Collection[str] | None,
                      strict: bool) -> list[SentimentExample]:
    """In-memory ``(text, label)`` pairs as examples (``line``: the index in ``items``),
    checked as a reader checks lines (see :meth:`SentimentDataModule.from_examples`)."""
    if isinstance(items, (str, bytes, Path)) or not isinstance(items, Sequence):
        raise TypeError(f"{where} must be a sequence of (text, label) pairs, got "
                        f"{type(items).__name__} (for files, use SentimentDataModule(data_dir="
                        "..., format=...))")
    if not items:
        raise ValueError(f"{where} is empty: give at least one (text, label) pair")
    errors = _ExampleErrors(where, strict)
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
        reason = _check_label(label, labels) or (None if text.strip() else "empty text")
        if reason is not None:
            errors.fail(index, reason)
            continue
        examples.append(SentimentExample(text.strip(), label, index))
    errors.report()
    if not examples:
        raise ValueError(f"{where}: no examples left (strict=False dropped them all)")
    return examples
