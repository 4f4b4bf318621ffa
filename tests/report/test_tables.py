"""Markdown tables: cell formatting, alignment, missing values, the file written."""

from __future__ import annotations

import pytest

from lightning_rnn_reg.report import format_value, markdown_table, write_table


@pytest.mark.parametrize(("value", "text"), [(0.82481, "0.8248"), (4.90412, "4.904"),
                                             (117.384, "117.38"), (12, "12"), (None, "—"),
                                             (float("nan"), "—"), ("a|b", "a\\|b")])
def test_format_value_keeps_about_four_significant_digits(value, text):
    assert format_value(value) == text


def test_markdown_table_right_aligns_numeric_columns_only():
    table = markdown_table([{"run": "a", "ppl": 117.384}], ["run", "ppl"])
    assert table.splitlines() == ["| run | ppl |", "|---|---:|", "| a | 117.38 |"]


def test_markdown_table_shows_a_missing_value_as_a_dash():
    assert markdown_table([{"run": "a"}], ["run", "ppl"]).splitlines()[-1] == "| a | — |"


def test_markdown_table_uses_a_column_formatter():
    table = markdown_table([{"ratio": 1.031}], ["ratio"], {"ratio": lambda v: f"{v:.2f}x"})
    assert table.splitlines()[-1] == "| 1.03x |"


def test_write_table_writes_the_titled_table_to_the_file(tmp_path):
    out = tmp_path / "sub" / "t.md"
    text = write_table([{"a": 1}], ["a"], out, title="T")
    assert out.read_text() == text + "\n" and text.startswith("### T\n\n| a |")
