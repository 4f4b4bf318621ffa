"""Mid-epoch resume of the training data: the position counted, saved and skipped to.

A data module with :class:`TrainPosition` counts the training batches the model has used
in the current epoch (its ``on_before_batch_transfer`` hook sees each batch right before
``training_step``, after any prefetching), saves ``(epoch, batches)`` in Lightning
checkpoints through its ``state_dict``, and after a restore hands that position to the
training sampler (a :class:`ResumableSampler`), which then skips those batches of that epoch
only. With the samplers' orders deterministic in ``seed + epoch``, a run resumed from a
checkpoint taken after batch ``k`` continues with batch ``k + 1`` of the same epoch, the one
an uninterrupted run would have used next.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

__all__ = ["ResumableSampler", "TrainPosition"]

T = TypeVar("T")


class ResumableSampler:
    """Mixin for a sampler of whole batches with ``epoch`` (a ``DistributedSampler``): after
    :meth:`resume_at`, the epoch's first iteration skips the batches already used."""

    epoch: int
    _resume: tuple[int, int] | None = None

    def resume_at(self, epoch: int, batches: int) -> None:
        """Skip the first ``batches`` batches the next time epoch ``epoch`` is iterated."""
        if batches < 0:
            raise ValueError(f"batches to skip must be >= 0, got {batches}")
        self._resume = (epoch, batches)

    def _resumed(self, batches: Sequence[T]) -> Sequence[T]:
        """``batches`` of this epoch, without those a resumed run has already used."""
        resume, self._resume = self._resume, None
        if resume is not None and resume[0] == self.epoch:
            return batches[resume[1]:]
        return batches


class TrainPosition:
    """Mixin for a ``LightningDataModule``: counts used training batches per epoch and
    prepares the training sampler of a resumed run (see the module docstring).

    Subclasses add :meth:`position_state` to their ``state_dict``, call
    :meth:`load_position_state` from their ``load_state_dict`` and pass their training
    sampler through :meth:`prepare_train_sampler`.
    """

    trainer: Any
    _position: tuple[int, int] = (-1, 0)
    _resume_position: tuple[int, int] | None = None

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Count a training batch (Lightning calls this for every batch a step uses)."""
        trainer = self.trainer
        if trainer is not None and trainer.training:
            epoch, used = self._position
            self._position = (trainer.current_epoch, (used if epoch == trainer.current_epoch
                                                      else 0) + 1)
        return batch

    def position_state(self) -> dict[str, Any]:
        """``{"train_position": {"epoch": e, "batches": k}}``: ``k`` training batches of
        epoch ``e`` used so far (plain data for checkpoints)."""
        epoch, used = self._position
        return {"train_position": {"epoch": epoch, "batches": used}}

    def load_position_state(self, state: dict[str, Any]) -> None:
        """Take the position of a checkpoint's ``state_dict`` (if it has one)."""
        position = state.get("train_position")
        if position is not None:
            self._resume_position = (int(position["epoch"]), int(position["batches"]))
            self._position = self._resume_position

    def prepare_train_sampler(self, sampler: Any) -> Any:
        """Set ``sampler`` to the trainer's current epoch (Lightning sets it only after the
        first batch of a resumed run is fetched) and, once after a restore, to skip the
        batches the checkpointed run had used."""
        epoch = getattr(getattr(self, "trainer", None), "current_epoch", None)
        if epoch is not None:
            sampler.set_epoch(epoch)
        if self._resume_position is not None:
            sampler.resume_at(*self._resume_position)
            self._resume_position = None
        return sampler
