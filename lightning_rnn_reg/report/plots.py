"""Charts as PNG files: line charts (one line per series) and grouped bar charts.

The one plotting module of the project: ``lightning-rnn-reg report`` draws its learning
curves with :func:`curve_chart` (training and validation lines over a panel of their gap)
and its rate curves with :func:`line_chart`, the benchmarks their bar charts with
:func:`bar_chart`. matplotlib is an optional dependency (``pip install
"lightning-rnn-reg[report]"``), imported on first use with the non-interactive Agg backend.
Each function returns the data it drew, read back from the matplotlib artists, so a caller
(or a test) can check what a figure shows without parsing pixels.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

INSTALL_HINT = 'pip install "lightning-rnn-reg[report]"'
Series = Mapping[str, tuple[Sequence[float], Sequence[float]]]
#: ``label -> matplotlib line properties`` (``color``, ``linestyle``, ``marker``, ...)
Styles = Mapping[str, Mapping[str, Any]]
Drawn = dict[str, dict[str, list[float]]]


class MissingPlotDependencyError(ImportError):
    """matplotlib is not installed; the message says how to install it."""


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend, or :class:`MissingPlotDependencyError` with the
    install command when matplotlib is missing."""
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError as error:
        raise MissingPlotDependencyError(
            f"plotting needs matplotlib, which is not installed: {INSTALL_HINT}") from error
    matplotlib.use("Agg")
    return importlib.import_module("matplotlib.pyplot")


def _ticker() -> Any:
    return importlib.import_module("matplotlib.ticker")


def _save(figure: Any, axes: Any, out_png: str | Path, title: str, legend: bool) -> None:
    axes.set_title(title)
    if legend:
        axes.legend(fontsize="small")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    path = Path(out_png)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)


def _lines(axes: Any, series: Series, styles: Styles | None) -> Drawn:
    """Plot each series on ``axes`` (a marker on short ones, ``styles`` over that); the data
    read back from the lines."""
    drawn = {}
    for label, (xs, ys) in series.items():
        style = {"marker": "." if len(xs) < 50 else None, **(styles or {}).get(label, {})}
        (line,) = axes.plot(list(xs), list(ys), label=label, **style)
        drawn[label] = {"x": [float(v) for v in line.get_xdata()],
                        "y": [float(v) for v in line.get_ydata()]}
    return drawn


def _integer_ticks(axes: Any, drawn: Drawn) -> None:
    if all(float(x).is_integer() for d in drawn.values() for x in d["x"]):
        axes.xaxis.set_major_locator(_ticker().MaxNLocator(integer=True))


def line_chart(series: Series, out_png: str | Path, *, xlabel: str, ylabel: str,
               title: str = "", styles: Styles | None = None) -> Drawn:
    """One line per entry of ``series`` (``label -> (xs, ys)``), saved to ``out_png``;
    ``styles`` gives a label's line properties (``{"linestyle": "--"}``).

    Returns ``{label: {"x": [...], "y": [...]}}`` as drawn (read from the lines).

    Example::

        line_chart({"run a": ([1, 2, 3], [180.0, 140.0, 125.0])}, "ppl.png",
                   xlabel="epoch", ylabel="val/ppl")
    """
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    try:
        drawn = _lines(axes, series, styles)
        _integer_ticks(axes, drawn)
        axes.set_xlabel(xlabel)
        axes.set_ylabel(ylabel)
        _save(figure, axes, out_png, title, legend=bool(drawn))
    finally:
        plt.close(figure)
    return drawn


def curve_chart(series: Series, out_png: str | Path, *, xlabel: str, ylabel: str,
                title: str = "", styles: Styles | None = None, gap: Series | None = None,
                gap_ylabel: str = "gap", gap_styles: Styles | None = None,
                ) -> dict[str, Drawn]:
    """Learning curves: the lines of ``series`` (as :func:`line_chart`) and, where ``gap`` is
    given and not empty, a lower panel with its lines against the same x axis and a line at
    zero (the figure is then 7 x 6.5 inches instead of 7 x 4.5). Saved to ``out_png``.

    Returns ``{"series": drawn, "gap": drawn}`` (the gap's ``{}`` without a panel).

    Example::

        curve_chart({"val/loss": ([1, 2], [5.1, 4.8]), "train/ce": ([1, 2], [5.3, 4.6])},
                    "loss.png", xlabel="epoch", ylabel="loss",
                    gap={"val/loss - train/ce": ([1, 2], [-0.2, 0.2])})
    """
    if not gap:
        return {"series": line_chart(series, out_png, xlabel=xlabel, ylabel=ylabel,
                                     title=title, styles=styles), "gap": {}}
    plt = pyplot()
    figure, (axes, lower) = plt.subplots(2, 1, figsize=(7, 6.5), sharex=True,
                                         gridspec_kw={"height_ratios": (2.2, 1)})
    try:
        drawn = _lines(axes, series, styles)
        drawn_gap = _lines(lower, gap, gap_styles)
        lower.axhline(0.0, color="black", linewidth=0.8)
        _integer_ticks(lower, {**drawn, **drawn_gap})
        axes.set_ylabel(ylabel)
        lower.set_xlabel(xlabel)
        lower.set_ylabel(gap_ylabel)
        lower.legend(fontsize="small")
        lower.grid(True, alpha=0.3)
        _save(figure, axes, out_png, title, legend=bool(drawn))
    finally:
        plt.close(figure)
    return {"series": drawn, "gap": drawn_gap}


