"""The CLI parses and instantiates every shipped recipe, so no config rots."""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest

import lightning_rnn_reg as lrr
from lightning_rnn_reg.callbacks.last_checkpoint import LastCheckpoint
from lightning_rnn_reg.cli import build_cli, main
from lightning_rnn_reg.tasks.base import LINKED_SIZES

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "examples" / "configs").glob("*.yaml"))
SHARED = Path(os.environ.get("LRR_DATA", REPO.parent / "shared" / "data"))


def test_there_are_recipes():
    assert len(CONFIGS) >= 10


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_recipe_parses(config, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    assert "class_path" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore::lightning_rnn_reg.data.sentiment.SentimentDataWarning")
@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_recipe_instantiates_model_and_data(config, monkeypatch, tmp_path):
    if not SHARED.is_dir():
        pytest.skip(f"benchmark data not found at {SHARED}")
    monkeypatch.setenv("LRR_DATA", str(SHARED))
    monkeypatch.chdir(tmp_path)
    cli = build_cli(["--config", str(config), "--trainer.logger", "false"], run=False)
    assert isinstance(cli.model, lrr.RecurrentTask)
    assert cli.model.hparams["vocab_size"] == cli.datamodule.vocab_size
    assert len(cli.model.regularizers) == len(cli.model.hparams["regularizers"])
    # every recipe keeps a resumable last.ckpt (--ckpt_path last)
    assert [type(c) for c in cli.trainer.callbacks].count(LastCheckpoint) == 1
    # every data size the model takes is linked; sizes it does not take never reach its
    # hyperparameters (a checkpoint re-parsed by `test --ckpt_path` would fail on them)
    accepted = inspect.signature(type(cli.model).__init__).parameters
    for name in LINKED_SIZES:
        if name in accepted:
            assert cli.model.hparams[name] == getattr(cli.datamodule, name)
        else:
            assert name not in cli.model.hparams


def test_console_script_exits_zero_after_a_short_fit(tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "lightning_rnn_reg", "fit", "--config",
         str(REPO / "examples" / "configs" / "quickstart.yaml"), "--trainer.max_epochs", "1",
         "--trainer.limit_train_batches", "2",
         "--trainer.limit_val_batches", "2", "--trainer.enable_progress_bar", "false",
         "--trainer.log_every_n_steps", "1",
         "--trainer.default_root_dir", str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    events = list(tmp_path.rglob("events.out.tfevents.*"))
    assert events, "no TensorBoard event file written"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = set()
    for event_file in events:
        accumulator = EventAccumulator(str(event_file))
        accumulator.Reload()
        tags |= set(accumulator.Tags()["scalars"])
    expected = {"train/loss", "train/ce", "train/ppl", "train/ar", "train/tar", "lr", "grad_norm",
                "val/loss", "val/ppl", "reg/0_EmbeddingDropout/p", "reg/4_WeightDrop/p",
                "reg/5_ActivationRegularization/alpha"}
    assert expected <= tags, expected - tags
