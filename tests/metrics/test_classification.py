"""Classification metrics (``lightning_rnn_reg.metrics.classification``) on a hand-counted
fixture: classes ``negative = 0``, ``neutral = 1``, ``positive = 2``.

Counts per class (tp, fp, fn): negative (2, 1, 1), neutral (3, 1, 0), positive (2, 1, 2), so
``F1 = 2tp / (2tp + fp + fn)`` is 2/3, 6/7 and 4/7; ``F1_PN = (4/7 + 2/3) / 2 = 13/21``,
macro F1 ``= (2/3 + 6/7 + 4/7) / 3 = 44/63``, accuracy ``7/10``.
"""

from __future__ import annotations

import doctest

import pytest
import torch

from lightning_rnn_reg.metrics import classification
from lightning_rnn_reg.metrics.classification import F1PN, classification_metrics

TARGET = torch.tensor([2, 2, 2, 0, 0, 1, 1, 1, 0, 2])
PREDS = torch.tensor([2, 1, 2, 0, 2, 1, 1, 1, 0, 0])
NEG, POS = 0, 2


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall)


def test_doctests_pass() -> None:
    assert doctest.testmod(classification).failed == 0


def test_f1_pn_equals_hand_computed_value() -> None:
    # SemEval scorer's way: per-class precision and recall, then their harmonic mean
    f1_positive = _f1(precision=2 / 3, recall=2 / 4)
    f1_negative = _f1(precision=2 / 3, recall=2 / 3)
    assert (f1_positive, f1_negative) == (pytest.approx(4 / 7), pytest.approx(2 / 3))
    value = F1PN(3, positive_class=POS, negative_class=NEG)(PREDS, TARGET)
    assert float(value) == pytest.approx(13 / 21, abs=1e-6)


def test_f1_pn_takes_logits_and_accumulates_over_batches() -> None:
    metric = F1PN(3, positive_class=POS, negative_class=NEG)
    logits = torch.nn.functional.one_hot(PREDS, 3).float() * 5 - 1
    metric.update(logits[:4], TARGET[:4])
    metric.update(logits[4:], TARGET[4:])
    assert float(metric.compute()) == pytest.approx(13 / 21, abs=1e-6)


def test_f1_pn_of_a_polar_class_never_seen_nor_predicted_is_zero() -> None:
    target, preds = torch.tensor([2, 1, 1]), torch.tensor([2, 1, 0])
    # positive: F1 = 1; negative: tp = 0 (fp 1) -> F1 = 0
    assert float(F1PN(3, POS, NEG)(preds, target)) == pytest.approx(0.5)
    assert float(F1PN(3, POS, NEG)(torch.tensor([1]), torch.tensor([1]))) == 0.0


def test_accuracy_and_macro_f1_equal_hand_computed_values() -> None:
    metrics = classification_metrics(3, positive_class=POS, negative_class=NEG)
    values = {name: float(metric(PREDS, TARGET)) for name, metric in metrics.items()}
    assert values == {"acc": pytest.approx(0.7), "f1": pytest.approx(44 / 63, abs=1e-6),
                      "f1_pn": pytest.approx(13 / 21, abs=1e-6)}


def test_states_are_sums_so_merged_shards_equal_the_whole() -> None:
    """What DDP does: each rank counts its shard; the synced counts are their sums."""
    for name in ("acc", "f1", "f1_pn"):
        whole = classification_metrics(3, POS, NEG)[name]
        whole.update(PREDS, TARGET)
        shards = [classification_metrics(3, POS, NEG)[name] for _ in range(2)]
        shards[0].update(PREDS[:3], TARGET[:3])
        shards[1].update(PREDS[3:], TARGET[3:])
        assert all(fx == "sum" or getattr(fx, "__name__", "") == "dim_zero_sum"
                   for fx in shards[0]._reductions.values()), name
        shards[0].merge_state(shards[1])
        assert float(shards[0].compute()) == pytest.approx(float(whole.compute())), name


def test_f1_pn_is_left_out_without_both_polar_classes() -> None:
    assert sorted(classification_metrics(4)) == ["acc", "f1"]
    assert sorted(classification_metrics(4, positive_class=1)) == ["acc", "f1"]


@pytest.mark.parametrize(("positive", "negative", "message"), [
    (1, 1, "must differ"), (3, 0, r"in \[0, 3\)"), (0, -1, r"in \[0, 3\)"), (True, 0, "index"),
])
def test_f1_pn_rejects_bad_class_indices(positive, negative, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        F1PN(3, positive_class=positive, negative_class=negative)
