"""write_report on two short real fits: the files it writes and the series they show, read
back (report.json, summary.md, the PNGs) and compared with the event files read directly;
by default (validation with its training twin and their gap) and with ``train=False``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

from lightning_rnn_reg.report import find_runs, write_report
from lightning_rnn_reg.report.writer import default_metrics, rate_tags

pytest.importorskip("matplotlib")


def _events(run_dir: Path, tag: str) -> tuple[list[int], list[float]]:
    """``(steps, values)`` of ``tag``, read with TensorBoard alone."""
    (folder,) = {path.parent for path in run_dir.rglob("events.out.tfevents.*")}
    accumulator = EventAccumulator(str(folder), size_guidance={SCALARS: 0})
    accumulator.Reload()
    events = accumulator.Scalars(tag)
    return [e.step for e in events], [e.value for e in events]


def _write(real_runs: SimpleNamespace, out: Path, train: bool) -> SimpleNamespace:
    written = write_report(find_runs(real_runs.dirs), out, label="lr", train=train)
    return SimpleNamespace(out=out, written=written, json=json.loads((out / "report.json")
                                                                     .read_text()))


@pytest.fixture(scope="module")
def report(real_runs: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory
           ) -> SimpleNamespace:
    return _write(real_runs, tmp_path_factory.mktemp("report"), train=True)


@pytest.fixture(scope="module")
def val_only(real_runs: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory
             ) -> SimpleNamespace:
    return _write(real_runs, tmp_path_factory.mktemp("val_only"), train=False)


def _per_epoch(steps: list[int], epoch_steps: list[int], epoch_values: list[float],
               values: list[float], geometric: bool) -> list[float]:
    """The mean (geometric) of ``values`` per epoch, epochs read as the report reads them."""
    grouped: dict[int, list[float]] = {}
    for step, value in zip(steps, values, strict=True):
        last = max(i for i, s in enumerate(epoch_steps) if s <= step)
        grouped.setdefault(int(epoch_values[last]), []).append(value)
    if geometric:
        return [math.exp(sum(map(math.log, v)) / len(v)) for v in grouped.values()]
    return [sum(v) / len(v) for v in grouped.values()]


def _cells(summary_md: str) -> list[dict[str, str]]:
    header, _, *lines = summary_md.strip().splitlines()
    names = [cell.strip() for cell in header.strip("|").split("|")]
    return [dict(zip(names, (c.strip() for c in line.strip("|").split("|")), strict=True))
            for line in lines]


def test_report_writes_curves_rates_and_tables(report):
    names = {path.name for path in report.out.iterdir()}
    assert names == {"curve_val_ppl_step.png", "curve_val_ppl_epoch.png",
                     "curve_val_loss_step.png", "curve_val_loss_epoch.png",
                     "rate_LockedDropout_at_input_p.png", "rate_WeightDrop_p.png",
                     "summary.md", "report.md", "report.json"}


def test_report_json_equals_the_returned_report(report):
    assert report.json == report.written


def test_curve_by_step_draws_the_logged_validation_perplexity(report, real_runs):
    series = report.json["figures"]["curve_val_ppl_step.png"]["series"]
    for label, run_dir in zip(("lr=1.0", "lr=3.0"), real_runs.dirs, strict=True):
        steps, values = _events(run_dir, "val/ppl")
        assert series[f"{label}: val/ppl"]["x"] == steps
        assert series[f"{label}: val/ppl"]["y"] == pytest.approx(values, rel=1e-6)


def test_curve_by_step_draws_the_logged_training_perplexity_at_every_step(report, real_runs):
    drawn = report.json["figures"]["curve_val_ppl_step.png"]["series"]["lr=3.0: train/ppl"]
    steps, values = _events(real_runs.dirs[1], "train/ppl")
    assert (drawn["x"], drawn["y"]) == (steps, pytest.approx(values, rel=1e-6))


def test_curve_by_epoch_draws_one_point_per_epoch_from_one(report, real_runs):
    series = report.json["figures"]["curve_val_ppl_epoch.png"]["series"]
    _, values = _events(real_runs.dirs[0], "val/ppl")
    assert series["lr=1.0: val/ppl"]["x"] == list(range(1, real_runs.epochs + 1))
    assert series["lr=1.0: val/ppl"]["y"] == pytest.approx(values, rel=1e-6)


def test_curve_by_epoch_draws_the_geometric_mean_training_perplexity_of_each_epoch(
        report, real_runs):
    drawn = report.json["figures"]["curve_val_ppl_epoch.png"]["series"][
        "lr=1.0: train/ppl (epoch geo. mean)"]
    epoch_steps, epoch_values = _events(real_runs.dirs[0], "epoch")
    steps, values = _events(real_runs.dirs[0], "train/ppl")
    expected = _per_epoch(steps, epoch_steps, epoch_values, values, geometric=True)
    assert drawn["y"] == pytest.approx(expected, rel=1e-5)


def test_loss_curve_pairs_the_validation_loss_with_the_training_cross_entropy(report):
    series = report.json["figures"]["curve_val_loss_epoch.png"]["series"]
    assert set(series) == {f"lr={lr}: {tag}" for lr in ("1.0", "3.0")
                           for tag in ("val/loss", "train/ce (epoch mean)")}


def test_gap_panel_is_validation_minus_the_training_mean_of_each_epoch(report, real_runs):
    figure = report.json["figures"]["curve_val_loss_epoch.png"]
    train = figure["series"]["lr=3.0: train/ce (epoch mean)"]["y"]
    val = figure["series"]["lr=3.0: val/loss"]["y"]
    assert figure["gap"]["lr=3.0"]["y"] == pytest.approx([v - t for v, t in zip(val, train,
                                                                                  strict=True)])


def test_summary_table_holds_the_gap_of_the_last_epoch(report):
    figure = report.json["figures"]["curve_val_ppl_epoch.png"]
    assert [row["val/ppl gap"] for row in report.json["rows"]] == pytest.approx(
        [figure["gap"][label]["y"][-1] for label in ("lr=1.0", "lr=3.0")])


def test_report_without_train_draws_one_validation_line_per_run_and_no_gap(val_only):
    figure = val_only.json["figures"]["curve_val_ppl_epoch.png"]
    assert (set(figure["series"]), figure["gap"]) == ({"lr=1.0", "lr=3.0"}, {})


def test_rate_figure_is_titled_by_the_site_of_the_dropout(report):
    title = report.json["figures"]["rate_LockedDropout_at_input_p.png"]["title"]
    assert title == "LockedDropout(at=input) p against the step"


def test_rate_curve_draws_the_curriculum_rate_of_each_step(report, real_runs):
    drawn = report.json["figures"]["rate_LockedDropout_at_input_p.png"]["series"]["lr=1.0"]
    expected = [0.4 * (1 - math.exp(-real_runs.gamma * step)) for step in drawn["x"]]
    assert len(drawn["x"]) > 5
    assert drawn["y"] == pytest.approx(expected, abs=1e-6)


def test_rate_figure_has_a_line_only_for_runs_with_that_regularizer(report):
    assert set(report.json["figures"]["rate_WeightDrop_p.png"]["series"]) == {"lr=1.0"}
    assert set(report.json["figures"]["rate_LockedDropout_at_input_p.png"]["series"]) == {
        "lr=1.0", "lr=3.0"}


def test_summary_table_holds_the_final_and_best_logged_values(report, real_runs):
    rows = _cells((report.out / "summary.md").read_text())
    assert [row["run"] for row in rows] == ["run_lr1", "run_lr3"]
    for row, run_dir in zip(rows, real_runs.dirs, strict=True):
        _, values = _events(run_dir, "val/ppl")
        assert float(row["val/ppl final"]) == pytest.approx(values[-1], abs=0.005)
        assert float(row["val/ppl best"]) == pytest.approx(min(values), abs=0.005)
        assert int(row["val/ppl best epoch"]) == 1 + values.index(min(values))
        assert int(row["epochs"]) == real_runs.epochs


def test_report_md_shows_the_table_and_every_figure(report):
    text = (report.out / "report.md").read_text()
    assert (report.out / "summary.md").read_text().strip() in text
    for name in report.json["figures"]:
        assert f"]({name})" in text


def test_pngs_are_images_of_the_chart_size_taller_with_a_gap_panel(report):
    from matplotlib.image import imread

    for name, figure in report.json["figures"].items():
        height = 650 if figure.get("gap") else 450
        assert imread(report.out / name).shape[:2] == (height, 700)


def test_default_metrics_are_the_validation_metrics_logged(real_runs):
    assert default_metrics(find_runs(real_runs.dirs)) == ["val/ppl", "val/loss"]


def test_rate_tags_fall_back_to_the_monitor_tags():
    from lightning_rnn_reg.report import Run, ScalarSeries

    one = ScalarSeries((0,), (0.5,))
    run = Run("r", Path("r"), {"regularizers/rate/0_Dropout/p": one,
                               "regularizers/dropped/0_Dropout/p": one})
    assert rate_tags(run) == {"0_Dropout/p": "regularizers/rate/0_Dropout/p"}


def test_write_report_rejects_a_metric_no_run_logged(real_runs, tmp_path):
    with pytest.raises(ValueError, match="val/f1"):
        write_report(find_runs(real_runs.dirs), tmp_path, metrics=["val/f1"])
