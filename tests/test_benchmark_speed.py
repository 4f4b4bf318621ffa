"""benchmarks/speed.py writes its tables and chart through lightning_rnn_reg.report (the
timing itself is not run by the test suite: only the output path, on made-up medians)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SPEED = Path(__file__).resolve().parents[1] / "benchmarks" / "speed.py"


@pytest.fixture(scope="module")
def speed():
    spec = importlib.util.spec_from_file_location("speed_benchmark", SPEED)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(speed):
    medians = {name: 0.010 * (1 + index / 10) for index, name in enumerate(speed._names())}
    extra = {name: {"first_call_s": 0.5, "saved_mib": 20.8} for name in medians}
    return speed._rows(medians, extra, "cpu")


def test_speed_table_shows_each_configuration_with_its_ratio(speed):
    lines = speed.table("small", _rows(speed), "cpu").splitlines()
    assert lines[0] == "### small: 2 x 200, batch 20, 35 steps (cpu)"
    assert lines[4] == "| bare nn.LSTM | 10.0 | 1.00x | 0.50 | 20.8 |"
    assert lines[5].startswith("| lrr.LSTM, no regularizer | 11.0 | 1.10x |")


def test_speed_plot_draws_the_ratio_of_every_configuration_per_shape(speed, tmp_path):
    pytest.importorskip("matplotlib")
    rows = _rows(speed)
    drawn = speed.plot({"small": rows, "medium": rows}, str(tmp_path / "speed.png"), "cpu")
    assert drawn["medium (2 x 650)"] == {
        row["configuration"]: pytest.approx(row["ratio to bare nn.LSTM"]) for row in rows}
