"""Tagging data as the model sees it: vocabularies, the capitalization feature, padded batches.

A sentence becomes, per token: a word id (the word optionally lowercased), the ids of the
characters of the original token (``0`` is padding), and a capitalization class
(:func:`caps_feature`), which keeps the case information that lowercasing removes (Collobert
et al. 2011; the setup of Semeniuta et al. 2016); its tags become ids of the internal scheme,
IOBES (:mod:`~lightning_rnn_reg.tag_schemes`). :class:`TaggingVocabulary` holds all of
it as plain data, so a trained tagger carries it in its checkpoint and tags raw text alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_rnn_reg.data.batching import pad_sequences
from lightning_rnn_reg.data.vocab import UNK, Vocabulary
from lightning_rnn_reg.tag_schemes import (
    INTERNAL_SCHEME,
    OUTSIDE,
    check_scheme,
    convert_tags,
    split_tag,
)
from lightning_rnn_reg.validation import check_positive_int

__all__ = [
    "CAPS_CLASSES",
    "IGNORE_INDEX",
    "PAD",
    "TaggedSentence",
    "TaggingBatch",
    "TaggingVocabulary",
    "caps_feature",
]

#: The padding token of the word and character vocabularies (id 0 in both).
PAD = "<pad>"
#: Tag id of padding positions (``F.cross_entropy``'s default ``ignore_index``).
IGNORE_INDEX = -100
#: Number of capitalization classes of :func:`caps_feature`.
CAPS_CLASSES = 4
_STATE_FORMAT = 1


class TaggedSentence(NamedTuple):
    """One sentence: its tokens and their tags (internal scheme, IOBES)."""

    tokens: list[str]
    tags: list[str]


class TaggingBatch(NamedTuple):
    """A padded batch of sentences, ``batch_first``.

    Attributes:
        tokens: ``(B, T)`` word ids, padded with the word vocabulary's ``<pad>`` id.
        lengths: ``(B,)`` sentence lengths (CPU ``int64``).
        tags: ``(B, T)`` tag ids (internal scheme), padded with ``-100``; ``None`` for raw text.
        chars: ``(B, T, W)`` character ids, padded with ``0`` (both beyond a word's last
            character and at padding tokens); ``None`` without a character vocabulary.
        caps: ``(B, T)`` capitalization classes (:func:`caps_feature`), padded with ``0``.
    """

    tokens: Tensor
    lengths: Tensor
    tags: Tensor | None
    chars: Tensor | None
    caps: Tensor | None


def caps_feature(token: str) -> int:
    """The capitalization class of a token, judged on its letters.

    ``0``: all letters lowercase (``"the"``, ``"e-mail"``, ``"3rd"``); ``1``: first letter
    uppercase, the others lowercase (``"Paris"``); ``2``: all letters uppercase (``"EU"``,
    ``"U.S."``, ``"I"``); ``3``: anything else: mixed case (``"McDonald"``) or no letter at
    all (``"1996"``, ``","``).

    Example:
        >>> [caps_feature(t) for t in ["the", "Paris", "EU", "McDonald", "1996"]]
        [0, 1, 2, 3, 3]
    """
    letters = [c for c in token if c.isalpha()]
    if not letters:
        return 3
    if all(c.islower() for c in letters):
        return 0
    if all(c.isupper() for c in letters):
        return 2
    if letters[0].isupper() and all(c.islower() for c in letters[1:]):
        return 1
    return 3


class TaggingVocabulary:
    """Everything that turns raw sentences into model inputs and tag ids back into tags.

    Word vocabulary (``<pad>`` id 0, ``<unk>`` id 1, then by training count; built from the
    possibly lowercased training tokens), optional character vocabulary (``<pad>`` id 0,
    ``<unk>`` id 1; from the original-case training tokens), the tag names (internal scheme,
    in id order), and the reading options. Saved as plain data (:meth:`to_state`), so a
    model checkpoint can carry it and tag raw text without the data.

    Example:
        >>> sents = [TaggedSentence(["EU", "rejects"], ["S-ORG", "O"])]
        >>> tv = TaggingVocabulary.build(sents, char_vocab=True)
        >>> tv.tag_names[:5]
        ('O', 'B-ORG', 'I-ORG', 'E-ORG', 'S-ORG')
        >>> tv.batch([["EU", "says"]]).tokens.tolist()
        [[2, 1]]
    """

    def __init__(self, words: Vocabulary, tag_names: Sequence[str], *,
                 chars: Vocabulary | None = None, lowercase: bool = False,
                 max_word_length: int | None = None, source_scheme: str = INTERNAL_SCHEME
                 ) -> None:
        for name, vocab in (("words", words), ("chars", chars)):
            if vocab is not None and vocab.itos[0] != PAD:
                raise ValueError(f"TaggingVocabulary: {name} must have {PAD!r} at id 0")
        if not tag_names or tag_names[0] != OUTSIDE:
            raise ValueError(f"TaggingVocabulary: the first tag must be {OUTSIDE!r}")
        for tag in tag_names:
            split_tag(tag, INTERNAL_SCHEME)
        check_positive_int("TaggingVocabulary", "max_word_length", max_word_length,
                           allow_none=True)
        self.words, self.chars = words, chars
        self.tag_names = tuple(tag_names)
        self.tag_ids = {tag: index for index, tag in enumerate(self.tag_names)}
        self.lowercase, self.max_word_length = lowercase, max_word_length
        self.source_scheme = check_scheme(source_scheme)

    @classmethod
    def build(cls, sentences: Sequence[TaggedSentence], *, min_count: int = 1,
              lowercase: bool = False, char_vocab: bool = False,
              max_word_length: int | None = None, source_scheme: str = INTERNAL_SCHEME
              ) -> TaggingVocabulary:
        """Build from the training sentences (tags already in the internal scheme)."""
        words = Vocabulary.build((cls._words(s.tokens, lowercase) for s in sentences),
                                 min_count=min_count, specials=(PAD, UNK))
        chars = None
        if char_vocab:
            chars = Vocabulary.build((list(t) for s in sentences for t in s.tokens),
                                     specials=(PAD, UNK))
        kinds = sorted({split_tag(tag)[1] for s in sentences for tag in s.tags} - {""})
        tag_names = [OUTSIDE] + [f"{p}-{kind}" for kind in kinds for p in "BIES"]
        return cls(words, tag_names, chars=chars, lowercase=lowercase,
                   max_word_length=max_word_length, source_scheme=source_scheme)

    @staticmethod
    def _words(tokens: Iterable[str], lowercase: bool) -> list[str]:
        return [t.lower() for t in tokens] if lowercase else list(tokens)

    @property
    def pad_index(self) -> int:
        """Word id of padding."""
        return self.words.stoi[PAD]

    # ------------------------------------------------------------------------- encoding
    def encode(self, tokens: Sequence[str], tags: Sequence[str] | None = None
               ) -> tuple[dict[str, Tensor | None], int]:
        """One sentence as 1-D/2-D tensors (``tokens``, ``chars``, ``caps``, ``tags``), and
        how many of its words were unknown. Raises ``ValueError`` for a tag outside the set."""
        ids, unknown = self.words.encode_with_unknown(self._words(tokens, self.lowercase))
        example: dict[str, Tensor | None] = {
            "tokens": ids,
            "caps": torch.tensor([caps_feature(t) for t in tokens], dtype=torch.long),
            "chars": self._encode_chars(tokens) if self.chars is not None else None,
            "tags": None,
        }
        if tags is not None:
            missing = [tag for tag in tags if tag not in self.tag_ids]
            if missing:
                raise ValueError(f"tags {sorted(set(missing))} are not in the tag set "
                                 f"(built from the training data): {list(self.tag_names)}")
            example["tags"] = torch.tensor([self.tag_ids[tag] for tag in tags], dtype=torch.long)
        return example, unknown

    def _encode_chars(self, tokens: Sequence[str]) -> Tensor:
        assert self.chars is not None
        words = [self.chars.encode(list(t[: self.max_word_length])) for t in tokens]
        width = max(len(w) for w in words)
        return torch.stack([F.pad(w, (0, width - len(w))) for w in words])

    def collate(self, examples: Sequence[Mapping[str, Tensor | None]]) -> TaggingBatch:
        """Pad encoded sentences (:meth:`encode`) into a :class:`TaggingBatch`."""
        # encode() always gives "tokens" and "caps", and "chars" with a character vocabulary
        tokens, lengths = pad_sequences([cast(Tensor, e["tokens"]) for e in examples],
                                        self.pad_index)
        caps, _ = pad_sequences([cast(Tensor, e["caps"]) for e in examples], 0)
        tags = chars = None
        if all(e["tags"] is not None for e in examples):
            tags, _ = pad_sequences([cast(Tensor, e["tags"]) for e in examples], IGNORE_INDEX)
        if self.chars is not None:
            char_ids = [cast(Tensor, e["chars"]) for e in examples]
            width = max(c.shape[1] for c in char_ids)
            chars, _ = pad_sequences([F.pad(c, (0, width - c.shape[1])) for c in char_ids], 0)
        return TaggingBatch(tokens, lengths, tags, chars, caps)

    def batch(self, sentences: Sequence[Sequence[str]]) -> TaggingBatch:
        """Raw tokenized sentences (non-empty) as a batch without tags."""
        return self.collate([self.encode(tokens)[0] for tokens in sentences])

    def decode_tags(self, ids: Tensor | Iterable[int], scheme: str | None = None) -> list[str]:
        """Tag ids (internal scheme) -> tag strings in ``scheme`` (default: the scheme the
        training data was declared in)."""
        tags = [self.tag_names[int(i)] for i in ids]
        target = scheme or self.source_scheme
        return tags if target == INTERNAL_SCHEME else convert_tags(tags, INTERNAL_SCHEME, target)

    # ---------------------------------------------------------------------- persistence
    def to_state(self) -> dict[str, Any]:
        """Plain data (lists, str, int, bool, None) for a checkpoint."""
        return {
            "format": _STATE_FORMAT,
            "words": self.words.to_state(),
            "chars": self.chars.to_state() if self.chars is not None else None,
            "tags": list(self.tag_names),
            "scheme": INTERNAL_SCHEME,
            "source_scheme": self.source_scheme,
            "lowercase": self.lowercase,
            "max_word_length": self.max_word_length,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> TaggingVocabulary:
        """Rebuild from :meth:`to_state` output."""
        if state.get("format") != _STATE_FORMAT or state.get("scheme") != INTERNAL_SCHEME:
            raise ValueError("not a TaggingVocabulary state of this version")
        chars = state.get("chars")
        return cls(Vocabulary.from_state(state["words"]), state["tags"],
                   chars=Vocabulary.from_state(chars) if chars is not None else None,
                   lowercase=bool(state["lowercase"]), max_word_length=state["max_word_length"],
                   source_scheme=state["source_scheme"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TaggingVocabulary):
            return NotImplemented
        return self.to_state() == other.to_state()

    __hash__ = None  # type: ignore[assignment]
