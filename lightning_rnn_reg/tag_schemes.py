"""Entity tag schemes (IOB1, IOB2, IOBES): validity, spans as conlleval reads them, conversion.

A tag is ``"O"`` or ``"<prefix>-<TYPE>"``. The three schemes encode the same thing, a list of
non-overlapping entity spans, differently:

- IOB1 (CoNLL-2003 files): ``I-X`` inside an entity; ``B-X`` only on the first token of an
  entity that directly follows another entity of type ``X``.
- IOB2 (BIO): ``B-X`` on the first token of every entity, ``I-X`` on the others.
- IOBES (BIOES, BILOU): ``S-X`` a one-token entity; ``B-X``, ``I-X``..., ``E-X`` a longer one.

The library's internal scheme is IOBES (:data:`INTERNAL_SCHEME`): the data modules convert to
it on reading, the tagger predicts it, and its transition constraints are the strictest, so a
constrained decoder never produces an ambiguous sequence.

Spans are read with conlleval's rules (Tjong Kim Sang, CoNLL-2000), whatever the scheme:
an entity starts at ``B-``/``S-``, at ``I-``/``E-`` after ``O``, ``E-``, ``S-`` or a tag of
another type; it ends before ``B-``, ``S-``, ``O``, after ``E-``/``S-`` and where the type
changes. A span is ``(type, start, end)`` with ``end`` exclusive (Python slice convention).
Every conversion goes through the spans, so ``IOB1 -> IOBES -> IOB1`` gives back the input
for every valid input (IOB1 forbids nothing; a ``B-X`` where ``I-X`` would do comes back as
``I-X``: conlleval reads both the same).

Validity (what :func:`invalid_positions` reports):

- IOB1: every sequence of ``O``/``B-``/``I-`` tags is accepted (conlleval's reading; eng.train
  itself has two ``B-MISC`` after ``O``).
- IOB2: ``I-X`` must follow ``B-X`` or ``I-X``.
- IOBES: ``I-X``/``E-X`` must follow ``B-X`` or ``I-X``; ``B-X``/``I-X`` must be followed by
  ``I-X`` or ``E-X``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "INTERNAL_SCHEME",
    "OUTSIDE",
    "SCHEMES",
    "Span",
    "allowed_transitions",
    "check_scheme",
    "convert_tags",
    "invalid_positions",
    "span_types",
    "spans",
    "split_tag",
    "tags_from_spans",
]

SCHEMES = ("IOB1", "IOB2", "IOBES")
#: The scheme the data modules convert to and the tagger predicts.
INTERNAL_SCHEME = "IOBES"
OUTSIDE = "O"
_PREFIXES = {"IOB1": ("B", "I"), "IOB2": ("B", "I"), "IOBES": ("B", "I", "E", "S")}
_OPEN = ("B", "I")  # prefixes after which an IOBES entity must go on
_ALL_PREFIXES = ("B", "I", "E", "S")

#: An entity: ``(type, start, end)``, ``end`` exclusive.
Span = tuple[str, int, int]


def check_scheme(scheme: str) -> str:
    """Return ``scheme`` if it is one of :data:`SCHEMES`, else raise ``ValueError``."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {list(SCHEMES)}")
    return scheme


def split_tag(tag: str, scheme: str | None = None) -> tuple[str, str]:
    """``"B-PER" -> ("B", "PER")``, ``"O" -> ("O", "")``.

    The type is everything after the first ``-``. With ``scheme`` the prefix must be one of
    that scheme's; without, any of ``B I E S``. Raises ``ValueError`` otherwise.

    Example:
        >>> split_tag("I-ORG"), split_tag("O")
        (('I', 'ORG'), ('O', ''))
    """
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, dash, kind = tag.partition("-")
    allowed = _PREFIXES[check_scheme(scheme)] if scheme is not None else _ALL_PREFIXES
    if not dash or not kind or prefix not in allowed:
        where = f" in {scheme}" if scheme is not None else ""
        raise ValueError(f"tag {tag!r} is not 'O' or one of the prefixes {list(allowed)} "
                         f"followed by '-TYPE'{where}")
    return prefix, kind


def _may_follow(prev: tuple[str, str], cur: tuple[str, str], scheme: str) -> bool:
    """Whether tag ``cur`` may come right after ``prev`` (``("O", "")`` at the start)."""
    if scheme == "IOB1":
        return True
    continues = prev[0] in _OPEN and prev[1] == cur[1]
    if scheme == "IOB2":
        return cur[0] != "I" or continues
    if cur[0] in ("I", "E"):
        return continues
    return prev[0] not in _OPEN  # O, B, S close whatever came before; IOBES B-/I- must go on


def _may_end(tag: tuple[str, str], scheme: str) -> bool:
    return scheme != "IOBES" or tag[0] not in _OPEN


def invalid_positions(tags: Sequence[str], scheme: str) -> list[int]:
    """Indices of the tags that break ``scheme``'s rules (see the module docstring).

    The blamed tag is the one to change: an ``I-``/``E-`` that starts nothing, or (IOBES) a
    ``B-``/``I-`` that is not continued. Raises ``ValueError`` for a prefix the scheme lacks.

    Example:
        >>> invalid_positions(["O", "I-PER", "B-LOC", "I-PER"], "IOB2")
        [1, 3]
    """
    parsed = [split_tag(tag, scheme) for tag in tags]
    bad: set[int] = set()
    prev = (OUTSIDE, "")
    for index, cur in enumerate(parsed):
        if not _may_follow(prev, cur, scheme):
            bad.add(index if cur[0] in ("I", "E") else index - 1)
        prev = cur
    if parsed and not _may_end(parsed[-1], scheme):
        bad.add(len(parsed) - 1)
    return sorted(bad)


