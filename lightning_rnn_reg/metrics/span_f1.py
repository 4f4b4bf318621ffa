"""Entity-level (span) precision, recall and F1, as conlleval computes them (CoNLL-2000/2003).

A predicted entity is correct only if a gold entity has the same type, start and end.
Entities are read from the tag sequences with conlleval's rules
(:func:`~lightning_rnn_reg.tag_schemes.spans`). With ``C`` correct, ``P`` predicted and
``G`` gold entities: ``precision = C / P``, ``recall = C / G``, ``F1 = 2 C / (P + G)``
(the harmonic mean of the two; ``0`` when undefined). Micro scores sum the counts over all
types; per-type scores use each type's counts.

Scores are fractions in ``[0, 1]`` (torchmetrics' convention); conlleval prints percentages,
so multiply by 100 to compare. The states are per-type sums of ``C``, ``P`` and ``G``
(``dist_reduce_fx="sum"``), so the result under DDP equals the single-process one exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from torchmetrics import Metric

from lightning_rnn_reg.tag_schemes import (
    INTERNAL_SCHEME,
    span_types,
    spans,
    split_tag,
)

__all__ = ["SpanF1"]


def _ratio(num: Tensor, den: Tensor) -> Tensor:
    return torch.where(den > 0, num / den.clamp_min(1), torch.zeros_like(num))


class SpanF1(Metric):
    """conlleval's entity-level micro F1, with per-type precision / recall / F1.

    Args:
        tag_names: the tags in id order (``"O"``, ``"B-PER"``, ...).
        scheme: the scheme of the tags (``"IOBES"``, ``"IOB2"`` or ``"IOB1"``); every tag
            name must use its prefixes. Spans are read with conlleval's rules in all cases.

    ``update(pred_tags, gold_tags, lengths)`` takes tag ids ``(B, T)`` and the valid lengths
    ``(B,)`` (positions beyond a length, e.g. ``-100`` padding, are never read).
    ``compute()`` returns the micro F1, a scalar tensor in ``[0, 1]``;
    :meth:`scores` returns micro and per-type precision / recall / F1 and counts.

    Example::

        f1 = SpanF1(["O", "B-PER", "I-PER", "E-PER", "S-PER"])
        f1.update(pred_ids, gold_ids, lengths)
        f1.compute(), f1.scores()["PER"]["recall"]
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    # states (add_state), per entity type
    correct: Tensor
    predicted: Tensor
    gold: Tensor

    def __init__(self, tag_names: Sequence[str], scheme: str = INTERNAL_SCHEME,
                 **kwargs: object) -> None:
        super().__init__(**kwargs)
        for tag in tag_names:
            split_tag(tag, scheme)
        self.tag_names = tuple(tag_names)
        self.scheme = scheme
        self.types = span_types(tag_names)
        self._type_index = {kind: index for index, kind in enumerate(self.types)}
        for name in ("correct", "predicted", "gold"):
            self.add_state(name, default=torch.zeros(len(self.types), dtype=torch.long),
                           dist_reduce_fx="sum")

    def _spans(self, ids: list[int]) -> set[tuple[str, int, int]]:
        return set(spans([self.tag_names[i] for i in ids]))

    def update(self, pred_tags: Tensor, gold_tags: Tensor, lengths: Tensor) -> None:
        """Count the entities of a batch of predicted and gold tag id sequences ``(B, T)``."""
        if pred_tags.shape != gold_tags.shape or pred_tags.dim() != 2:
            raise ValueError(f"SpanF1: pred_tags and gold_tags must both be (B, T), got "
                             f"{tuple(pred_tags.shape)} and {tuple(gold_tags.shape)}")
        counts = torch.zeros(3, len(self.types), dtype=torch.long)
        for pred, gold, length in zip(pred_tags.tolist(), gold_tags.tolist(), lengths.tolist(),
                                      strict=True):
            predicted, expected = self._spans(pred[:length]), self._spans(gold[:length])
            for row, found in enumerate((predicted & expected, predicted, expected)):
                for kind, _, _ in found:
                    counts[row, self._type_index[kind]] += 1
        counts = counts.to(self.correct.device)
        self.correct = self.correct + counts[0]
        self.predicted = self.predicted + counts[1]
        self.gold = self.gold + counts[2]

    def compute(self) -> Tensor:
        """Micro F1 over all types, in ``[0, 1]``."""
        correct, predicted, gold = (t.sum().double() for t in
                                    (self.correct, self.predicted, self.gold))
        return _ratio(2 * correct, predicted + gold).float()

    def scores(self) -> dict[str, dict[str, float]]:
        """``{"micro": {...}, TYPE: {...}}``, each with ``precision``, ``recall``, ``f1``
        (fractions) and the counts ``correct``, ``predicted``, ``gold``; synced across ranks."""
        with self.sync_context():
            counts = {"correct": self.correct, "predicted": self.predicted, "gold": self.gold}
            rows = {kind: {name: int(value[index]) for name, value in counts.items()}
                    for index, kind in enumerate(self.types)}
            rows["micro"] = {name: int(value.sum()) for name, value in counts.items()}
        result = {}
        for kind, row in rows.items():
            c, p, g = (torch.tensor(float(row[n])) for n in ("correct", "predicted", "gold"))
            result[kind] = {"precision": float(_ratio(c, p)), "recall": float(_ratio(c, g)),
                            "f1": float(_ratio(2 * c, p + g)), **row}
        return result
