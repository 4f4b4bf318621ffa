"""Markdown tables: rows of values under named columns, as GitHub-flavoured markdown.

The one table writer of the project: ``lightning-rnn-reg report`` writes its summary of runs
with it, and the benchmarks (``benchmarks/speed.py`` ...) write their tables through it, so
every table has the same number formatting and alignment (numbers right-aligned).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from numbers import Real
from pathlib import Path
from typing import Any

Row = Mapping[str, Any]
Formatter = Callable[[Any], str]


def format_value(value: Any) -> str:
    """A cell's text: floats with 4 decimals below 1 in magnitude, 3 below 10 and 2 from
    there on (an F1 reads ``0.8248``, a loss ``4.904``, a perplexity ``117.38``), ``nan``
    and ``None`` as ``—``, everything else as ``str``; ``|`` is escaped."""
    if value is None:
        return "—"
    if isinstance(value, Real) and not isinstance(value, (bool, int)):
        number = float(value)
        if math.isnan(number):
            return "—"
        decimals = 4 if abs(number) < 1 else 3 if abs(number) < 10 else 2
        return f"{number:.{decimals}f}"
    return str(value).replace("|", "\\|")


def _is_numeric(rows: Sequence[Row], column: str) -> bool:
    values = [row.get(column) for row in rows if row.get(column) is not None]
    return bool(values) and all(isinstance(v, Real) and not isinstance(v, bool) for v in values)


def markdown_table(rows: Sequence[Row], columns: Sequence[str],
                   formats: Mapping[str, Formatter] | None = None) -> str:
    """``rows`` (mappings from column name to value) as a markdown table with ``columns`` in
    that order; a value missing from a row is shown as ``—``. ``formats`` maps a column to
    its own formatter (default :func:`format_value`). Numeric columns are right-aligned.

    Example::

        markdown_table([{"run": "a", "ppl": 117.384}], ["run", "ppl"])
        # '| run | ppl |\\n|---|---:|\\n| a | 117.38 |'
    """
    if not columns:
        raise ValueError("markdown_table needs at least one column")
    formats = formats or {}
    header = "| " + " | ".join(str(c).replace("|", "\\|") for c in columns) + " |"
    rule = "|" + "|".join("---:" if _is_numeric(rows, c) else "---" for c in columns) + "|"
    lines = [header, rule]
    for row in rows:
        cells = [formats.get(c, format_value)(row.get(c)) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_table(rows: Sequence[Row], columns: Sequence[str], out_md: str | Path, *,
                title: str | None = None, formats: Mapping[str, Formatter] | None = None,
                ) -> str:
    """Write :func:`markdown_table` of ``rows`` to ``out_md`` (under a ``### title`` heading
    if given; parent folders are created) and return the text written."""
    text = markdown_table(rows, columns, formats)
    if title:
        text = f"### {title}\n\n{text}"
    path = Path(out_md)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")
    return text
