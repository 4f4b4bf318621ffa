"""A training run for the resume tests, run as a real subprocess.

    python resume_child.py TASK DATA_DIR OUT_DIR [--kill-at STEP | --resume CKPT]

Trains TASK (``lm``: a language model with variable BPTT, carried state, embedding /
locked / weight / update dropout, AR/TAR and a curriculum schedule; ``classifier``: a
sequence classifier on Temporal Order with recurrent dropout and a rate schedule) for 2
epochs, checkpointing after every training step. ``--kill-at`` SIGKILLs the process at the
start of that optimizer step (its checkpoint of the previous step is on disk); ``--resume``
continues from a checkpoint. The final weights go to ``OUT_DIR/final.pt`` and the steps of
each epoch to ``OUT_DIR/steps.txt``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

import lightning_rnn_reg as lrr
from lightning_rnn_reg.data import TemporalOrder, TextCorpus


class KillAt(Callback):
    """SIGKILL this process when the trainer is about to run optimizer step ``step``."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class StepsPerEpoch(Callback):
    def __init__(self, path: Path) -> None:
        self.path = path

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        with self.path.open("a") as f:
            f.write(f"{trainer.current_epoch} {trainer.global_step}\n")


def build(task: str, data_dir: str) -> tuple[L.LightningModule, L.LightningDataModule, list]:
    if task == "lm":
        data = TextCorpus(data_dir, batch_size=4, eval_batch_size=4, bptt=8,
                          variable_bptt=True, seed=3)
        model = lrr.LanguageModel(
            data.vocab_size, embedding_dim=16, hidden_size=16, num_layers=2, lr=5.0,
            regularizers=[lrr.EmbeddingDropout(0.1), lrr.LockedDropout(0.3, at="input"),
                          lrr.WeightDrop(0.3), lrr.UpdateDropout(0.2),
                          lrr.LockedDropout(0.3, at="output"),
                          lrr.ActivationRegularization(1.0),
                          lrr.TemporalActivationRegularization(1.0)])
        return model, data, [lrr.CurriculumDropout(gamma=0.05)]
    data = TemporalOrder(length=9, train_batches=12, batch_size=8, valid_size=40,
                         test_size=40, seed=3)
    model = lrr.SequenceClassifier(data.vocab_size, data.num_classes, embedding_dim=8,
                                   hidden_size=12, bidirectional=False, lr=0.01,
                                   regularizers=[lrr.RecurrentDropout(0.3),
                                                 lrr.LockedDropout(0.2, at="output")])
    schedule = lrr.RateSchedule(schedule="linear", targets=[lrr.RecurrentDropout], start=0.0,
                                steps=20)
    return model, data, [schedule]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("task", choices=["lm", "classifier"])
    parser.add_argument("data_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--kill-at", type=int)
    parser.add_argument("--resume")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out_dir)
    L.seed_everything(7, verbose=False)
    model, data, callbacks = build(args.task, args.data_dir)
    callbacks += [ModelCheckpoint(dirpath=out / "ckpt", filename="{step}", save_top_k=-1,
                                  every_n_train_steps=1), StepsPerEpoch(out / "steps.txt")]
    if args.kill_at is not None:
        callbacks.append(KillAt(args.kill_at))
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=False,
                        callbacks=callbacks, enable_progress_bar=False,
                        enable_model_summary=False, gradient_clip_val=1.0,
                        val_check_interval=5, check_val_every_n_epoch=1)
    trainer.fit(model, data, ckpt_path=args.resume)
    torch.save(model.state_dict(), out / "final.pt")
    sys.exit(0)


if __name__ == "__main__":
    main()
