"""SplitDataModule: the Lightning hooks every train / valid / test data module here shares."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any, ClassVar, cast

import lightning as L
from torch.utils.data import DataLoader, Dataset

from lightning_rnn_reg.data.batching import bucket_loader
from lightning_rnn_reg.data.resume import TrainPosition

__all__ = ["FileSplitDataModule", "SplitDataModule"]


class SplitDataModule(TrainPosition, L.LightningDataModule):
    """A data module over three files (``"train"``, ``"valid"``, ``"test"``) of examples.

    Subclasses implement :meth:`split_dataset` (the encoded split and each example's length)
    and :meth:`collate`, and set ``batch_size``, ``eval_batch_size``, ``seed`` and
    ``num_workers``. :meth:`setup` reads the splits a stage needs; training batches are
    length-bucketed and shuffled with the same number of batches on every rank, evaluation
    batches sorted by length with each example on exactly one rank (:func:`bucket_loader`);
    ``predict`` reads the test file in file order. Subclasses' ``state_dict`` include
    :meth:`position_state` and their ``load_state_dict`` call :meth:`load_position_state`.
    """

    STAGE_SPLITS: ClassVar[dict[str | None, tuple[str, ...]]] = {
        "fit": ("train", "valid"), "validate": ("valid",), "test": ("test",),
        "predict": ("test",), None: ("train", "valid", "test"),
    }
    batch_size: int
    eval_batch_size: int
    seed: int
    num_workers: int

    def split_dataset(self, split: str) -> tuple[Dataset[Any] | Sequence[Any], Sequence[int]]:
        """``(dataset, lengths)`` of ``split``, read and encoded once (cached)."""
        raise NotImplementedError

    def collate(self, items: list[Any]) -> Any:
        """Pad a list of examples into one batch."""
        raise NotImplementedError

    def has_split(self, split: str) -> bool:
        """Whether the data has ``split`` (file-based modules have all three; an in-memory
        one built without ``test`` has no test split).

        Example::

            SentimentDataModule.from_examples(train, valid).has_split("test")   # False
        """
        return True

    def setup(self, stage: str | None = None) -> None:
        """Read and encode the splits that ``stage`` needs (``None``: every split the data
        has)."""
        if stage not in self.STAGE_SPLITS:
            raise ValueError(f"unknown stage {stage!r}; expected one of {list(self.STAGE_SPLITS)}")
        for split in self.STAGE_SPLITS[stage]:
            if stage is not None or self.has_split(split):
                self.split_dataset(split)

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader[Any]:
        dataset, lengths = self.split_dataset(split)
        return bucket_loader(self, _map_style(dataset), lengths, batch_size, shuffle=shuffle,
                             seed=self.seed, collate_fn=self.collate,
                             num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader[Any]:
        """Length-bucketed, shuffled batches; every rank takes the same number of steps; a
        resumed run continues at the checkpoint's batch (:class:`TrainPosition`)."""
        loader = self._loader("train", self.batch_size, shuffle=True)
        self.prepare_train_sampler(loader.sampler)
        return loader

    def val_dataloader(self) -> DataLoader[Any]:
        """Validation batches sorted by length; each example on exactly one rank."""
        return self._loader("valid", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader[Any]:
        """Test batches sorted by length; each example on exactly one rank."""
        return self._loader("test", self.eval_batch_size, shuffle=False)

    def predict_dataloader(self) -> DataLoader[Any]:
        """The test examples in file order (no sampler: Lightning splits them under DDP)."""
        return DataLoader(_map_style(self.split_dataset("test")[0]),
                          batch_size=self.eval_batch_size,
                          collate_fn=self.collate, num_workers=self.num_workers)


class FileSplitDataModule(SplitDataModule):
    """A :class:`SplitDataModule` whose splits are files ``data_dir / files[split]``, or are
    held in memory (built by the classmethod named :attr:`IN_MEMORY_FROM`), with a vocabulary
    saved in checkpoints under :attr:`VOCABULARY_KEY`.

    Subclasses set ``data_dir`` and ``files`` and implement :meth:`in_memory_splits` and
    :meth:`adopt_vocabulary`.
    """

    #: The classmethod that builds the module from data held in memory (messages name it).
    IN_MEMORY_FROM: ClassVar[str]
    #: The ``state_dict`` key of the vocabulary.
    VOCABULARY_KEY: ClassVar[str]
    #: Constructor arguments about files, which the :attr:`IN_MEMORY_FROM` classmethod does
    #: not take.
    FILE_OPTIONS: ClassVar[tuple[str, ...]]
    data_dir: Path
    files: dict[str, str]

    @classmethod
    def _in_memory_name(cls, options: Collection[str], instead: str) -> str:
        """``"<Class>.<IN_MEMORY_FROM>"``, for messages; ``TypeError`` (saying what is given
        ``instead`` of files) if ``options`` name one of :attr:`FILE_OPTIONS`."""
        name = f"{cls.__name__}.{cls.IN_MEMORY_FROM}"
        given = sorted(set(options) & set(cls.FILE_OPTIONS))
        if given:
            raise TypeError(f"{name}: {given} are options of {instead}")
        return name

    def in_memory_splits(self) -> Collection[str] | None:
        """The splits held in memory; ``None``: the data is in files."""
        raise NotImplementedError

    def adopt_vocabulary(self, state: Any) -> None:
        """Use the vocabulary saved as ``state`` (re-encoding the splits if it differs)."""
        raise NotImplementedError

    def has_split(self, split: str) -> bool:
        """Whether the data has ``split`` (in memory: the splits given to
        :attr:`IN_MEMORY_FROM`; files: all three)."""
        splits = self.in_memory_splits()
        return splits is None or split in splits

    def path(self, split: str) -> Path:
        """The file of ``split`` (``"train"``, ``"valid"`` or ``"test"``)."""
        if split not in self.files:
            raise ValueError(f"unknown split {split!r}; expected one of {list(self.files)}")
        if self.in_memory_splits() is not None:
            raise ValueError(f"{type(self).__name__}: the data is in memory "
                             f"({self.IN_MEMORY_FROM}), it has no files")
        return self.data_dir / self.files[split]

    def _where(self, split: str) -> str | Path:
        """How messages name ``split``: its file, or the in-memory split."""
        if self.in_memory_splits() is not None:
            return f"{type(self).__name__}.{self.IN_MEMORY_FROM}: {split}"
        return self.path(split)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Adopt a checkpoint's training position and vocabulary (re-encoding the splits if it
        differs)."""
        self.load_position_state(state_dict)
        if self.VOCABULARY_KEY in state_dict:
            self.adopt_vocabulary(state_dict[self.VOCABULARY_KEY])


def _map_style(data: Dataset[Any] | Sequence[Any]) -> Dataset[Any]:
    # torch's stubs want a Dataset, but a DataLoader takes any map-style dataset (one with
    # __getitem__ and __len__), e.g. a list of encoded examples
    return cast("Dataset[Any]", data)
