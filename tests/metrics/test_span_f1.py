"""SpanF1 against counts worked out by hand on a fixture of conlleval's cases."""

from __future__ import annotations

import pytest
import torch

from lightning_rnn_reg.metrics.span_f1 import SpanF1

IOB1 = ["O", "I-PER", "B-PER", "I-LOC", "B-LOC", "I-ORG", "B-ORG"]

# (gold, predicted), IOB1; each line's entities as conlleval reads them
FIXTURE = [
    # exact matches: PER(0,2) LOC(3,4) both right                    C PER+1 LOC+1
    (["I-PER", "I-PER", "O", "I-LOC"], ["I-PER", "I-PER", "O", "I-LOC"]),
    # boundary error: gold LOC(0,2), predicted LOC(0,1)
    (["I-LOC", "I-LOC", "O"], ["I-LOC", "O", "O"]),
    # type error: gold ORG(0,1), predicted LOC(0,1)
    (["I-ORG", "O"], ["I-LOC", "O"]),
    # one entity predicted as two: gold ORG(0,3), predicted ORG(0,2) ORG(2,3)
    (["I-ORG", "I-ORG", "I-ORG"], ["I-ORG", "I-ORG", "B-ORG"]),
    # IOB1 B- between adjacent PERs: gold PER(0,1) PER(1,2), predicted one PER(0,2)
    (["I-PER", "B-PER", "O"], ["I-PER", "I-PER", "O"]),
    # ... and predicted right                                           C PER+2
    (["I-PER", "B-PER"], ["I-PER", "B-PER"]),
    # spurious entity: predicted LOC(0,1), gold none
    (["O", "O"], ["I-LOC", "O"]),
]
# by hand:  PER gold 1+2+2=5, predicted 1+1+2=4, correct 1+2=3
#           LOC gold 1+1=2,   predicted 1+1+1+1=4, correct 1
#           ORG gold 1+1=2,   predicted 2,         correct 0
EXPECTED = {"PER": (3, 4, 5), "LOC": (1, 4, 2), "ORG": (0, 2, 2), "micro": (4, 10, 9)}


def _ids(rows: list[list[str]], width: int) -> torch.Tensor:
    out = torch.full((len(rows), width), -100)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor([IOB1.index(t) for t in row])
    return out


def _batch(pairs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(len(g) for g, _ in pairs)
    lengths = torch.tensor([len(g) for g, _ in pairs])
    return _ids([p for _, p in pairs], width), _ids([g for g, _ in pairs], width), lengths


def _prf(correct: int, predicted: int, gold: int) -> tuple[float, float, float]:
    p = correct / predicted if predicted else 0.0
    r = correct / gold if gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def test_micro_f1_and_per_type_scores_match_hand_counts():
    metric = SpanF1(IOB1, scheme="IOB1")
    metric.update(*_batch(FIXTURE))
    assert float(metric.compute()) == pytest.approx(8 / 19)  # P 4/10, R 4/9
    scores = metric.scores()
    assert set(scores) == {"PER", "LOC", "ORG", "micro"}
    for kind, (correct, predicted, gold) in EXPECTED.items():
        row = scores[kind]
        assert (row["correct"], row["predicted"], row["gold"]) == (correct, predicted, gold)
        p, r, f = _prf(correct, predicted, gold)
        assert row["precision"] == pytest.approx(p)
        assert row["recall"] == pytest.approx(r)
        assert row["f1"] == pytest.approx(f)
    assert scores["PER"]["f1"] == pytest.approx(2 / 3) and scores["ORG"]["f1"] == 0.0


def test_batches_accumulate_like_one_batch_and_reset_clears():
    metric = SpanF1(IOB1, scheme="IOB1")
    for pair in FIXTURE:
        metric.update(*_batch([pair]))
    assert float(metric.compute()) == pytest.approx(8 / 19)
    metric.reset()
    metric.update(*_batch(FIXTURE[:1]))
    assert float(metric.compute()) == 1.0


def test_positions_beyond_the_length_are_never_read():
    pred, gold, lengths = _batch(FIXTURE)
    pred = pred.masked_fill(pred == -100, IOB1.index("I-PER"))
    gold = gold.masked_fill(gold == -100, IOB1.index("I-LOC"))
    metric = SpanF1(IOB1, scheme="IOB1")
    metric.update(pred, gold, lengths)
    assert float(metric.compute()) == pytest.approx(8 / 19)


def test_no_entities_gives_zero_not_nan():
    metric = SpanF1(["O", "S-PER"])
    metric.update(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 3, dtype=torch.long),
                  torch.tensor([3]))
    assert float(metric.compute()) == 0.0
    assert metric.scores()["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                      "correct": 0, "predicted": 0, "gold": 0}


def test_tag_names_must_fit_the_scheme():
    with pytest.raises(ValueError, match="IOB2"):
        SpanF1(["O", "S-PER"], scheme="IOB2")
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        SpanF1(IOB1).update(torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long),
                            torch.tensor([3]))
