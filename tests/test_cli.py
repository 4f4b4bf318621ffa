"""The CLI parses and instantiates every shipped recipe, so no config rots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import lightning_rnn_reg as lrr
from lightning_rnn_reg.cli import main

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


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_recipe_instantiates_model_and_data(config, monkeypatch, tmp_path):
    if not SHARED.is_dir():
        pytest.skip(f"benchmark data not found at {SHARED}")
    monkeypatch.setenv("LRR_DATA", str(SHARED))
    monkeypatch.chdir(tmp_path)
    cli = main(["--config", str(config), "--trainer.logger", "false"], run=False)
    assert isinstance(cli.model, lrr.LanguageModel)
    assert cli.model.hparams["vocab_size"] == cli.datamodule.vocab_size
    assert len(cli.model.regularizers) == len(cli.model.hparams["regularizers"])
