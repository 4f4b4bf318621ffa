"""``lightning-rnn-reg report``: dispatch from the main command, files written, errors."""

from __future__ import annotations

import json
import sys

import pytest

from lightning_rnn_reg.cli import main

pytest.importorskip("matplotlib")


def test_report_subcommand_writes_the_report_of_the_runs(real_runs, tmp_path, capsys):
    main(["report", *map(str, real_runs.dirs), "--out", str(tmp_path), "--metrics", "val/ppl"])
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["runs"] == ["run_lr1", "run_lr3"]
    assert "curve_val_ppl_epoch.png" in report["figures"]
    assert "2 run(s)" in capsys.readouterr().out


def test_report_without_matplotlib_exits_2_with_the_install_command(real_runs, tmp_path,
                                                                    monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(real_runs.dirs[0]), "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert 'pip install "lightning-rnn-reg[report]"' in capsys.readouterr().err


def test_report_of_a_folder_without_runs_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(tmp_path), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "no TensorBoard event file" in capsys.readouterr().err


def test_report_with_an_unknown_label_exits_2_naming_it(real_runs, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["report", str(real_runs.dirs[0]), "--out", str(tmp_path), "--label", "nope"])
    assert exit_info.value.code == 2
    assert "the hyperparameter 'nope'" in capsys.readouterr().err


def test_report_no_train_draws_validation_curves_alone(real_runs, tmp_path):
    main(["report", str(real_runs.dirs[0]), "--out", str(tmp_path), "--metrics", "val/ppl",
          "--no-train"])
    report = json.loads((tmp_path / "report.json").read_text())
    assert list(report["figures"]["curve_val_ppl_step.png"]["series"]) == ["run_lr1"]


def test_report_draws_the_training_twin_by_default(real_runs, tmp_path):
    main(["report", str(real_runs.dirs[0]), "--out", str(tmp_path), "--metrics", "val/ppl"])
    report = json.loads((tmp_path / "report.json").read_text())
    assert list(report["figures"]["curve_val_ppl_step.png"]["series"]) == ["val/ppl",
                                                                           "train/ppl"]
