"""Padded batches of variable-length sequences, bucketed by length (tagging, classification).

Sentences and documents are batched ``batch_first``: ``tokens`` ``(B, T_max)`` padded with
``pad_value`` and ``lengths`` ``(B,)``, which the layers take as ``lengths=`` so padding never
reaches a state or an output. :class:`LengthBucketSampler` groups examples of similar length
into the same batch (to limit padding) and splits the batches across data-parallel ranks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from lightning_rnn_reg.data.resume import ResumableSampler
from lightning_rnn_reg.validation import check_positive_ints

__all__ = ["LengthBucketSampler", "bucket_loader", "distributed_position", "pad_sequences"]


def pad_sequences(sequences: Sequence[Tensor], pad_value: int | float = 0) -> tuple[Tensor, Tensor]:
    """Stack 1-D (or ``(T, ...)``) tensors into ``(B, T_max, ...)``, padded with ``pad_value``.

    Returns ``(padded, lengths)`` with ``lengths`` a CPU ``int64`` tensor ``(B,)``.

    Example:
        >>> padded, lengths = pad_sequences([torch.tensor([1, 2, 3]), torch.tensor([4])])
        >>> padded.tolist(), lengths.tolist()
        ([[1, 2, 3], [4, 0, 0]], [3, 1])
    """
    if len(sequences) == 0:
        raise ValueError("pad_sequences needs at least one sequence")
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.int64)
    if int(lengths.min()) < 1:
        raise ValueError("pad_sequences: every sequence needs at least one element")
    first = sequences[0]
    out = first.new_full((len(sequences), int(lengths.max()), *first.shape[1:]), pad_value)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = seq
    return out, lengths


def distributed_position(datamodule: Any) -> tuple[int, int]:
    """``(rank, world_size)`` from the datamodule's trainer, else torch.distributed, else
    ``(0, 1)``."""
    trainer = getattr(datamodule, "trainer", None)
    if trainer is not None:
        return int(trainer.global_rank), int(trainer.world_size)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class LengthBucketSampler(ResumableSampler, DistributedSampler):
    """Indices in an order where every run of ``batch_size`` holds examples of similar length.

    Training (``shuffle=True``): the examples are shuffled (generator seeded with
    ``seed + epoch``, so every rank draws the same order and :meth:`set_epoch` changes it),
    cut into pools of ``batch_size * pool_factor``, each pool sorted by length and cut into
    batches, and the batches shuffled. Evaluation (``shuffle=False``): all examples sorted by
    length (stable), so padding is minimal and the order deterministic.

    With ``num_replicas = W`` ranks, batch ``k`` goes to rank ``k % W``. ``even=True`` (training:
    every rank must take the same number of steps) repeats batches from the start so that
    the count divides by ``W``, as :class:`~torch.utils.data.DistributedSampler` does;
    ``even=False`` (evaluation) gives each example to exactly one rank, so metrics synced
    across ranks equal the single-process ones. Use it as ``DataLoader(dataset,
    batch_size=batch_size, sampler=...)``; being a ``DistributedSampler``, Lightning keeps it
    under DDP instead of replacing it.

    Example:
        >>> lengths = [5, 1, 4, 2, 3, 6]
        >>> list(LengthBucketSampler(lengths, batch_size=2, shuffle=False))
        [1, 3, 4, 2, 0, 5]
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        pool_factor: int = 50,
        num_replicas: int = 1,
        rank: int = 0,
        even: bool | None = None,
    ) -> None:
        check_positive_ints(type(self).__name__, batch_size=batch_size, pool_factor=pool_factor,
                            num_replicas=num_replicas)
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas), got {rank} of {num_replicas}")
        self.lengths = torch.as_tensor(list(lengths), dtype=torch.int64)
        if self.lengths.numel() == 0:
            raise ValueError("LengthBucketSampler: the dataset is empty")
        super().__init__(range(len(self.lengths)), num_replicas=num_replicas, rank=rank,  # type: ignore[arg-type]
                         shuffle=shuffle, seed=seed)
        self.batch_size = batch_size
        self.pool_factor = pool_factor
        self.even = shuffle if even is None else even

    def batches(self) -> list[list[int]]:
        """All batches of the current epoch (every rank's), before the split across ranks."""
        n = len(self.lengths)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=generator)
        else:
            generator, order = None, torch.arange(n)
        pool = n if not self.shuffle else self.batch_size * self.pool_factor
        batches: list[list[int]] = []
        for start in range(0, n, pool):
            chunk = order[start : start + pool]
            chunk = chunk[torch.sort(self.lengths[chunk], stable=True).indices]
            batches.extend(chunk[i : i + self.batch_size].tolist()
                           for i in range(0, len(chunk), self.batch_size))
        partial = [b for b in batches if len(b) < self.batch_size]  # at most one: the last pool's
        full = [b for b in batches if len(b) == self.batch_size]
        if generator is not None:
            full = [full[k] for k in torch.randperm(len(full), generator=generator)]
        # the short batch goes last, so that a DataLoader with ``batch_size`` cuts this flat
        # index stream at the same boundaries on every rank
        return full + partial

    def rank_batches(self) -> list[list[int]]:
        """This rank's batches of the current epoch."""
        batches = self.batches()
        if self.even and len(batches) % self.num_replicas:
            missing = self.num_replicas - len(batches) % self.num_replicas
            last_partial = len(batches[-1]) < self.batch_size
            body = batches[:-1] if last_partial and len(batches) > 1 else batches
            filler = [body[k % len(body)] for k in range(missing)]
            batches = (batches[:-1] + filler + batches[-1:]) if last_partial else batches + filler
        return batches[self.rank :: self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        # a generator: the order is computed at the first index, after ``set_epoch``
        for batch in self._resumed(self.rank_batches()):
            yield from batch

    def __len__(self) -> int:
        return sum(len(batch) for batch in self.rank_batches())

    def num_batches(self) -> int:
        """Number of batches this rank yields per epoch."""
        return len(self.rank_batches())


class SeededDataLoader(DataLoader):
    """A ``DataLoader`` with its own generator for worker seeds, seeded with ``seed``.

    Starting an iteration then never draws from torch's default generator, the one the
    masks come from, so a run resumed from a checkpoint draws exactly the masks an
    uninterrupted run would. Picklable (``ddp_spawn`` sends data modules, and the trainers
    they hold, to new processes; a ``torch.Generator`` cannot travel): the generator is
    rebuilt from ``seed`` on arrival.
    """

    def __init__(self, *args: Any, seed: int = 0, **kwargs: Any) -> None:
        self.seed = seed
        kwargs["generator"] = torch.Generator().manual_seed(seed)
        super().__init__(*args, **kwargs)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["generator"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__["generator"] = torch.Generator().manual_seed(self.seed)


def bucket_loader(datamodule: Any, dataset: Dataset[Any], lengths: Sequence[int], batch_size: int,
                  *, shuffle: bool, seed: int = 0, collate_fn: Any = None,
                  num_workers: int = 0) -> DataLoader[Any]:
    """A ``DataLoader`` over ``dataset`` with a :class:`LengthBucketSampler` for this rank.

    ``shuffle=True`` (training): shuffled buckets, the same number of batches on every rank;
    ``shuffle=False`` (evaluation): sorted by length, each example on exactly one rank. The
    rank comes from :func:`distributed_position` of ``datamodule``.
    """
    rank, world_size = distributed_position(datamodule)
    sampler = LengthBucketSampler(lengths, batch_size, shuffle=shuffle, seed=seed,
                                  num_replicas=world_size, rank=rank, even=shuffle)
    return SeededDataLoader(dataset, batch_size=batch_size, sampler=sampler,
                            collate_fn=collate_fn, num_workers=num_workers, seed=seed)
