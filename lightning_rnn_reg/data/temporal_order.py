"""TemporalOrder: Hochreiter & Schmidhuber's (1997) temporal order task, as Semeniuta et al.
(2016) use it to show which recurrent dropouts lose long-term memory.

A sequence of ``length`` symbols drawn uniformly from the distractors ``{C, D}`` carries two
markers from ``{A, B}``: the first at a position in the first third of the sequence, the
second in the second third. The class is the order of the markers, ``AA``, ``AB``, ``BA``
or ``BB`` (``class = 2 * [first is B] + [second is B]``), so a model must remember the first
marker across at least ``length / 3`` steps of noise. Semeniuta's code draws a fixed
training set of 200 batches of 32 once and tests on 10,000 sequences (PAPERS.md).
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor
from torch.utils.data import Dataset

from lightning_rnn_reg.data.sentiment import ClassificationBatch, collate_examples
from lightning_rnn_reg.data.split_module import SplitDataModule
from lightning_rnn_reg.data.vocab import UNK, Vocabulary
from lightning_rnn_reg.validation import check_positive_ints

__all__ = ["TEMPORAL_ORDER_CLASSES", "TemporalOrder", "temporal_order_sequences"]

TEMPORAL_ORDER_CLASSES = ("AA", "AB", "BA", "BB")
_MARKERS = ("A", "B")
_SPLIT_INDEX = {"train": 0, "valid": 1, "test": 2}


def temporal_order_sequences(
    count: int,
    length: int,
    first: tuple[int, int],
    second: tuple[int, int],
    num_distractors: int = 2,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """``count`` sequences of the temporal order task with exactly balanced classes.

    Symbols are coded ``0 = A``, ``1 = B``, ``2..`` = the distractors (``C``, ``D``, ...).
    Labels cycle through the four classes and are then shuffled, so each class holds
    ``count // 4`` or one more sequences. Marker positions are uniform in the half-open
    ranges ``first = [lo, hi)`` and ``second = [lo, hi)``.

    Returns:
        ``(symbols (count, length) long, labels (count,) long, positions (count, 2) long)``.
    """
    labels = torch.arange(count) % len(TEMPORAL_ORDER_CLASSES)
    labels = labels[torch.randperm(count, generator=generator)]
    symbols = 2 + torch.randint(num_distractors, (count, length), generator=generator)
    positions = torch.stack([
        torch.randint(lo, hi, (count,), generator=generator) for lo, hi in (first, second)], 1)
    rows = torch.arange(count)
    symbols[rows, positions[:, 0]] = labels // 2
    symbols[rows, positions[:, 1]] = labels % 2
    return symbols, labels, positions


class _Sequences(Dataset[tuple[Tensor, int]]):
    """One split: symbol ids (shifted past ``<unk>``) and class index per sequence."""

    def __init__(self, ids: Tensor, labels: Tensor, positions: Tensor) -> None:
        self.ids, self.labels, self.positions = ids, labels, positions

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return self.ids[index], int(self.labels[index])


class TemporalOrder(SplitDataModule):
    """The temporal order task (Hochreiter & Schmidhuber 1997; Semeniuta et al. 2016) as
    :class:`~lightning_rnn_reg.data.sentiment.ClassificationBatch`es of symbol ids for
    :class:`~lightning_rnn_reg.tasks.classifier.SequenceClassifier`.

    Every split is generated from ``seed`` alone (each split from its own generator, so
    changing one size leaves the other splits unchanged): ``train_batches * batch_size``
    training sequences drawn once (Semeniuta: 200 batches of 32 = 6,400), ``valid_size``
    validation and ``test_size`` test sequences (Semeniuta: 10,000), classes exactly
    balanced in each split. Lengths used by Semeniuta 2016: 15 ("short") and 30 ("medium").

    Vocabulary: ``<unk>`` (never produced), ``A``, ``B``, then ``num_distractors`` distractor
    symbols ``C``, ``D``, ... (2 by default, the binary random sequence of Semeniuta's code).
    Real-valued distractors are not offered: the classifier reads symbol ids.

    Args:
        length: symbols per sequence (>= 3).
        first: half-open position range ``[lo, hi)`` of the first marker; default the first
            third ``[0, length // 3)``.
        second: range of the second marker; default the second third
            ``[length // 3, 2 * length // 3)``. Must lie after ``first``.
        num_distractors: distractor symbols (1..24).
        train_batches, batch_size: the fixed training set's size in batches.
        valid_size, test_size: sequences in the validation and test splits.
        eval_batch_size: batch size of validation and test.
        seed: the seed of every split.
        num_workers: DataLoader workers.

    Example::

        data = TemporalOrder(length=30, seed=1)
        model = lrr.SequenceClassifier(data.vocab_size, data.num_classes, bidirectional=False)
        lightning.Trainer(max_epochs=20).fit(model, data)
    """

    def __init__(
        self,
        length: int = 30,
        first: tuple[int, int] | None = None,
        second: tuple[int, int] | None = None,
        num_distractors: int = 2,
        train_batches: int = 200,
        batch_size: int = 32,
        valid_size: int = 1000,
        test_size: int = 10000,
        eval_batch_size: int = 500,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if length < 3:
            raise ValueError(f"{name}: length must be >= 3, got {length}")
        # re-bound, not renamed: save_hyperparameters below records these values; a given
        # range of another length fails the unpacking check below
        first = (0, length // 3) if first is None else cast("tuple[int, int]", tuple(first))
        second = ((length // 3, 2 * length // 3) if second is None
                  else cast("tuple[int, int]", tuple(second)))
        for arg, (lo, hi) in (("first", first), ("second", second)):
            if not 0 <= lo < hi <= length:
                raise ValueError(f"{name}: {arg}=[{lo}, {hi}) must be a non-empty position "
                                 f"range inside [0, {length})")
        if first[1] > second[0]:
            raise ValueError(f"{name}: the first marker's range {list(first)} must end before "
                             f"the second's {list(second)} starts")
        if not 1 <= num_distractors <= 24:
            raise ValueError(f"{name}: num_distractors must be in 1..24, got {num_distractors}")
        check_positive_ints(name, train_batches=train_batches, batch_size=batch_size,
                            valid_size=valid_size, test_size=test_size,
                            eval_batch_size=eval_batch_size)
        self.save_hyperparameters()
        self.length, self.first, self.second = length, first, second
        self.num_distractors = num_distractors
        self.sizes = {"train": train_batches * batch_size, "valid": valid_size, "test": test_size}
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.seed, self.num_workers = seed, num_workers
        distractors = [chr(ord("C") + i) for i in range(num_distractors)]
        self.vocab = Vocabulary([UNK, *_MARKERS, *distractors])
        self.class_names = list(TEMPORAL_ORDER_CLASSES)
        self._splits: dict[str, _Sequences] = {}

    @property
    def vocab_size(self) -> int:
        """Symbols including ``<unk>``: ``3 + num_distractors``."""
        return len(self.vocab)

    @property
    def num_classes(self) -> int:
        """Four: ``AA``, ``AB``, ``BA``, ``BB``."""
        return len(TEMPORAL_ORDER_CLASSES)

    def dataset(self, split: str) -> _Sequences:
        """The generated sequences of ``split`` (``"train"``, ``"valid"`` or ``"test"``)."""
        if split not in _SPLIT_INDEX:
            raise ValueError(f"unknown split {split!r}; expected one of {list(_SPLIT_INDEX)}")
        if split not in self._splits:
            generator = torch.Generator().manual_seed(self.seed * 3 + _SPLIT_INDEX[split])
            symbols, labels, positions = temporal_order_sequences(
                self.sizes[split], self.length, self.first, self.second, self.num_distractors,
                generator)
            self._splits[split] = _Sequences(symbols + 1, labels, positions)  # past <unk> = 0
        return self._splits[split]

    # -------------------------------------------------------------------- lightning hooks
    def split_dataset(self, split: str) -> tuple[_Sequences, list[int]]:
        dataset = self.dataset(split)
        return dataset, [self.length] * len(dataset)

    def collate(self, items: list[tuple[Tensor, int]]) -> ClassificationBatch:
        return collate_examples(items, pad_index=self.vocab.unk_index)

    def state_dict(self) -> dict[str, Any]:
        """Vocabulary, class names and the training position as plain data (for
        checkpoints)."""
        return {"vocab": self.vocab.to_state(), "class_names": list(self.class_names),
                **self.position_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Adopt a checkpoint's training position (the data itself is regenerated)."""
        self.load_position_state(state_dict)
