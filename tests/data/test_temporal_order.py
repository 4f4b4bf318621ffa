"""TemporalOrder: balanced classes, markers where the task puts them, determinism by seed,
and a short real fit that learns the task."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from lightning_rnn_reg import SequenceClassifier
from lightning_rnn_reg.data import TEMPORAL_ORDER_CLASSES, TemporalOrder, temporal_order_sequences


def _markers(data: TemporalOrder, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(symbol ids, is-marker mask) of a split; markers are A (id 1) and B (id 2)."""
    ids = data.dataset(split).ids
    return ids, (ids == data.vocab["A"]) | (ids == data.vocab["B"])


def test_classes_are_exactly_balanced_in_every_split() -> None:
    data = TemporalOrder(length=15, train_batches=10, batch_size=30, valid_size=101,
                         test_size=400)
    assert torch.bincount(data.dataset("train").labels).tolist() == [75, 75, 75, 75]
    assert torch.bincount(data.dataset("test").labels).tolist() == [100, 100, 100, 100]
    assert sorted(torch.bincount(data.dataset("valid").labels).tolist()) == [25, 25, 25, 26]


def test_exactly_two_markers_one_in_each_of_the_first_two_thirds() -> None:
    data = TemporalOrder(length=30, test_size=2000)
    ids, is_marker = _markers(data, "test")
    assert is_marker.sum(1).eq(2).all()
    positions = is_marker.nonzero()[:, 1].view(-1, 2)
    assert positions[:, 0].min() == 0 and positions[:, 0].max() == 9
    assert positions[:, 1].min() == 10 and positions[:, 1].max() == 19
    assert torch.equal(positions, data.dataset("test").positions)
    assert not is_marker[:, 20:].any()


def test_label_is_the_order_of_the_two_markers() -> None:
    data = TemporalOrder(length=15, test_size=500)
    ids, is_marker = _markers(data, "test")
    symbols = ids[is_marker].view(-1, 2)
    names = ["".join(data.vocab.itos[int(s)] for s in row) for row in symbols]
    assert names == [TEMPORAL_ORDER_CLASSES[int(y)] for y in data.dataset("test").labels]


def test_distractors_are_the_non_marker_symbols_drawn_uniformly() -> None:
    data = TemporalOrder(length=30, num_distractors=3, test_size=4000)
    ids, is_marker = _markers(data, "test")
    counts = torch.bincount(ids[~is_marker], minlength=data.vocab_size)
    assert data.vocab.itos[3:] == ("C", "D", "E")
    assert counts[:3].sum() == 0
    shares = counts[3:].double() / counts.sum()
    assert torch.allclose(shares, torch.full((3,), 1 / 3, dtype=torch.double), atol=0.01)


def test_configurable_marker_ranges_are_respected() -> None:
    data = TemporalOrder(length=20, first=(2, 4), second=(15, 18), test_size=1000)
    positions = data.dataset("test").positions
    assert set(positions[:, 0].tolist()) == {2, 3}
    assert set(positions[:, 1].tolist()) == {15, 16, 17}


def test_same_seed_gives_the_same_data_and_another_seed_other_data() -> None:
    a, b, c = (TemporalOrder(length=15, seed=s, test_size=300) for s in (4, 4, 5))
    assert torch.equal(a.dataset("train").ids, b.dataset("train").ids)
    assert torch.equal(a.dataset("test").labels, b.dataset("test").labels)
    assert not torch.equal(a.dataset("train").ids, c.dataset("train").ids)


def test_splits_are_generated_independently_of_each_others_sizes() -> None:
    small = TemporalOrder(length=15, test_size=100, valid_size=50)
    large = TemporalOrder(length=15, test_size=900, valid_size=70)
    assert torch.equal(small.dataset("train").ids, large.dataset("train").ids)
    assert not torch.equal(small.dataset("test").ids, small.dataset("train").ids[:100])


def test_function_is_deterministic_given_a_generator() -> None:
    def draw() -> tuple[torch.Tensor, ...]:
        return temporal_order_sequences(64, 12, (0, 4), (4, 8),
                                        generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(x, y) for x, y in zip(draw(), draw(), strict=True))


def test_training_set_is_train_batches_of_batch_size() -> None:
    data = TemporalOrder(length=15, train_batches=7, batch_size=16)
    batches = list(data.train_dataloader())
    assert len(batches) == 7
    assert all(batch.tokens.shape == (16, 15) and batch.lengths.eq(15).all()
               for batch in batches)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"length": 2}, "length must be >= 3"),
    ({"length": 15, "first": (0, 0)}, "first=\\[0, 0\\) must be a non-empty"),
    ({"length": 15, "second": (10, 16)}, "second=\\[10, 16\\) must be a non-empty"),
    ({"length": 15, "first": (0, 8), "second": (6, 10)}, "must end before"),
    ({"num_distractors": 0}, "num_distractors must be in 1..24"),
    ({"train_batches": 0}, "train_batches must be an integer >= 1"),
])
def test_bad_arguments_raise_a_clear_error(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TemporalOrder(**kwargs)


def test_short_fit_of_a_classifier_learns_the_task(one_thread: None) -> None:
    L.seed_everything(0)
    data = TemporalOrder(length=9, train_batches=60, batch_size=32, valid_size=200,
                         test_size=400, seed=0)
    model = SequenceClassifier(data.vocab_size, data.num_classes, embedding_dim=8,
                               hidden_size=32, bidirectional=False, lr=0.01)
    trainer = L.Trainer(max_epochs=4, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, data)
    accuracy = trainer.test(model, data, verbose=False)[0]["test/acc"]
    assert accuracy > 0.9  # chance is 0.25
    assert model.class_names == list(TEMPORAL_ORDER_CLASSES)
