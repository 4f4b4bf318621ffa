"""SemEval Twitter message-polarity files (Nakov et al. 2013): ``id<TAB>label<TAB>text``."""

from __future__ import annotations

import html
import re
import warnings
from collections.abc import Collection
from pathlib import Path

from lightning_rnn_reg.data.sentiment.examples import (
    LineErrors,
    SentimentDataWarning,
    SentimentExample,
    check_label,
    numbered_lines,
)

__all__ = ["SEMEVAL_LABELS", "normalize_semeval_text", "read_semeval"]

#: SemEval message polarity classes, in index order.
SEMEVAL_LABELS = ("negative", "neutral", "positive")

_SEMEVAL_ALIASES = {"objective": "neutral", "objective-or-neutral": "neutral"}
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
    errors = LineErrors(path, strict)
    examples: list[SentimentExample] = []
    first_label: dict[str, str] = {}
    duplicates = conflicting = 0
    for number, line in numbered_lines(path, errors):
        columns = line.split("\t")
        if len(columns) not in (3, 4):
            errors.fail(number, f"expected 3 tab-separated columns (id, label, text) and an "
                                f"optional fourth, got {len(columns)}")
            continue
        tweet_id, label, text = columns[0].strip(), columns[1].strip().lower(), columns[2]
        label = _SEMEVAL_ALIASES.get(label, label)
        text = normalize_semeval_text(text).strip()
        reason = ("empty id" if not tweet_id else check_label(label, labels)
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
