"""``error_bar_chart``: one bar per category at its mean, with its error bar, as a PNG."""

from __future__ import annotations

import math

import pytest

from lightning_rnn_reg.report import error_bar_chart

pytest.importorskip("matplotlib")


def test_error_bar_chart_draws_each_mean_with_its_error(tmp_path):
    drawn = error_bar_chart(["none", "locked", "awd"], [82.0, 84.5, 83.25], [0.5, 0.25, 1.0],
                            tmp_path / "e.png", value_label="test/acc", reference=82.0,
                            highlight=["locked"])
    assert list(drawn) == ["none", "locked", "awd"]
    for name, mean, error in (("none", 82.0, 0.5), ("locked", 84.5, 0.25), ("awd", 83.25, 1.0)):
        assert drawn[name]["mean"] == pytest.approx(mean)
        assert drawn[name]["error"] == pytest.approx(error)
    assert (tmp_path / "e.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_error_bar_chart_draws_a_missing_error_as_none(tmp_path):
    drawn = error_bar_chart(["a", "b"], [1.0, 2.0], [math.nan, 0.1], tmp_path / "sub" / "e.png",
                            value_label="v")
    assert drawn["a"]["error"] == pytest.approx(0.0)
    assert drawn["b"]["error"] == pytest.approx(0.1)
    assert (tmp_path / "sub" / "e.png").is_file()


def test_error_bar_chart_rejects_lists_of_different_lengths(tmp_path):
    with pytest.raises(ValueError, match="2 categories, 1 means and 2 errors"):
        error_bar_chart(["a", "b"], [1.0], [0.1, 0.2], tmp_path / "e.png", value_label="v")
