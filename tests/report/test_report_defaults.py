"""write_report's defaults on synthetic runs: the training objective and the missing twins
said in the figures, constant rates left out and listed, a single run named in the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lightning_rnn_reg.report import Run, ScalarSeries, write_report

pytest.importorskip("matplotlib")

EPOCH = ScalarSeries((1, 9, 11, 19), (0.0, 0.0, 1.0, 1.0))
SPECS = [{"class_path": "lightning_rnn_reg.LockedDropout", "init_args": {"at": "output"}},
         {"class_path": "lightning_rnn_reg.WeightDrop", "init_args": {"p": 0.5}}]


def _steps(*values: float) -> ScalarSeries:
    return ScalarSeries((1, 9, 11, 19), values)


def _lm(name: str = "lm") -> Run:
    """A language model with AR: train/loss = train/ce + train/ar; LockedDropout's rate
    scheduled, WeightDrop's constant."""
    return Run(name, Path(name), {
        "epoch": EPOCH,
        "train/loss": _steps(6.5, 5.5, 4.5, 3.5), "train/ce": _steps(6.0, 5.0, 4.0, 3.0),
        "train/ar": _steps(0.5, 0.5, 0.5, 0.5), "train/ppl": _steps(400.0, 150.0, 55.0, 20.0),
        "val/loss": ScalarSeries((9, 19), (5.2, 4.1)),
        "val/ppl": ScalarSeries((9, 19), (180.0, 60.0)),
        "reg/0_LockedDropout/p": _steps(0.0, 0.1, 0.2, 0.3),
        "reg/1_WeightDrop/p": _steps(0.5, 0.5, 0.5, 0.5),
    }, hparams={"regularizers": SPECS})


def _tagger() -> Run:
    """A tagger: F1 at validation only."""
    return Run("tagger", Path("tagger"), {
        "epoch": EPOCH, "train/loss": _steps(2.0, 1.5, 1.0, 0.8),
        "train/ce": _steps(2.0, 1.5, 1.0, 0.8), "val/loss": ScalarSeries((9, 19), (1.6, 1.1)),
        "val/f1": ScalarSeries((9, 19), (0.6, 0.7))})


def _write(tmp_path: Path, runs: list[Run], **options: Any) -> dict[str, Any]:
    return write_report(runs, tmp_path, **options)


def test_loss_curve_draws_the_training_objective_where_a_penalty_is_logged(tmp_path):
    series = _write(tmp_path, [_lm()])["figures"]["curve_val_loss_step.png"]["series"]
    assert list(series) == ["val/loss", "train/ce", "train/loss"]


def test_loss_curve_caption_names_the_penalty_terms_of_the_objective(tmp_path):
    caption = _write(tmp_path, [_lm()])["figures"]["curve_val_loss_epoch.png"]["caption"]
    assert "train/loss, the training objective (train/ce + train/ar)" in caption


def test_gap_of_the_loss_is_taken_against_the_cross_entropy_not_the_objective(tmp_path):
    gap = _write(tmp_path, [_lm()])["figures"]["curve_val_loss_epoch.png"]["gap"]
    assert gap["val/loss - train/ce"]["y"] == pytest.approx([5.2 - 5.5, 4.1 - 3.5])


def test_metric_without_a_training_twin_is_drawn_alone_with_a_caption_saying_so(tmp_path):
    figure = _write(tmp_path, [_tagger()])["figures"]["curve_val_f1_epoch.png"]
    assert (list(figure["series"]), figure["gap"], figure["caption"]) == (
        ["tagger"], {}, "No run logged train/f1: val/f1 alone.")


def test_training_twin_listed_in_metrics_is_not_drawn_again_alone(tmp_path):
    figures = _write(tmp_path, [_lm()], metrics=["val/ppl", "train/ppl"])["figures"]
    assert [name for name in figures if name.startswith("curve_")] == [
        "curve_val_ppl_step.png", "curve_val_ppl_epoch.png"]


def test_training_metric_is_drawn_alone_without_train(tmp_path):
    figures = _write(tmp_path, [_lm()], metrics=["val/ppl", "train/ppl"], train=False)["figures"]
    assert "curve_train_ppl_step.png" in figures


def test_constant_rate_is_not_plotted(tmp_path):
    figures = _write(tmp_path, [_lm()])["figures"]
    assert [name for name in figures if name.startswith("rate_")] == [
        "rate_LockedDropout_at_output_p.png"]


def test_constant_rate_is_listed_with_its_value(tmp_path):
    assert _write(tmp_path, [_lm()])["constant_rates"] == [
        {"run": "lm", "regularizer": "WeightDrop", "rate": "p", "value": 0.5,
         "tag": "reg/1_WeightDrop/p"}]


def test_constant_rates_table_is_in_report_md(tmp_path):
    _write(tmp_path, [_lm()])
    assert "| lm | WeightDrop | p | 0.5000 | reg/1_WeightDrop/p |" in (
        tmp_path / "report.md").read_text()


def test_rate_constant_in_one_run_is_drawn_where_another_run_moved_it(tmp_path):
    moved = _lm("moved")
    moved.scalars["reg/1_WeightDrop/p"] = _steps(0.0, 0.2, 0.4, 0.5)
    figures = _write(tmp_path, [_lm(), moved])["figures"]
    assert set(figures["rate_WeightDrop_p.png"]["series"]) == {"lm", "moved"}


def test_single_run_report_md_is_headed_by_the_run_name(tmp_path):
    _write(tmp_path, [_lm()])
    assert (tmp_path / "report.md").read_text().startswith("# Report: lm\n")


def test_single_run_figure_title_names_the_run(tmp_path):
    figure = _write(tmp_path, [_lm()])["figures"]["curve_val_ppl_epoch.png"]
    assert figure["title"] == "lm: val/ppl and train/ppl against the epoch"


def test_lines_of_several_runs_are_named_by_run_and_tag(tmp_path):
    series = _write(tmp_path, [_lm("a"), _lm("b")])["figures"]["curve_val_ppl_step.png"][
        "series"]
    assert list(series) == ["a: val/ppl", "a: train/ppl", "b: val/ppl", "b: train/ppl"]


def test_summary_has_a_gap_column_after_the_metric_columns(tmp_path):
    columns = _write(tmp_path, [_lm()], metrics=["val/loss"])["columns"]
    assert columns[-2:] == ["val/loss best epoch", "val/loss gap"]


def test_summary_has_no_gap_column_without_train(tmp_path):
    columns = _write(tmp_path, [_lm()], metrics=["val/loss"], train=False)["columns"]
    assert "val/loss gap" not in columns