def bar_chart(categories: Sequence[str], groups: Mapping[str, Sequence[float]],
              out_png: str | Path, *, value_label: str, title: str = "",
              reference: float | None = None) -> dict[str, dict[str, float]]:
    """Grouped horizontal bars: one row per category, one bar per group in each row (e.g.
    categories = configurations, groups = model sizes). ``reference`` draws a vertical line
    (e.g. 1.0 for a ratio to a baseline). Saved to ``out_png``.

    Returns ``{group: {category: value}}`` as drawn (read from the bars).

    Example::

        bar_chart(["nn.LSTM", "ours"], {"small": [1.0, 1.03]}, "speed.png",
                  value_label="ratio to nn.LSTM", reference=1.0)
    """
    for group, values in groups.items():
        if len(values) != len(categories):
            raise ValueError(f"bar_chart: group {group!r} has {len(values)} values for "
                             f"{len(categories)} categories")
    plt = pyplot()
    height = 0.8 / max(len(groups), 1)
    figure, axes = plt.subplots(figsize=(8, 1.0 + 0.45 * len(categories) * max(len(groups), 1)))
    try:
        drawn = {}
        for index, (group, values) in enumerate(groups.items()):
            rows = [row + index * height for row in range(len(categories))]
            bars = axes.barh(rows, list(values), height=height, label=group)
            drawn[group] = {name: float(bar.get_width())
                            for name, bar in zip(categories, bars, strict=True)}
        axes.set_yticks([row + height * (len(groups) - 1) / 2 for row in range(len(categories))],
                        list(categories))
        axes.invert_yaxis()
        axes.set_xlabel(value_label)
        if reference is not None:
            axes.axvline(reference, color="black", linewidth=0.8)
        _save(figure, axes, out_png, title, legend=len(groups) > 1)
    finally:
        plt.close(figure)
    return drawn


def error_bar_chart(categories: Sequence[str], means: Sequence[float],
                    errors: Sequence[float], out_png: str | Path, *, value_label: str,
                    title: str = "", reference: float | None = None,
                    highlight: Sequence[str] = ()) -> dict[str, dict[str, float]]:
    """Horizontal bars with error bars: one row per category (e.g. a configuration) at its
    mean, the error bar ``± errors`` (e.g. the standard deviation over seeds; ``nan`` or 0:
    none). ``reference`` draws a vertical line (e.g. the baseline's mean); categories in
    ``highlight`` are drawn in a second colour. The x axis starts just below the smallest
    ``mean - error``, so small differences stay visible. Saved to ``out_png``.

    Returns ``{category: {"mean": ..., "error": ...}}`` as drawn (read from the bars and
    the error-bar segments).

    Example::

        error_bar_chart(["none", "locked"], [82.1, 84.0], [0.4, 0.3], "test_acc.png",
                        value_label="test/acc (%)", reference=82.1)
    """
    if not len(categories) == len(means) == len(errors):
        raise ValueError(f"error_bar_chart: {len(categories)} categories, {len(means)} means "
                         f"and {len(errors)} errors")
    errs = [0.0 if e is None or e != e else float(e) for e in errors]  # nan -> no bar
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(8, 1.2 + 0.45 * len(categories)))
    try:
        colours = ["C1" if name in highlight else "C0" for name in categories]
        rows = list(range(len(categories)))
        bars = axes.barh(rows, [float(m) for m in means], xerr=errs, color=colours,
                         capsize=4, error_kw={"elinewidth": 1.2})
        segments = bars.errorbar.lines[2][0].get_segments() if categories else []
        drawn = {name: {"mean": float(bar.get_width()),
                        "error": float(seg[1][0] - seg[0][0]) / 2}
                 for name, bar, seg in zip(categories, bars, segments, strict=True)}
        axes.set_yticks(rows, list(categories))
        axes.invert_yaxis()
        axes.set_xlabel(value_label)
        if categories:
            low = min(float(m) - e for m, e in zip(means, errs, strict=True))
            high = max(float(m) + e for m, e in zip(means, errs, strict=True))
            axes.set_xlim(low - 0.1 * (high - low or abs(high) or 1.0),
                          high + 0.05 * (high - low or abs(high) or 1.0))
        if reference is not None:
            axes.axvline(reference, color="black", linewidth=0.8, linestyle="--")
        _save(figure, axes, out_png, title, legend=False)
    finally:
        plt.close(figure)
    return drawn
