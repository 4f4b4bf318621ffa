"""write_report on two short real fits: the files it writes and the series they show, read
back (report.json, summary.md, the PNGs) and compared with the event files read directly."""

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


@pytest.fixture(scope="module")
def report(real_runs: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory
           ) -> SimpleNamespace:
    out = tmp_path_factory.mktemp("report")
    written = write_report(find_runs(real_runs.dirs), out, label="lr")
    return SimpleNamespace(out=out, written=written, json=json.loads((out / "report.json")
                                                                     .read_text()))


def _cells(summary_md: str) -> list[dict[str, str]]:
    header, _, *lines = summary_md.strip().splitlines()
    names = [cell.strip() for cell in header.strip("|").split("|")]
    return [dict(zip(names, (c.strip() for c in line.strip("|").split("|")), strict=True))
            for line in lines]


def test_report_writes_curves_rates_and_tables(report):
    names = {path.name for path in report.out.iterdir()}
    assert names == {"curve_val_ppl_step.png", "curve_val_ppl_epoch.png",
                     "curve_val_loss_step.png", "curve_val_loss_epoch.png",
                     "rate_0_LockedDropout_p.png", "rate_1_WeightDrop_p.png",
                     "summary.md", "report.md", "report.json"}


def test_report_json_equals_the_returned_report(report):
    assert report.json == report.written


def test_curve_by_step_draws_the_logged_validation_perplexity(report, real_runs):
    series = report.json["figures"]["curve_val_ppl_step.png"]["series"]
    for label, run_dir in zip(("lr=1.0", "lr=3.0"), real_runs.dirs, strict=True):
        steps, values = _events(run_dir, "val/ppl")
        assert series[label]["x"] == steps
        assert series[label]["y"] == pytest.approx(values, rel=1e-6)


def test_curve_by_epoch_draws_one_point_per_epoch_from_one(report, real_runs):
    series = report.json["figures"]["curve_val_ppl_epoch.png"]["series"]
    _, values = _events(real_runs.dirs[0], "val/ppl")
    assert series["lr=1.0"]["x"] == list(range(1, real_runs.epochs + 1))
    assert series["lr=1.0"]["y"] == pytest.approx(values, rel=1e-6)


def test_rate_curve_draws_the_curriculum_rate_of_each_step(report, real_runs):
    drawn = report.json["figures"]["rate_0_LockedDropout_p.png"]["series"]["lr=1.0"]
    expected = [0.4 * (1 - math.exp(-real_runs.gamma * step)) for step in drawn["x"]]
    assert len(drawn["x"]) > 5
    assert drawn["y"] == pytest.approx(expected, abs=1e-6)


def test_rate_figure_has_a_line_only_for_runs_with_that_regularizer(report):
    assert set(report.json["figures"]["rate_1_WeightDrop_p.png"]["series"]) == {"lr=1.0"}
    assert set(report.json["figures"]["rate_0_LockedDropout_p.png"]["series"]) == {
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


def test_pngs_are_images_of_the_chart_size(report):
    from matplotlib.image import imread

    for name in report.json["figures"]:
        assert imread(report.out / name).shape[:2] == (450, 700)


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
