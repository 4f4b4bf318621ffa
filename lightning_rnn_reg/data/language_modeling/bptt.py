"""Truncated-BPTT batches of a token stream (Zaremba 2014; Merity 2017).

Batching ("batchify"): the stream is cut into ``B`` contiguous streams, laid out time-major::

    data[t, b] = w[b * T + t],   T = N // B,  shape (T, B)   (the last N mod B tokens dropped)

and read in windows of ``L`` steps, in order, never shuffled (the hidden state is carried from
one window to the next)::

    inputs = data[i : i + L],   targets = data[i + 1 : i + 1 + L]

Variable BPTT (Merity et al. 2017, AWD-LSTM): during training each window length is drawn as
``base = bptt`` with probability 0.95 else ``bptt / 2``, ``L = max(5, round(N(base, 5)))``,
capped at the end of the data. The model rescales its learning rate by ``L / bptt``, so every
batch carries ``seq_len`` and ``bptt``. Validation and test always use the fixed ``bptt``.

Data parallelism: with ``W`` ranks the stream is cut into ``W * B`` streams and rank ``r``
reads streams ``[r * B, (r + 1) * B)``: disjoint, and together everything but the remainder.
Every rank has the same ``T`` and draws the same window lengths (seed + epoch), so all ranks
run the same number of steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor
from torch.utils.data import Dataset, DistributedSampler

from lightning_rnn_reg.data.resume import ResumableSampler
from lightning_rnn_reg.validation import check_positive_int, check_positive_ints

__all__ = [
    "BPTTSampler",
    "BPTTStreams",
    "LMBatch",
    "VariableBPTTSampler",
    "batchify",
    "bptt_windows",
    "variable_bptt_windows",
]


class LMBatch(NamedTuple):
    """One truncated-BPTT window of ``B`` parallel streams, time-major.

    Attributes:
        inputs: ``(L, B)`` long tensor of token ids, ``data[start : start + L]``.
        targets: ``(L, B)`` long tensor, the next tokens, ``data[start + 1 : start + 1 + L]``.
        seq_len: ``L``, the window length (equals ``inputs.size(0)``).
        bptt: the nominal window length of the data module; AWD-LSTM scales the learning
            rate by ``seq_len / bptt``.
        start: time offset of the window in its streams; ``0`` starts a new pass over the
            data, where the carried hidden state should be reset.

    Example:
        >>> batch = LMBatch(torch.zeros(3, 2, dtype=torch.long), torch.ones(3, 2), 3, 3, 0)
        >>> inputs, targets, *_ = batch
        >>> inputs.shape
        torch.Size([3, 2])
    """

    inputs: Tensor
    targets: Tensor
    seq_len: int
    bptt: int
    start: int


def batchify(ids: Tensor, batch_size: int, *, rank: int = 0, world_size: int = 1) -> Tensor:
    """Cut a 1-D token stream into ``batch_size`` contiguous streams, shape ``(T, B)``.

    With ``world_size = W`` the stream is cut into ``W * batch_size`` streams and rank
    ``rank`` gets streams ``[rank * B, (rank + 1) * B)``, so ranks never share a token.
    ``T = N // (W * B)``; the last ``N mod (W * B)`` tokens are dropped.

    Example:
        >>> batchify(torch.arange(10), 3)
        tensor([[0, 3, 6],
                [1, 4, 7],
                [2, 5, 8]])
        >>> batchify(torch.arange(10), 2, rank=1, world_size=2)
        tensor([[4, 6],
                [5, 7]])
    """
    if ids.dim() != 1:
        raise ValueError(f"batchify takes a 1-D token stream, got shape {tuple(ids.shape)}")
    check_positive_ints("batchify", batch_size=batch_size, world_size=world_size)
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    streams = batch_size * world_size
    steps = ids.numel() // streams
    data = ids[: steps * streams].view(streams, steps).t()
    return data[:, rank * batch_size : (rank + 1) * batch_size].contiguous()


def bptt_windows(num_steps: int, bptt: int) -> list[tuple[int, int]]:
    """Fixed windows ``(start, length)`` over ``num_steps`` time steps; the last may be shorter.

    Windows tile ``[0, num_steps - 1)`` so that every step but the last is an input once and
    every step but the first a target once.

    Example:
        >>> bptt_windows(8, 3)
        [(0, 3), (3, 3), (6, 1)]
    """
    check_positive_int("bptt_windows", "bptt", bptt)
    return [(i, min(bptt, num_steps - 1 - i)) for i in range(0, num_steps - 1, bptt)]


def variable_bptt_windows(
    num_steps: int,
    bptt: int,
    generator: torch.Generator,
    *,
    p_full: float = 0.95,
    std: float = 5.0,
    min_len: int = 5,
) -> list[tuple[int, int]]:
    """Windows ``(start, length)`` of random length, as in AWD-LSTM (Merity et al. 2017).

    For each window: ``base = bptt`` with probability ``p_full`` else ``bptt / 2``;
    ``length = max(min_len, round(N(base, std)))``, capped so it never runs past the data.
    The draws come only from ``generator``, so a seeded generator gives the same windows on
    every rank.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> windows = variable_bptt_windows(1000, 70, g)
        >>> sum(length for _, length in windows)
        999
    """
    check_positive_int("variable_bptt_windows", "bptt", bptt)
    windows: list[tuple[int, int]] = []
    start = 0
    while start < num_steps - 1:
        full = torch.rand((), generator=generator).item() < p_full
        base = float(bptt) if full else bptt / 2
        drawn = base + std * torch.randn((), generator=generator).item()
        length = min(max(min_len, round(drawn)), num_steps - 1 - start)
        windows.append((start, length))
        start += length
    return windows


class BPTTStreams(Dataset[LMBatch]):
    """The ``(T, B)`` streams of one split, indexed by window.

    ``dataset[(start, length)]`` is the :class:`LMBatch` of that window; ``dataset[i]`` is
    the ``i``-th fixed window of :func:`bptt_windows` and ``len(dataset)`` their number.
    Windows are copies, so worker processes never share the whole stream.

    Example:
        >>> streams = BPTTStreams(batchify(torch.arange(20), 2), bptt=4)
        >>> streams[(0, 4)].inputs.shape, len(streams)
        (torch.Size([4, 2]), 3)
    """

    def __init__(self, streams: Tensor, bptt: int) -> None:
        if streams.dim() != 2:
            raise ValueError(f"streams must be (T, B), got shape {tuple(streams.shape)}")
        check_positive_int(type(self).__name__, "bptt", bptt)
        self.streams = streams
        self.bptt = bptt
        self._windows = bptt_windows(streams.size(0), bptt)

    @property
    def num_steps(self) -> int:
        """``T``, the length of each stream."""
        return self.streams.size(0)

    def __len__(self) -> int:
        return len(self._windows)

    def __getitem__(self, key: int | tuple[int, int]) -> LMBatch:
        start, length = key if isinstance(key, tuple) else self._windows[key]
        if start < 0 or length < 1 or start + length > self.num_steps - 1:
            raise IndexError(f"window ({start}, {length}) outside streams of {self.num_steps}")
        inputs = self.streams[start : start + length].clone()
        targets = self.streams[start + 1 : start + 1 + length].clone()
        return LMBatch(inputs, targets, length, self.bptt, start)


class BPTTSampler(ResumableSampler, DistributedSampler):
    """Yields the fixed windows ``(start, bptt)`` of a :class:`BPTTStreams`, in order.

    It subclasses :class:`~torch.utils.data.DistributedSampler` because the data is already
    split across ranks (each rank holds its own streams, see :func:`batchify`): Lightning
    then keeps it instead of injecting a sampler that would shuffle windows or deal them out
    across ranks, and calls :meth:`set_epoch` at every epoch, as for any distributed sampler.

    Example:
        >>> streams = BPTTStreams(batchify(torch.arange(20), 2), bptt=4)
        >>> list(BPTTSampler(streams))
        [(0, 4), (4, 4), (8, 1)]
    """

    def __init__(self, dataset: BPTTStreams, seed: int = 0) -> None:
        super().__init__(dataset, num_replicas=1, rank=0, shuffle=False, seed=seed)
        self.streams = dataset

    def windows(self) -> list[tuple[int, int]]:
        """The windows of the current epoch."""
        return bptt_windows(self.streams.num_steps, self.streams.bptt)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        # a generator: the windows are drawn at the first one, after ``set_epoch``
        yield from self._resumed(self.windows())

    def __len__(self) -> int:
        return len(self.windows())


class VariableBPTTSampler(BPTTSampler):
    """Yields AWD-LSTM's random-length windows (:func:`variable_bptt_windows`), in order.

    The lengths are drawn from a generator seeded with ``seed + epoch``: the same on every
    rank, new each epoch (call :meth:`set_epoch`, as Lightning does). The number of windows
    changes from epoch to epoch, so the sampler has no length (``len()`` raises
    ``TypeError``); Lightning then ends each epoch when the windows run out.

    Example:
        >>> sampler = VariableBPTTSampler(BPTTStreams(batchify(torch.arange(900), 2), 70))
        >>> sampler.set_epoch(1)
        >>> sum(length for _, length in sampler)
        449
    """

    def windows(self) -> list[tuple[int, int]]:
        """The windows of the current epoch (deterministic in ``seed + epoch``)."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return variable_bptt_windows(self.streams.num_steps, self.streams.bptt, generator)

    def __len__(self) -> int:
        raise TypeError("VariableBPTTSampler has no fixed length: it varies with the epoch")
