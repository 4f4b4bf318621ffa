"""Corpus files and raw text as tokens: the reading of every language-modelling corpus.

Reading (pytorch/examples, Zaremba et al. 2014): every line is split on whitespace and ends
with one ``<eos>`` token, empty lines included (WikiText-2).

Raw text (:func:`text_to_tokens`, :func:`tokens_to_text`; what a trained
:class:`~lightning_rnn_reg.LanguageModel` reads and writes): a text is read as a corpus file
holding it would be, one line per line of the text, each ending with ``<eos>``. At word level a
line is split on whitespace; at char level each character is a symbol and the gap between two
words is PTB-char's word boundary ``_``.
"""

from __future__ import annotations

from collections.abc import Sequence

from lightning_rnn_reg.data.readers import DataSource, read_lines
from lightning_rnn_reg.data.vocab import EOS

__all__ = ["LEVELS", "WORD_BOUNDARY", "check_level", "read_corpus", "text_to_tokens",
           "tokens_to_text"]

#: The corpus levels: whitespace-separated words, or PTB-char's single characters.
LEVELS = ("word", "char")
#: PTB-char's word boundary: the symbol between two words of a char-level line.
WORD_BOUNDARY = "_"


def check_level(level: str, where: object) -> None:
    """Raise ``ValueError`` (naming ``where``) unless ``level`` is one of :data:`LEVELS`."""
    if level not in LEVELS:
        raise ValueError(f"{where}: unknown level {level!r}; expected one of {list(LEVELS)}")


def read_corpus(
    source: DataSource, level: str = "word", *, missing_hint: str = ""
) -> list[list[str]]:
    """Read a corpus file into lines of tokens, each line ending with ``<eos>``.

    ``level="word"`` splits lines on whitespace. ``level="char"`` reads the PTB-char format:
    whitespace-separated single characters, ``_`` between words (``"c a t _ s a t"``); a
    longer symbol is an error. Empty lines become a lone ``<eos>``.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the file is empty, is not UTF-8 (line number given), has a multi-character
            symbol at char level, or ``level`` is unknown.

    Example:
        >>> from pathlib import Path
        >>> _ = Path("/tmp/tiny.txt").write_text(" the cat \\n \\n")
        >>> read_corpus(Path("/tmp/tiny.txt"))
        [['the', 'cat', '<eos>'], ['<eos>']]
    """
    check_level(level, source)
    lines = [line.split() for line in read_lines(source, missing_hint=missing_hint)]
    if not any(lines):
        raise ValueError(f"{source}: the file is empty (it holds no tokens)")
    if level == "char":
        for number, symbols in enumerate(lines, start=1):
            long = next((s for s in symbols if len(s) != 1), None)
            if long is not None:
                raise ValueError(
                    f"{source}: line {number}: level='char' expects one character per "
                    f"whitespace-separated symbol (PTB-char format, e.g. 'c a t _ s a t'), "
                    f"found {long!r}"
                )
    for symbols in lines:
        symbols.append(EOS)
    return lines


def _text_lines(text: str) -> list[str]:
    """The lines of ``text`` as :func:`~lightning_rnn_reg.data.readers.read_lines` splits a
    file (``\\n``, ``\\r\\n``, ``\\r``; a whitespace-only last fragment is no line); a
    text without any line is one empty line."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if len(lines) > 1 and not lines[-1].strip():
        lines.pop()
    return lines


def text_to_tokens(text: str, level: str = "word", *,
                   word_boundary: str | None = WORD_BOUNDARY) -> list[str]:
    """The tokens a :class:`TextCorpus` of ``level`` reads from raw ``text``.

    Every line of ``text`` (split as a file is) ends with ``<eos>``; a text with no line (the
    empty string) is one empty line, ``["<eos>"]``. ``level="word"``: the line split on
    whitespace, exactly :func:`read_corpus`. ``level="char"``: the characters of the line's
    whitespace-separated words, ``word_boundary`` between two words (``None``: nothing), i.e.
    what :func:`read_corpus` reads from the PTB-char spelling of the line (``"c a t _ s a t"``).

    Example:
        >>> text_to_tokens("the cat\\n sat ")
        ['the', 'cat', '<eos>', 'sat', '<eos>']
        >>> text_to_tokens("a cat", "char")
        ['a', '_', 'c', 'a', 't', '<eos>']
    """
    if not isinstance(text, str):
        raise TypeError(f"text_to_tokens takes a str, got {type(text).__name__}")
    check_level(level, "text_to_tokens")
    tokens: list[str] = []
    for line in _text_lines(text):
        words = line.split()
        if level == "word":
            tokens.extend(words)
        else:
            for index, word in enumerate(words):
                if index and word_boundary is not None:
                    tokens.append(word_boundary)
                tokens.extend(word)
        tokens.append(EOS)
    return tokens


def tokens_to_text(tokens: Sequence[str], level: str = "word", *,
                   word_boundary: str | None = WORD_BOUNDARY) -> str:
    """Raw text of a token sequence: the inverse of :func:`text_to_tokens`.

    ``<eos>`` ends a line (``"\\n"``); within a line, words are joined by one space at word
    level, and characters are concatenated at char level with ``word_boundary`` read as a
    space. ``text_to_tokens(tokens_to_text(t)) == t`` for tokens ending with ``<eos>``.

    Example:
        >>> tokens_to_text(["the", "cat", "<eos>", "sat"])
        'the cat\\nsat'
        >>> tokens_to_text(["a", "_", "c", "a", "t"], "char")
        'a cat'
    """
    check_level(level, "tokens_to_text")
    lines: list[list[str]] = [[]]
    for token in tokens:
        if token == EOS:
            lines.append([])
        elif level == "char" and token == word_boundary:
            lines[-1].append(" ")
        else:
            lines[-1].append(token)
    joiner = " " if level == "word" else ""
    return "\n".join(joiner.join(line) for line in lines)
