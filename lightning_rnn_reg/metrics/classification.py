"""Sequence-classification metrics: accuracy, macro F1, and SemEval's ``F1_PN``.

Per class ``c``, with true positives ``tp_c``, false positives ``fp_c`` and false negatives
``fn_c`` counted over the whole evaluation set::

    F1_c  = 2 tp_c / (2 tp_c + fp_c + fn_c)          (0 when the denominator is 0)
    F1_PN = (F1_positive + F1_negative) / 2           (SemEval Twitter, Nakov et al. 2016)

accuracy ``= sum_c tp_c / N``; macro F1 is the mean of ``F1_c`` over the classes, leaving out
those that occur in neither the predictions nor the targets (torchmetrics'
``MulticlassF1Score(average="macro")``). Every metric keeps per-class count states that ranks
add (``dist_reduce_fx="sum"``), so the values are exact under DDP: the counts are summed
first and the ratios taken once.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassF1Score,
    MulticlassStatScores,
)

from lightning_rnn_reg.metrics.language_modeling import _MeanNLL

__all__ = ["F1PN", "MeanCrossEntropy", "classification_metrics"]


class F1PN(MulticlassStatScores):
    """Mean F1 of the positive and the negative class, SemEval's ``F1_PN`` (exact under DDP).

    The neutral class (and any other) counts only through the false positives and false
    negatives it causes for the two polar classes, as in the official SemEval scorer.

    Args:
        num_classes: number of classes ``C``.
        positive_class: index of the positive class.
        negative_class: index of the negative class.

    Shapes: ``update(preds, target)`` with class indices ``(N,)`` or logits ``(N, C)``.

    Example:
        >>> metric = F1PN(3, positive_class=2, negative_class=0)
        >>> metric(torch.tensor([2, 2, 0, 1]), torch.tensor([2, 0, 0, 1]))
        tensor(0.6667)
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, num_classes: int, positive_class: int, negative_class: int,
                 **kwargs: Any) -> None:
        for name, index in (("positive_class", positive_class),
                            ("negative_class", negative_class)):
            if isinstance(index, bool) or not isinstance(index, int) or not (
                    0 <= index < num_classes):
                raise ValueError(f"F1PN: {name} must be a class index in [0, {num_classes}), "
                                 f"got {index!r}")
        if positive_class == negative_class:
            raise ValueError(f"F1PN: positive_class and negative_class must differ, got "
                             f"{positive_class} for both")
        super().__init__(num_classes=num_classes, average="none", **kwargs)
        self.positive_class = positive_class
        self.negative_class = negative_class

    def compute(self) -> Tensor:
        tp, fp, _, fn = self._final_state()
        polar = torch.tensor([self.positive_class, self.negative_class], device=tp.device)
        tp, fp, fn = tp[polar].double(), fp[polar].double(), fn[polar].double()
        denominator = 2 * tp + fp + fn
        f1 = torch.where(denominator > 0, 2 * tp / denominator.clamp_min(1), 0.0)
        return f1.mean().float()


class MeanCrossEntropy(_MeanNLL):
    """Mean cross-entropy per example ``sum_i -log p(y_i | x_i) / N``, exact under DDP.

    States: summed NLL (float64) and count, updated out of place (so a metric reset under
    ``torch.inference_mode`` can be updated again in a later training-time validation).

    Example:
        >>> loss = MeanCrossEntropy()
        >>> loss.update(torch.tensor(3.0), 2); loss.update(torch.tensor(1.0), 2)
        >>> loss.compute()
        tensor(1., dtype=torch.float64)
    """

    def compute(self) -> Tensor:
        return self._mean()


def classification_metrics(num_classes: int, positive_class: int | None = None,
                           negative_class: int | None = None) -> dict[str, Metric]:
    """The metrics a classifier logs: ``acc``, ``f1`` (macro) and, when both polar class
    indices are given, ``f1_pn``.

    Example:
        >>> metrics = classification_metrics(3, positive_class=2, negative_class=0)
        >>> sorted(metrics)
        ['acc', 'f1', 'f1_pn']
    """
    metrics: dict[str, Metric] = {
        "acc": MulticlassAccuracy(num_classes, average="micro"),
        "f1": MulticlassF1Score(num_classes, average="macro"),
    }
    if positive_class is not None and negative_class is not None:
        metrics["f1_pn"] = F1PN(num_classes, positive_class, negative_class)
    return metrics
