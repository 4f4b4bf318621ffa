"""A small, deterministic word tokenizer for sentences and tweets (Penn-Treebank-like clitics).

``tokenize(text)`` scans the text left to right and emits, at each position, the first rule
that matches (whitespace separates tokens and is dropped):

1. with ``normalize_twitter``: a URL (``http://``, ``https://`` or ``www.`` up to the next
   whitespace, trailing ``.,!?;:)]"'`` left out) becomes ``<url>``; a handle ``@name`` not
   preceded by a word character becomes ``@user``;
2. a hashtag ``#word`` is one token;
3. an emoticon: eyes ``:`` ``;`` ``=``, an optional nose ``-`` ``o`` ``^`` ``'``, then a run
   of mouths ``) ] ( [ D P p / \\ | * 3`` (``:)``, ``;-P``, ``:'(``, ``:)))``), or ``<3``;
4. a number with inner separators (``3.39``, ``1,000``, ``10:30``) is one token;
5. an abbreviation of single letters and dots (``U.S.``, ``e.g.``) is one token;
6. a word: word characters joined by inner hyphens or apostrophes (``coming-of-age``,
   ``o'clock``), then split Penn-Treebank style (as the Stanford Sentiment Treebank is): a
   final ``n't`` comes off (``don't`` -> ``do n't``, ``can't`` -> ``ca n't``), as do the
   clitics ``'s 'm 'd 're 've 'll`` (``it's`` -> ``it 's``);
7. any other character, together with the run of the same character after it (``...``,
   ``!!!``, ``--``, ``?``).

Typographic apostrophes (U+2018, U+2019) are read as ``'`` first. With ``lowercase``, every
token is lowercased except the placeholders ``<url>`` and ``@user``. The function has no
state and no randomness: the same text always gives the same tokens.
"""

from __future__ import annotations

import re

__all__ = ["HANDLE", "URL", "tokenize"]

#: Placeholder for a URL (with ``normalize_twitter``).
URL = "<url>"
#: Placeholder for a Twitter handle (with ``normalize_twitter``).
HANDLE = "@user"

_TWITTER = r"(?P<url>(?:https?://|www\.)\S*[^\s.,!?;:)\]\"'])|(?P<handle>(?<!\w)@\w+)|"
_COMMON = (
    r"(?P<hashtag>\#\w+)"
    r"|(?P<emoticon>[:;=][-o^']?[)\](\[DPp/\\|*3]+(?![\w])|<3)"
    r"|(?P<number>\d+(?:[.,:]\d+)+)"
    r"|(?P<abbreviation>(?:[A-Za-z]\.){2,})"
    r"|(?P<word>\w+(?:['-]\w+)*)"
    r"|(?P<other>(?P<char>[^\w\s])(?P=char)*)"
)
_WITH_TWITTER = re.compile(_TWITTER + _COMMON)
_PLAIN = re.compile(_COMMON)
_CLITIC = re.compile(r"(?i)^(.+?)(n't|'s|'m|'d|'re|'ve|'ll)$")
_APOSTROPHES = str.maketrans({"\u2018": "'", "\u2019": "'"})


def tokenize(text: str, lowercase: bool = False, normalize_twitter: bool = True) -> list[str]:
    """Split ``text`` into tokens by the rules of this module's docstring.

    Args:
        text: the raw text (a sentence, a tweet).
        lowercase: lowercase every token but the ``<url>`` / ``@user`` placeholders.
        normalize_twitter: replace URLs by ``<url>`` and handles by ``@user``.

    Example:
        >>> tokenize("I can't believe it's $3.39!!! :)")
        ['I', 'ca', "n't", 'believe', 'it', "'s", '$', '3.39', '!!!', ':)']
        >>> tokenize("@Bob Loved it... see https://t.co/Xy1 #Great", lowercase=True)
        ['@user', 'loved', 'it', '...', 'see', '<url>', '#great']
        >>> tokenize("A coming-of-age tale (U.S. cut)", normalize_twitter=False)
        ['A', 'coming-of-age', 'tale', '(', 'U.S.', 'cut', ')']
    """
    pattern = _WITH_TWITTER if normalize_twitter else _PLAIN
    tokens: list[str] = []
    for match in pattern.finditer(text.translate(_APOSTROPHES)):
        kind = match.lastgroup
        if kind == "url":
            tokens.append(URL)
        elif kind == "handle":
            tokens.append(HANDLE)
        elif kind == "word":
            tokens.extend(_split_clitics(match.group(), lowercase))
        else:
            token = match.group()
            tokens.append(token.lower() if lowercase else token)
    return tokens


def _split_clitics(word: str, lowercase: bool) -> list[str]:
    """``don't`` -> ``do n't``, ``it's`` -> ``it 's`` (a word that is only a clitic stays)."""
    if lowercase:
        word = word.lower()
    found = _CLITIC.match(word)
    if found is None or found.group(1).endswith(("'", "-")):
        return [word]
    return [found.group(1), found.group(2)]