def _ends(prev: tuple[str, str], cur: tuple[str, str]) -> bool:
    """conlleval's ``endOfChunk``: the entity open at ``prev`` ends before ``cur``."""
    if prev[0] in ("E", "S"):
        return True
    if prev[0] in _OPEN and cur[0] in ("B", "S", OUTSIDE):
        return True
    return prev[0] != OUTSIDE and prev[1] != cur[1]


def _starts(prev: tuple[str, str], cur: tuple[str, str]) -> bool:
    """conlleval's ``startOfChunk``: an entity starts at ``cur``."""
    if cur[0] in ("B", "S"):
        return True
    if cur[0] in ("I", "E") and prev[0] in ("E", "S", OUTSIDE):
        return True
    return cur[0] != OUTSIDE and prev[1] != cur[1]


def spans(tags: Sequence[str]) -> list[Span]:
    """The entities of a tag sequence as conlleval reads them: ``[(type, start, end)]``.

    Works for all three schemes (and for invalid sequences, which it reads leniently).

    Example:
        >>> spans(["I-PER", "I-PER", "B-PER", "O", "I-LOC"])
        [('PER', 0, 2), ('PER', 2, 3), ('LOC', 4, 5)]
    """
    found: list[Span] = []
    start: int | None = None
    prev = (OUTSIDE, "")
    for index, tag in enumerate(tags):
        cur = split_tag(tag)
        if start is not None and _ends(prev, cur):
            found.append((prev[1], start, index))
            start = None
        if _starts(prev, cur):
            start = index
        prev = cur
    if start is not None:
        found.append((prev[1], start, len(tags)))
    return found


def span_types(tag_names: Sequence[str]) -> list[str]:
    """The entity types of a tag set, in order of first appearance.

    Example:
        >>> span_types(["O", "B-PER", "I-PER", "B-LOC"])
        ['PER', 'LOC']
    """
    kinds = (split_tag(tag)[1] for tag in tag_names if tag != OUTSIDE)
    return list(dict.fromkeys(kinds))


def tags_from_spans(entities: Sequence[Span], length: int, scheme: str) -> list[str]:
    """Encode sorted, non-overlapping spans as ``length`` tags of ``scheme``.

    Example:
        >>> tags_from_spans([("PER", 0, 2), ("PER", 2, 3)], 4, "IOB1")
        ['I-PER', 'I-PER', 'B-PER', 'O']
        >>> tags_from_spans([("PER", 0, 2), ("PER", 2, 3)], 4, "IOBES")
        ['B-PER', 'E-PER', 'S-PER', 'O']
    """
    check_scheme(scheme)
    tags = [OUTSIDE] * length
    last_end, last_type = -1, None
    for kind, start, end in entities:
        if not 0 <= start < end <= length or start < max(last_end, 0):
            raise ValueError(f"spans must be sorted, non-overlapping and inside [0, {length}); "
                             f"got {(kind, start, end)} after one ending at {last_end}")
        if scheme == "IOBES" and end - start == 1:
            tags[start] = f"S-{kind}"
        else:
            inside = [f"I-{kind}"] * (end - start)
            if scheme != "IOB1" or (last_end == start and last_type == kind):
                inside[0] = f"B-{kind}"
            if scheme == "IOBES":
                inside[-1] = f"E-{kind}"
            tags[start:end] = inside
        last_end, last_type = end, kind
    return tags


def convert_tags(tags: Sequence[str], source: str, target: str) -> list[str]:
    """Convert a tag sequence from scheme ``source`` to scheme ``target`` (via its spans).

    Raises ``ValueError`` if ``tags`` is not valid in ``source`` (naming the first bad index).

    Example:
        >>> convert_tags(["I-PER", "I-PER", "B-PER", "O"], "IOB1", "IOB2")
        ['B-PER', 'I-PER', 'B-PER', 'O']
    """
    bad = invalid_positions(tags, check_scheme(source))
    if bad:
        raise ValueError(f"tag {tags[bad[0]]!r} at index {bad[0]} is not valid {source}")
    return tags_from_spans(spans(tags), len(tags), target)


def allowed_transitions(tag_names: Sequence[str], scheme: str) -> tuple[Tensor, Tensor, Tensor]:
    """The constraints of ``scheme`` over a tag set, as boolean tensors for decoding.

    Returns ``(start (K,), transitions (K, K), end (K,))``: which tags may open a sentence,
    ``transitions[i, j]`` whether tag ``j`` may follow tag ``i``, and which may close it. A
    path is valid in ``scheme`` exactly when it uses only allowed entries.

    Example:
        >>> start, trans, end = allowed_transitions(["O", "B-X", "I-X", "E-X", "S-X"], "IOBES")
        >>> start.tolist(), end.tolist()
        ([True, True, False, False, True], [True, False, False, True, True])
    """
    parsed = [split_tag(tag, check_scheme(scheme)) for tag in tag_names]
    start = torch.tensor([_may_follow((OUTSIDE, ""), tag, scheme) for tag in parsed])
    end = torch.tensor([_may_end(tag, scheme) for tag in parsed])
    transitions = torch.tensor([[_may_follow(prev, cur, scheme) for cur in parsed]
                                for prev in parsed])
    return start, transitions, end
