"""PNG charts: the data drawn (read back from the artists), the image written, and the
message when matplotlib is missing."""

from __future__ import annotations

import sys

import pytest

from lightning_rnn_reg.report import (
    MissingPlotDependencyError,
    bar_chart,
    curve_chart,
    line_chart,
)

pytest.importorskip("matplotlib")


def test_line_chart_draws_each_series_as_given(tmp_path):
    series = {"a": ([1, 2, 3], [9.0, 8.0, 7.5]), "b": ([2, 4], [1.0, 0.5])}
    drawn = line_chart(series, tmp_path / "c.png", xlabel="epoch", ylabel="ppl")
    assert drawn == {"a": {"x": [1, 2, 3], "y": [9.0, 8.0, 7.5]},
                     "b": {"x": [2, 4], "y": [1.0, 0.5]}}


def test_line_chart_writes_a_png(tmp_path):
    line_chart({"a": ([1], [2.0])}, tmp_path / "c.png", xlabel="x", ylabel="y")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bar_chart_draws_one_bar_per_category_and_group(tmp_path):
    drawn = bar_chart(["bare", "ours"], {"small": [1.0, 1.03], "medium": [1.0, 1.01]},
                      tmp_path / "b.png", value_label="ratio", reference=1.0)
    assert drawn == {"small": {"bare": 1.0, "ours": 1.03}, "medium": {"bare": 1.0, "ours": 1.01}}


def test_bar_chart_rejects_a_group_of_the_wrong_length(tmp_path):
    with pytest.raises(ValueError, match="group 'small' has 1 values for 2 categories"):
        bar_chart(["a", "b"], {"small": [1.0]}, tmp_path / "b.png", value_label="v")


def test_missing_matplotlib_raises_with_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(MissingPlotDependencyError, match=r"lightning-rnn-reg\[report\]"):
        line_chart({"a": ([1], [2.0])}, tmp_path / "c.png", xlabel="x", ylabel="y")


def test_line_chart_draws_each_line_in_its_style(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    saved = []  # (label, linestyle) of the lines of each figure saved
    monkeypatch.setattr(plt.Figure, "savefig", lambda figure, *a, **k: saved.append(
        [(line.get_label(), line.get_linestyle()) for line in figure.axes[0].get_lines()]))
    line_chart({"a": ([1, 2], [1.0, 2.0]), "b": ([1, 2], [2.0, 3.0])}, tmp_path / "c.png",
               xlabel="x", ylabel="y", styles={"b": {"linestyle": "--"}})
    assert saved == [[("a", "-"), ("b", "--")]]


def test_curve_chart_draws_the_gap_in_a_lower_panel(tmp_path):
    drawn = curve_chart({"val": ([1, 2], [5.0, 4.0]), "train": ([1, 2], [5.5, 3.5])},
                        tmp_path / "c.png", xlabel="epoch", ylabel="loss",
                        gap={"val - train": ([1, 2], [-0.5, 0.5])})
    assert drawn["gap"] == {"val - train": {"x": [1, 2], "y": [-0.5, 0.5]}}


def test_curve_chart_with_a_gap_is_taller(tmp_path):
    from matplotlib.image import imread

    curve_chart({"val": ([1], [5.0])}, tmp_path / "c.png", xlabel="epoch", ylabel="loss",
                gap={"gap": ([1], [0.1])})
    assert imread(tmp_path / "c.png").shape[:2] == (650, 700)


def test_curve_chart_without_a_gap_is_a_line_chart(tmp_path):
    from matplotlib.image import imread

    drawn = curve_chart({"val": ([1], [5.0])}, tmp_path / "c.png", xlabel="e", ylabel="l")
    assert (drawn["gap"], imread(tmp_path / "c.png").shape[:2]) == ({}, (450, 700))
