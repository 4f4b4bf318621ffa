"""Padding and length-bucketed, rank-split batching (``lightning_rnn_reg.data.batching``)."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from lightning_rnn_reg.data.batching import LengthBucketSampler, pad_sequences

LENGTHS = torch.randint(1, 40, (103,), generator=torch.Generator().manual_seed(0)).tolist()


def test_pad_sequences_pads_and_reports_lengths() -> None:
    padded, lengths = pad_sequences([torch.tensor([1, 2, 3]), torch.tensor([4])], pad_value=9)
    assert padded.tolist() == [[1, 2, 3], [4, 9, 9]]
    assert lengths.tolist() == [3, 1]


def test_pad_sequences_keeps_trailing_dimensions() -> None:
    padded, _ = pad_sequences([torch.ones(2, 5), torch.ones(4, 5)])
    assert padded.shape == (2, 4, 5)
    assert padded[0, 2:].abs().sum() == 0


@pytest.mark.parametrize("sequences", [[], [torch.tensor([1]), torch.tensor([], dtype=torch.long)]])
def test_pad_sequences_rejects_empty_input(sequences) -> None:
    with pytest.raises(ValueError, match="pad_sequences"):
        pad_sequences(sequences)


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("shuffle", [True, False])
def test_every_batch_but_the_last_of_a_rank_is_full(world_size: int, shuffle: bool) -> None:
    for rank in range(world_size):
        sampler = LengthBucketSampler(LENGTHS, 8, shuffle=shuffle, pool_factor=4,
                                      num_replicas=world_size, rank=rank)
        batches = sampler.rank_batches()
        assert all(len(batch) == 8 for batch in batches[:-1])
        # a DataLoader with the same batch size cuts the index stream at the same places
        loader = DataLoader(range(len(LENGTHS)), batch_size=8, sampler=sampler)
        assert [b.tolist() for b in loader] == batches
        assert len(sampler) == sum(map(len, batches))


@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_eval_split_gives_every_example_to_exactly_one_rank(world_size: int) -> None:
    seen = []
    for rank in range(world_size):
        seen += list(LengthBucketSampler(LENGTHS, 8, shuffle=False, num_replicas=world_size,
                                         rank=rank))
    assert sorted(seen) == list(range(len(LENGTHS)))


@pytest.mark.parametrize("world_size", [2, 3])
def test_training_split_gives_every_rank_the_same_number_of_batches(world_size: int) -> None:
    counts, seen = set(), set()
    for rank in range(world_size):
        sampler = LengthBucketSampler(LENGTHS, 8, num_replicas=world_size, rank=rank)
        counts.add(sampler.num_batches())
        seen.update(sampler)
    assert len(counts) == 1
    assert seen == set(range(len(LENGTHS)))


def test_eval_order_is_sorted_by_length() -> None:
    order = list(LengthBucketSampler(LENGTHS, 8, shuffle=False))
    assert [LENGTHS[i] for i in order] == sorted(LENGTHS)


def test_training_batches_are_length_homogeneous_within_pools() -> None:
    sampler = LengthBucketSampler(LENGTHS, 8, pool_factor=100)  # one pool: fully sorted
    for batch in sampler.rank_batches():
        spread = max(LENGTHS[i] for i in batch) - min(LENGTHS[i] for i in batch)
        assert spread <= 10


def test_training_order_depends_on_seed_and_epoch_only() -> None:
    a, b = LengthBucketSampler(LENGTHS, 8, seed=1), LengthBucketSampler(LENGTHS, 8, seed=1)
    assert list(a) == list(b)
    b.set_epoch(1)
    assert list(a) != list(b)


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"pool_factor": 0},
                                    {"num_replicas": 2, "rank": 2}])
def test_bad_arguments_are_errors(kwargs) -> None:
    args = {"batch_size": 4, **kwargs}
    with pytest.raises(ValueError):
        LengthBucketSampler(LENGTHS, **args)


def test_empty_dataset_is_an_error() -> None:
    with pytest.raises(ValueError, match="empty"):
        LengthBucketSampler([], 4)
