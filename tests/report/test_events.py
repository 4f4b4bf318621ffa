"""Runs read from event files: names, scalar series, epochs of steps, hyperparameters."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from lightning_rnn_reg.report import Run, ScalarSeries, find_runs, read_run


def test_find_runs_names_each_run_by_its_folder(real_runs):
    assert [run.name for run in find_runs(real_runs.dirs)] == ["run_lr1", "run_lr3"]


def test_find_runs_names_the_runs_below_a_folder_of_runs(real_runs):
    assert [run.name for run in find_runs([real_runs.root])] == ["run_lr1", "run_lr3"]


def test_find_runs_names_a_version_folder_by_the_folder_above_lightning_logs(real_runs):
    (run,) = find_runs([real_runs.dirs[0] / "lightning_logs" / "version_0"])
    assert run.name == "run_lr1"


def test_find_runs_keeps_full_paths_for_names_that_clash(tmp_path, events_writer):
    for version in ("version_0", "version_1"):
        events_writer(tmp_path / "a" / "lightning_logs" / version, {"val/ppl": [(1, 5.0)]})
    names = [run.name for run in find_runs([tmp_path / "a"])]
    assert names == [str(tmp_path / "a" / "lightning_logs" / v) for v in ("version_0",
                                                                           "version_1")]


def test_find_runs_raises_for_a_folder_without_event_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no TensorBoard event file"):
        find_runs([tmp_path])


def test_read_run_reads_every_point_of_every_scalar(tmp_path, events_writer):
    events_writer(tmp_path, {"val/ppl": [(3, 9.0), (7, 8.0)], "epoch": [(3, 0.0), (7, 1.0)]})
    run = read_run(tmp_path)
    assert run.scalars["val/ppl"] == ScalarSeries((3, 7), (9.0, 8.0))


def test_read_run_reads_the_hyperparameters_of_the_real_run(real_runs):
    (run,) = find_runs(real_runs.dirs[1:])
    assert run.hparam("lr") == 3.0


def test_epochs_are_one_plus_the_epoch_logged_at_or_before_each_step():
    run = Run("r", Path("r"), {"epoch": ScalarSeries((0, 4, 5, 9), (0.0, 0.0, 1.0, 1.0)),
                               "val/ppl": ScalarSeries((4, 9, 12), (3.0, 2.0, 1.0))})
    assert run.epochs("val/ppl") == [1, 2, 2]


def test_epochs_are_empty_without_an_epoch_scalar():
    run = Run("r", Path("r"), {"val/ppl": ScalarSeries((4,), (3.0,))})
    assert run.epochs("val/ppl") == []


def test_hparam_looks_up_a_dotted_path_in_the_config():
    config = {"model": {"init_args": {"regularizers": [{"init_args": {"p": 0.25}}]}}}
    run = Run("r", Path("r"), {}, hparams={"lr": 1.0}, config=config)
    assert run.hparam("model.init_args.regularizers.0.init_args.p") == 0.25


def test_hparam_raises_key_error_naming_the_run():
    with pytest.raises(KeyError, match="run 'r' has no hyperparameter 'x'"):
        Run("r", Path("r"), {}, hparams={"lr": 1.0}).hparam("x")


def _version_run(root: Path, events_writer: Callable[..., Path], config: str | None,
                 logs: str = "lightning_logs") -> Path:
    folder = root / logs / "version_0"
    events_writer(folder, {"val/ppl": [(1, 5.0)]})
    if config is not None:
        (folder / "config.yaml").write_text(config)
    return folder


def test_find_runs_names_a_version_folder_of_a_fit_without_a_root_folder_by_its_version(
        tmp_path, events_writer):
    folder = _version_run(tmp_path / "main", events_writer,
                          "trainer:\n  default_root_dir: null\n  logger: null\n")
    (run,) = find_runs([folder])
    assert run.name == "version_0"


def test_find_runs_names_a_version_folder_by_the_default_root_dir_it_was_given(
        tmp_path, events_writer):
    folder = _version_run(tmp_path / "qs_run", events_writer,
                          f"trainer:\n  default_root_dir: {tmp_path / 'qs_run'}\n")
    (run,) = find_runs([folder])
    assert run.name == "qs_run"


def test_find_runs_names_a_run_of_the_working_directory_by_its_version(
        tmp_path, events_writer, monkeypatch):
    _version_run(tmp_path / "main", events_writer, "trainer:\n  default_root_dir: null\n")
    monkeypatch.chdir(tmp_path / "main")
    (run,) = find_runs(["."])
    assert run.name == "version_0"


def test_find_runs_names_a_run_by_the_folder_given_even_without_a_root_folder(
        tmp_path, events_writer):
    _version_run(tmp_path / "zaremba", events_writer, "trainer:\n  default_root_dir: null\n")
    (run,) = find_runs([tmp_path / "zaremba"])
    assert run.name == "zaremba"


def test_find_runs_names_a_version_folder_of_a_named_logger_by_the_logger_name(
        tmp_path, events_writer):
    folder = _version_run(tmp_path, events_writer, None, logs="zaremba_small")
    (run,) = find_runs([folder])
    assert run.name == "zaremba_small"
