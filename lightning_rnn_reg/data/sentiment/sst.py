"""Stanford Sentiment Treebank files (Socher et al. 2013): one PTB-style tree a line."""

from __future__ import annotations

import re
from pathlib import Path

from lightning_rnn_reg.data.sentiment.examples import LineErrors, SentimentExample, numbered_lines

__all__ = ["SST2_LABELS", "SST5_LABELS", "parse_sst_tree", "read_sst"]

#: SST-5 classes (root labels 0-4), in index order.
SST5_LABELS = ("very negative", "negative", "neutral", "positive", "very positive")
#: SST-2 classes (root labels 0-1 and 3-4; 2 is left out), in index order.
SST2_LABELS = ("negative", "positive")

_PTB_BRACKETS = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{",
                 "-RCB-": "}"}
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
    errors = LineErrors(path, strict)
    examples: list[SentimentExample] = []
    for number, line in numbered_lines(path, errors):
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
