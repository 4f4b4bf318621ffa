"""CurriculumDropout from YAML: the shipped recipe (gamma chosen with the helper), and every
callback configured with class names / strings as LightningCLI does."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import pytest
import yaml
from jsonargparse import ArgumentParser

from lightning_rnn_reg.callbacks import (
    Cosine,
    CurriculumDropout,
    RateSchedule,
    RegularizerMonitor,
    Step,
    curriculum_gamma,
)

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "examples" / "configs" / "curriculum.yaml"
SHARED = Path(os.environ.get("LRR_DATA", REPO.parent / "shared" / "data"))
PTB_STEPS_PER_EPOCH = 1328  # stated in the recipe's header; checked against the data below
CONSTANT_LR_EPOCHS = 6


def _recipe() -> dict:
    return yaml.safe_load(RECIPE.read_text())


def test_recipe_gamma_reaches_99_percent_when_the_constant_lr_phase_ends():
    config = _recipe()
    callbacks = config["trainer"]["callbacks"]
    curriculum = next(c for c in callbacks if c["class_path"].endswith("CurriculumDropout"))
    epochs = config["trainer"]["max_epochs"]
    assert config["model"]["init_args"]["lr_decay_start"] == CONSTANT_LR_EPOCHS
    expected = curriculum_gamma(fraction=CONSTANT_LR_EPOCHS / epochs,
                                total_steps=epochs * PTB_STEPS_PER_EPOCH)
    assert curriculum["init_args"]["gamma"] == pytest.approx(expected, rel=1e-12)
    assert "targets" not in curriculum["init_args"]  # every dropout of the model
    rates = [reg["init_args"]["p"] for reg in config["model"]["init_args"]["regularizers"]]
    assert rates == [0.5, 0.5, 0.5]


def test_recipe_steps_per_epoch_is_what_the_ptb_data_gives():
    if not (SHARED / "ptb").is_dir():
        pytest.skip(f"PTB not found under {SHARED}")
    from lightning_rnn_reg.data import PennTreebank

    args = _recipe()["data"]["init_args"]
    data = PennTreebank(str(SHARED / "ptb"), **args)
    data.setup("fit")
    assert len(data.train_dataloader()) == PTB_STEPS_PER_EPOCH


CALLBACKS_YAML = """
callbacks:
  - class_path: lightning_rnn_reg.callbacks.CurriculumDropout
    init_args: {gamma: 0.001, targets: [LockedDropout, "WeightDrop:p"]}
  - class_path: lightning_rnn_reg.callbacks.RateSchedule
    init_args: {schedule: cosine, targets: 0_EmbeddingDropout, start: final, end: 0.0,
                steps: 100}
  - class_path: lightning_rnn_reg.callbacks.RateSchedule
    init_args: {schedule: step, targets: Zoneout, milestones: [10, 20]}
  - class_path: lightning_rnn_reg.callbacks.RegularizerMonitor
    init_args: {every_n_steps: 10, hidden_norm: false}
"""


def test_callbacks_are_configured_from_yaml_with_strings():
    parser = ArgumentParser()
    parser.add_argument("--callbacks", type=list[L.Callback])
    config = parser.parse_string(CALLBACKS_YAML)
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes  # < 4.49
    curriculum, cosine, step, monitor = instantiate(config).callbacks
    assert isinstance(curriculum, CurriculumDropout) and curriculum.gamma == 0.001
    assert curriculum.targets == ["LockedDropout", "WeightDrop:p"]
    assert isinstance(cosine, RateSchedule) and cosine.targets == ["0_EmbeddingDropout"]
    assert cosine.schedule == Cosine(steps=100, start="final", end=0.0)
    assert step.schedule == Step(milestones=(10, 20))
    assert isinstance(monitor, RegularizerMonitor) and monitor.every_n_steps == 10
    assert not monitor.hidden_norm
