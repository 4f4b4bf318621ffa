"""``last.ckpt`` that a run can always resume from: at every epoch end, every N optimizer
steps, and on Ctrl-C at the next step boundary.

Resuming mid-epoch is exact when the checkpoint is written at a step boundary (the data
position, carried state, optimizer and mask generator state are all at that step). A
``KeyboardInterrupt`` can arrive anywhere, e.g. between ``optimizer.step()`` and the step
counter, so a save from ``on_exception`` could describe a half-done step. This callback
therefore turns the first SIGINT of a fit into a request: the step in flight finishes, then
``last.ckpt`` is written at ``on_train_batch_end`` and the fit stops as Lightning stops on
Ctrl-C (``on_exception`` hooks, exit status 1). A second Ctrl-C interrupts at once, as
without this callback; the last step-boundary ``last.ckpt`` stays on disk.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_info
from typing_extensions import override

#: The interrupt request that stops a fit after it saved ``last.ckpt``.
INTERRUPT_MESSAGE = "interrupted (Ctrl-C): last.ckpt saved at the end of step {step}"


class LastCheckpoint(ModelCheckpoint):
    """Keep ``last.ckpt`` current: after every epoch, every ``every_n_train_steps`` optimizer
    steps, and at the first step boundary after Ctrl-C (then the fit stops).

    A ``ModelCheckpoint`` with ``save_last=True`` and ``save_top_k=0`` (it keeps no other
    file; add your own ``ModelCheckpoint(monitor=...)`` for the best model), so
    ``Trainer.fit(ckpt_path="last")`` finds it in the checkpoint folder, and
    ``lightning-rnn-reg fit --ckpt_path last`` finds the newest one of earlier runs.

    Args:
        every_n_train_steps: also save every this many optimizer steps (long epochs lose at
            most that many steps to a crash); ``0`` saves at epoch ends only.
        dirpath: the folder (default: the logger's ``version_N/checkpoints``, as
            ``ModelCheckpoint``).
        save_on_interrupt: catch the first SIGINT (main thread only) and save at the next
            step boundary before stopping.

    Example::

        trainer = L.Trainer(callbacks=[LastCheckpoint(every_n_train_steps=200)])
        trainer.fit(model, datamodule=data)            # Ctrl-C: last.ckpt, then exit 1
        trainer.fit(model, datamodule=data, ckpt_path="last")
    """

    def __init__(self, every_n_train_steps: int = 500, dirpath: str | None = None,
                 save_on_interrupt: bool = True) -> None:
        if isinstance(every_n_train_steps, bool) or not isinstance(every_n_train_steps, int) \
                or every_n_train_steps < 0:
            raise ValueError("LastCheckpoint: every_n_train_steps must be an int >= 0, got "
                             f"{every_n_train_steps!r}")
        super().__init__(dirpath=dirpath, save_last=True, save_top_k=0, every_n_epochs=1)
        self.every_n_steps = every_n_train_steps
        self.save_on_interrupt = save_on_interrupt
        self._interrupted = False
        self._previous_handler: Any = None

    @property
    @override
    def state_key(self) -> str:
        return self._generate_state_key(every_n_train_steps=self.every_n_steps, last=True)

    def last_path(self) -> str:
        """Where ``last.ckpt`` goes (the folder is known from ``setup`` on)."""
        if self.dirpath is None:
            raise RuntimeError("LastCheckpoint: the checkpoint folder is set at setup")
        return os.path.join(self.dirpath, self.CHECKPOINT_NAME_LAST + self.FILE_EXTENSION)

    # --------------------------------------------------------------------- Ctrl-C
    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        if self._interrupted:  # second Ctrl-C: stop now
            self._restore_handler()
            raise KeyboardInterrupt
        self._interrupted = True
        rank_zero_info("\nCtrl-C: finishing this step, saving last.ckpt, then stopping "
                       "(press Ctrl-C again to stop at once)")

    def _restore_handler(self) -> None:
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)
            self._previous_handler = None

    @override
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._interrupted = False
        if self.save_on_interrupt and threading.current_thread() is threading.main_thread():
            self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)

    @override
    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore_handler()
        super().on_train_end(trainer, pl_module)

    @override
    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule,
                     exception: BaseException) -> None:
        self._restore_handler()

    @override
    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore_handler()

    # ---------------------------------------------------------------------- saving
    @override
    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        interrupted = self._interrupted
        if self.save_on_interrupt and trainer.world_size > 1:  # all ranks stop at one step
            interrupted = trainer.strategy.reduce_boolean_decision(interrupted, all=False)
        step = trainer.global_step
        due = self.every_n_steps > 0 and step > 0 and step % self.every_n_steps == 0
        if (due or interrupted) and not trainer.sanity_checking:
            trainer.save_checkpoint(self.last_path())
            self.last_model_path = self.last_path()
        if interrupted:
            raise KeyboardInterrupt(INTERRUPT_MESSAGE.format(step=step))
