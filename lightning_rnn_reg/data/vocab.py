"""Vocabulary: the fixed, ordered map between tokens and the integer ids a model sees.

Id ``i`` is row ``i`` of the embedding and class ``i`` of the softmax, so the vocabulary is
part of the model: it is built once from the training split and saved with the model. It
is saved as plain data (:meth:`Vocabulary.to_state`: lists, strings and ints only), which a
checkpoint can hold and ``torch.load(weights_only=True)`` can read back.

Order, for a given training token stream: the special tokens first (``<unk>`` always, then
``<eos>`` and any others), then every other token by descending training count, ties broken
by first occurrence. With ``min_count=k`` the tokens seen fewer than ``k`` times are left out
and their occurrences are counted under ``<unk>``. Encoding maps a token that is not in the
vocabulary to ``<unk>`` and reports how many tokens did.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor

from lightning_rnn_reg.validation import check_positive_int

__all__ = ["EOS", "UNK", "Vocabulary"]

#: The unknown-token symbol (PTB and WikiText-2 spell rare words this way too).
UNK = "<unk>"
#: The end-of-line symbol appended to every line of a corpus.
EOS = "<eos>"

_STATE_FORMAT = 1


class Vocabulary:
    """An ordered token <-> id map with a ``<unk>`` entry; built from training text.

    Args:
        itos: the tokens, in id order (no duplicates); must contain ``unk``.
        unk: the token that stands for every token outside the vocabulary.
        counts: training count of each token (same order as ``itos``); zeros if omitted.

    Shapes: :meth:`encode` returns a 1-D ``LongTensor`` of ids, one per token.

    Example:
        >>> vocab = Vocabulary.build([["a", "b", "a", "<eos>"]])
        >>> vocab.itos
        ('<unk>', '<eos>', 'a', 'b')
        >>> vocab.encode(["a", "zebra"]).tolist()
        [2, 0]
    """

    __slots__ = ("_counts", "_itos", "_stoi", "_unk")

    def __init__(self, itos: Sequence[str], *, unk: str = UNK, counts: Sequence[int] | None = None):
        self._itos = tuple(itos)
        self._stoi = {token: index for index, token in enumerate(self._itos)}
        if len(self._stoi) != len(self._itos):
            duplicates = sorted(t for t, n in Counter(self._itos).items() if n > 1)
            raise ValueError(f"Vocabulary tokens must be unique; repeated: {duplicates[:10]}")
        if not all(isinstance(token, str) for token in self._itos):
            raise TypeError("Vocabulary tokens must be strings")
        if unk not in self._stoi:
            raise ValueError(f"the unknown token {unk!r} must be one of the vocabulary tokens")
        self._unk = unk
        counts = [0] * len(self._itos) if counts is None else [int(c) for c in counts]
        if len(counts) != len(self._itos):
            raise ValueError(f"got {len(counts)} counts for {len(self._itos)} tokens")
        self._counts = tuple(counts)

    @classmethod
    def build(
        cls,
        lines_of_tokens: Iterable[Iterable[str]],
        *,
        min_count: int = 1,
        specials: Sequence[str] = (UNK, EOS),
        unk: str = UNK,
    ) -> Vocabulary:
        """Build the vocabulary of a training token stream, given as lines of tokens.

        The lines are counted as given: a corpus reader appends ``<eos>`` to each line first.

        Args:
            lines_of_tokens: the training text, one sequence of tokens per line.
            min_count: tokens seen fewer times are left out (counted as ``unk``); specials
                are always kept.
            specials: tokens placed first, in this order; ``unk`` is added in front if absent.
            unk: the unknown token.

        Example:
            >>> lines = [["the", "cat", "<eos>"], ["the", "dog", "<eos>"]]
            >>> Vocabulary.build(lines, min_count=2).itos
            ('<unk>', '<eos>', 'the')
        """
        check_positive_int("Vocabulary.build", "min_count", min_count)
        counter: Counter[str] = Counter()
        for line in lines_of_tokens:
            if isinstance(line, str):
                raise TypeError("each line must be a sequence of tokens, e.g. text.split()")
            counter.update(line)
        head = list(specials) if unk in specials else [unk, *specials]
        if len(set(head)) != len(head):
            raise ValueError(f"specials must be unique, got {list(specials)}")
        special_set = set(head)
        # Counter keeps first-occurrence order and sorted() is stable: ties by first occurrence.
        ranked = sorted(
            ((t, n) for t, n in counter.items() if t not in special_set),
            key=lambda item: -item[1],
        )
        kept = [(t, n) for t, n in ranked if n >= min_count]
        folded = sum(n for _, n in ranked if n < min_count)
        counts = [counter[t] + (folded if t == unk else 0) for t in head]
        return cls(head + [t for t, _ in kept], unk=unk, counts=counts + [n for _, n in kept])

    # ----------------------------------------------------------------------------- lookups
    @property
    def itos(self) -> tuple[str, ...]:
        """The tokens in id order (``itos[i]`` is the token of id ``i``)."""
        return self._itos

    @property
    def stoi(self) -> Mapping[str, int]:
        """Read-only map from token to id (tokens outside the vocabulary are absent)."""
        return MappingProxyType(self._stoi)

    @property
    def counts(self) -> tuple[int, ...]:
        """Training count of each token, in id order (``<unk>`` includes folded tokens)."""
        return self._counts

    @property
    def unk(self) -> str:
        """The unknown token."""
        return self._unk

    @property
    def unk_index(self) -> int:
        """The id of the unknown token."""
        return self._stoi[self._unk]

    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token: object) -> bool:
        return token in self._stoi

    def __getitem__(self, token: str) -> int:
        """The id of ``token``, or of ``<unk>`` if it is not in the vocabulary."""
        return self._stoi.get(token, self.unk_index)

    # ---------------------------------------------------------------------------- encoding
    def encode(self, tokens: Iterable[str]) -> Tensor:
        """Map tokens to a 1-D ``LongTensor`` of ids; unknown tokens become ``<unk>``.

        Example:
            >>> Vocabulary(["<unk>", "a"]).encode(["a", "b"]).tolist()
            [1, 0]
        """
        return self.encode_with_unknown(tokens)[0]

    def encode_with_unknown(self, tokens: Iterable[str]) -> tuple[Tensor, int]:
        """Like :meth:`encode`, also returning how many tokens were not in the vocabulary.

        A token spelled like the unknown token (PTB's own ``<unk>``) is in the vocabulary
        and is not counted.

        Example:
            >>> ids, unknown = Vocabulary(["<unk>", "a"]).encode_with_unknown(["a", "b", "c"])
            >>> ids.tolist(), unknown
            ([1, 0, 0], 2)
        """
        if isinstance(tokens, str):
            raise TypeError("encode takes a sequence of tokens, e.g. text.split(), not a str")
        get = self._stoi.get
        ids = torch.tensor([get(token, -1) for token in tokens], dtype=torch.long)
        missing = ids < 0
        unknown = int(missing.sum())
        if unknown:
            ids[missing] = self.unk_index
        return ids, unknown

    def decode(self, ids: Tensor | Iterable[int]) -> list[str]:
        """Map a 1-D sequence of ids back to tokens.

        Example:
            >>> Vocabulary(["<unk>", "a"]).decode([1, 0])
            ['a', '<unk>']
        """
        if isinstance(ids, Tensor):
            if ids.dim() != 1:
                raise ValueError(f"decode takes a 1-D tensor of ids, got shape {tuple(ids.shape)}")
            ids = ids.tolist()
        itos = self._itos
        return [itos[int(i)] for i in ids]

    # -------------------------------------------------------------------------- persistence
    def to_state(self) -> dict[str, Any]:
        """Plain-data state (lists, str, int) for a checkpoint; see :meth:`from_state`.

        Example:
            >>> vocab = Vocabulary(["<unk>", "a"])
            >>> Vocabulary.from_state(vocab.to_state()) == vocab
            True
        """
        return {
            "format": _STATE_FORMAT,
            "itos": list(self._itos),
            "unk": self._unk,
            "counts": list(self._counts),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Vocabulary:
        """Rebuild a vocabulary from :meth:`to_state` output."""
        if not isinstance(state, Mapping) or "itos" not in state or "unk" not in state:
            raise ValueError("not a Vocabulary state: expected a mapping with 'itos' and 'unk'")
        if state.get("format", _STATE_FORMAT) != _STATE_FORMAT:
            raise ValueError(f"unsupported Vocabulary state format {state.get('format')!r}")
        return cls(list(state["itos"]), unk=str(state["unk"]), counts=state.get("counts"))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocabulary):
            return NotImplemented
        return self._itos == other._itos and self._unk == other._unk

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        preview = ", ".join(repr(t) for t in self._itos[:5])
        more = ", ..." if len(self._itos) > 5 else ""
        return f"Vocabulary(size={len(self)}, itos=[{preview}{more}])"
