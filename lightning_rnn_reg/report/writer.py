"""``write_report``: learning curves, regularizer rates and a summary table of runs, in one
folder.

For runs read from TensorBoard event files (:mod:`~lightning_rnn_reg.report.events`) it
writes to ``out``:

* ``curve_<metric>_step.png``: each validation metric against the global step, with its
  training twin (:mod:`~lightning_rnn_reg.report.pairs`: ``val/ppl`` with ``train/ppl``,
  ``val/loss`` with ``train/ce``) at every logged training step, dashed; one colour per run;
* ``curve_<metric>_epoch.png``: the same against the epoch (1 = after the first epoch), the
  training twin per epoch, and below them a panel of the generalisation gap (validation
  minus training, per epoch) where a run has both; a metric without a twin (the tagger's
  ``val/f1``) is drawn alone and its caption says so. ``train=False`` draws the validation
  metrics alone (and no gap), one line per run, as before;
* ``rate_<regularizer>_<rate>.png``: each regularizer's rate against the step, one line per
  run that has it, the regularizer named by its site (``LockedDropout(at=input)``, see
  :mod:`~lightning_rnn_reg.report.rates`); a rate that no run changed is not drawn, its value
  is listed under *Constant rates* in ``report.md``;
* ``summary.md``: the final and best value of each metric per run
  (:mod:`~lightning_rnn_reg.report.summary`), and with the training twins the gap at the
  last epoch (``<metric> gap``);
* ``report.md``: the tables and every figure with its caption, to read in one place;
* ``report.json``: the same tables and, for every figure, the series it draws (as read back
  from the plotted lines: ``series``, and ``gap`` for the lower panel), for scripts and
  tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_rnn_reg.report.events import Run, tags_of
from lightning_rnn_reg.report.pairs import (
    gap_per_epoch,
    objective_tag,
    penalty_tags,
    train_per_epoch,
    train_twin,
)
from lightning_rnn_reg.report.plots import Series, Styles, curve_chart, line_chart
from lightning_rnn_reg.report.rates import is_constant, rate_labels
from lightning_rnn_reg.report.rates import rate_tags as rate_tags  # re-exported
from lightning_rnn_reg.report.summary import hparam_or_none, run_labels, summary_table
from lightning_rnn_reg.report.tables import markdown_table

#: validation metrics plotted and tabulated by default, those any run logged
DEFAULT_METRICS = ("val/ppl", "val/bpc", "val/f1", "val/f1_pn", "val/acc", "val/loss")
#: line style of each role in a learning-curve figure (and its colour for a single run)
_DASHES = {"val": "-", "train": "--", "objective": ":", "gap": "-"}
_SINGLE_COLOURS = {"val": "C0", "train": "C1", "objective": "C2", "gap": "C3"}


def default_metrics(runs: Sequence[Run]) -> list[str]:
    """The :data:`DEFAULT_METRICS` logged by any run, else every ``val/`` tag."""
    tags = tags_of(runs)
    chosen = [tag for tag in DEFAULT_METRICS if tag in tags]
    return chosen or [tag for tag in tags if tag.startswith("val/")]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def _base(tag: str) -> str:
    return tag[: -len("_step")] if tag.endswith("_step") else tag


def _how_short(how: str, tag: str) -> str:
    """The legend's name of a training tag per epoch: the logged ``<tag>_epoch``, else
    ``<tag> (epoch mean)``."""
    if how.endswith("_epoch"):
        return how
    return f"{_base(tag)} (epoch {'geo. ' if how.startswith('geometric') else ''}mean)"


class _Curves:
    """The lines (and gap lines) of one metric's figures, run by run."""

    def __init__(self, runs: Sequence[Run], labels: Sequence[str], metric: str, train: bool):
        self.metric = metric
        self.train = train
        self.single = len(runs) == 1
        self.runs = [(index, run, label) for index, (run, label)
                     in enumerate(zip(runs, labels, strict=True)) if metric in run.scalars]
        self.twins = {index: train_twin(run, metric) if train else None
                      for index, run, _ in self.runs}
        self.paired = any(self.twins.values())

    def _name(self, label: str, tag: str) -> str:
        if not self.paired:
            return label  # one tag: the lines are the runs
        return tag if self.single else f"{label}: {tag}"

    def _style(self, index: int, role: str) -> dict[str, Any]:
        """Colour by run (by role for a single run), dashes by role."""
        colour = _SINGLE_COLOURS[role] if self.single else f"C{index % 10}"
        return {"color": colour, "linestyle": _DASHES[role]}

    def by_step(self) -> tuple[Series, Styles]:
        series: dict[str, tuple[Sequence[float], Sequence[float]]] = {}
        styles: dict[str, dict[str, Any]] = {}
        for index, run, label in self.runs:
            twin = self.twins[index]
            lines = [("val", self.metric), ("train", twin),
                     ("objective", objective_tag(run, twin))]
            for role, tag in lines:
                if tag is not None:
                    name = self._name(label, _base(tag) if role != "val" else tag)
                    series[name] = (run.scalars[tag].steps, run.scalars[tag].values)
                    styles[name] = self._style(index, role)
        return series, styles

    def by_epoch(self) -> tuple[Series, Styles, Series, Styles]:
        series: dict[str, tuple[Sequence[float], Sequence[float]]] = {}
        styles: dict[str, dict[str, Any]] = {}
        gaps: dict[str, tuple[Sequence[float], Sequence[float]]] = {}
        gap_styles: dict[str, dict[str, Any]] = {}
        for index, run, label in self.runs:
            epochs = run.epochs(self.metric)
            if not epochs:
                continue
            name = self._name(label, self.metric)
            series[name] = (epochs, run.scalars[self.metric].values)
            styles[name] = self._style(index, "val")
            twin = self.twins[index]
            for role, tag in (("train", twin), ("objective", objective_tag(run, twin))):
                per_epoch = train_per_epoch(run, tag) if tag is not None else None
                if tag is not None and per_epoch is not None:
                    name = self._name(label, _how_short(per_epoch.how, tag))
                    series[name] = (per_epoch.epochs, per_epoch.values)
                    styles[name] = self._style(index, role)
            gap = gap_per_epoch(run, self.metric, twin) if twin is not None else None
            if gap is not None:
                name = gap.how if self.single else label
                gaps[name] = (gap.epochs, gap.values)
                gap_styles[name] = self._style(index, "gap")
        return series, styles, gaps, gap_styles

    def caption(self, axis: str) -> str:
        if not self.paired:
            if self.train and self.metric.startswith("val/"):
                name = self.metric[len("val/"):]
                missing = "train/ce or train/loss" if name == "loss" else f"train/{name}"
                return f"No run logged {missing}: {self.metric} alone."
            return ""
        twins = sorted({_base(t) for t in self.twins.values() if t})
        text = [f"Solid: {self.metric}; dashed: {', '.join(twins)}"]
        if axis == "step":
            text.append(" at every logged training step")
        else:
            hows = sorted({f"the logged {per_epoch.how}" if per_epoch.how.endswith("_epoch")
                           else per_epoch.how for index, run, _ in self.runs
                           if (twin := self.twins[index])
                           and (per_epoch := train_per_epoch(run, twin))})
            text.append(f" per epoch ({'; '.join(hows)})" if hows else "")
        text.append(", measured on the training batches with the regularizers active.")
        objectives = [run for index, run, _ in self.runs
                      if objective_tag(run, self.twins[index])]
        if objectives:
            terms = " + ".join(["train/ce", *penalty_tags(objectives[0])])
            text.append(f" Dotted: train/loss, the training objective ({terms}).")
        if "train/loss" in twins:
            text.append(" train/loss stands in for the missing train/ce and includes any "
                        "penalty term.")
        if axis == "epoch":
            text.append(f" Lower panel: the gap, {self.metric} minus the training value, per "
                        "epoch.")
        unpaired = [label for index, _, label in self.runs if not self.twins[index]]
        if unpaired:
            text.append(f" Without a training twin: {', '.join(unpaired)}.")
        return "".join(text)

    def title(self, axis: str) -> str:
        twins = sorted({_base(t) for t in self.twins.values() if t})
        what = " and ".join([self.metric, *twins])
        prefix = f"{self.runs[0][1].name}: " if self.single and self.paired else ""
        return f"{prefix}{what} against the {axis}"


def _curves(runs: Sequence[Run], labels: Sequence[str], metric: str, out: Path,
            train: bool = True) -> dict[str, dict[str, Any]]:
    curves = _Curves(runs, labels, metric, train)
    ylabel = metric[len("val/"):] if curves.paired else metric
    figures: dict[str, dict[str, Any]] = {}
    series, styles = curves.by_step()
    name = f"curve_{_slug(metric)}_step.png"
    drawn = curve_chart(series, out / name, xlabel="step", ylabel=ylabel,
                        title=curves.title("step"), styles=styles)
    figures[name] = {"title": curves.title("step"), "xlabel": "step", "ylabel": ylabel,
                     "series": drawn["series"], "gap": {}, "caption": curves.caption("step")}
    by_epoch, styles, gaps, gap_styles = curves.by_epoch()
    if by_epoch:
        name = f"curve_{_slug(metric)}_epoch.png"
        drawn = curve_chart(by_epoch, out / name, xlabel="epoch", ylabel=ylabel,
                            title=curves.title("epoch"), styles=styles, gap=gaps,
                            gap_ylabel="val - train", gap_styles=gap_styles)
        figures[name] = {"title": curves.title("epoch"), "xlabel": "epoch", "ylabel": ylabel,
                         **drawn, "caption": curves.caption("epoch")}
    return figures


def _rates(runs: Sequence[Run], labels: Sequence[str], out: Path,
           ) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The figures of the rates that changed in some run, and the rows of those that never
    changed in any run (``run``, ``regularizer``, ``rate``, ``value``, ``tag``)."""
    by_key: dict[tuple[str, str], dict[str, tuple[Sequence[float], Sequence[float]]]] = {}
    logged: dict[tuple[str, str], list[str]] = {}
    moving: set[tuple[str, str]] = set()
    constant: list[tuple[tuple[str, str], dict[str, Any]]] = []
    for run, label in zip(runs, labels, strict=True):
        for tag, key in rate_labels(run).items():
            series = run.scalars[tag]
            by_key.setdefault(key, {})[label] = (series.steps, series.values)
            if tag not in logged.setdefault(key, []):
                logged[key].append(tag)
            if is_constant(series):
                constant.append((key, {"run": label, "regularizer": key[0], "rate": key[1],
                                       "value": series.values[0], "tag": tag}))
            else:
                moving.add(key)
    figures = {}
    for key, series_of_runs in by_key.items():
        if key not in moving:
            continue
        regularizer, rate = key
        name = f"rate_{_slug(regularizer)}_{_slug(rate)}.png"
        title = f"{regularizer} {rate} against the step"
        drawn = line_chart(series_of_runs, out / name, xlabel="step", ylabel=rate, title=title)
        figures[name] = {"title": title, "xlabel": "step", "ylabel": rate, "series": drawn,
                         "caption": f"Logged as {', '.join(logged[key])}."}
    return figures, [row for key, row in constant if key not in moving]


def _gap_columns(runs: Sequence[Run], metrics: Sequence[str], rows: list[dict[str, Any]],
                 columns: list[str]) -> None:
    """Add ``<metric> gap`` (the gap at the last epoch with one) after each metric's columns
    where some run has a gap."""
    for metric in metrics:
        last: list[float | None] = []
        for run in runs:
            twin = train_twin(run, metric) if metric in run.scalars else None
            gap = gap_per_epoch(run, metric, twin) if twin is not None else None
            last.append(gap.values[-1] if gap is not None else None)
        if all(value is None for value in last):
            continue
        column = f"{metric} gap"
        mine = [i for i, c in enumerate(columns) if c == metric or c.startswith(f"{metric} ")]
        columns.insert(mine[-1] + 1 if mine else len(columns), column)
        for row, value in zip(rows, last, strict=True):
            row[column] = value
    for index, row in enumerate(rows):
        rows[index] = {column: row.get(column) for column in columns}


def _report_md(runs: Sequence[Run], table: str, constant: list[dict[str, Any]],
               figures: dict[str, dict[str, Any]]) -> str:
    heading = runs[0].name if len(runs) == 1 else f"{len(runs)} runs"
    parts = [f"# Report: {heading}", table]
    if constant:
        columns = ["run", "regularizer", "rate", "value", "tag"]
        parts.append("### Constant rates (not plotted)\n\n" + markdown_table(constant, columns))
    for name, spec in figures.items():
        caption = spec.get("caption")
        parts.append(f"![{spec['title']}]({name})" + (f"\n\n*{caption}*" if caption else ""))
    return "\n\n".join(parts) + "\n"


def write_report(runs: Sequence[Run], out: str | Path, *, metrics: Sequence[str] | None = None,
                 label: str | None = None, train: bool = True) -> dict[str, Any]:
    """Write the report of ``runs`` into the folder ``out`` (see the module docstring) and
    return what ``report.json`` holds: ``runs``, ``columns``, ``rows``, ``figures``,
    ``constant_rates``.

    ``metrics``: the tags to plot and tabulate (default :func:`default_metrics`), each
    ``val/`` metric with its ``test/`` twin in the table where a run logged it. ``label``: a
    hyperparameter (:meth:`Run.hparam`) that names each run's line and gets a column.
    ``train``: draw each ``val/`` metric with its training twin and their gap (a training
    twin listed in ``metrics`` too is drawn there, not again alone); ``False``: validation
    lines only.

    Example::

        runs = find_runs(["runs/zaremba_small", "runs/zaremba_medium"])
        write_report(runs, "report", metrics=["val/ppl"], label="hidden_size")
    """
    if not runs:
        raise ValueError("write_report needs at least one run")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    metrics = list(metrics) if metrics else default_metrics(runs)
    unknown = [metric for metric in metrics if metric not in tags_of(runs)]
    if unknown:
        raise ValueError(f"no run logged {unknown}; the runs logged {tags_of(runs)}")
    if label is not None and all(hparam_or_none(run, label) is None for run in runs):
        keys = sorted(key for key in runs[0].hparams if not key.startswith("_"))
        raise KeyError(f"no run has a value for the hyperparameter {label!r} (hparams.yaml "
                       f"keys of {runs[0].name!r}: {keys})")
    labels = run_labels(runs, label)
    twins = {_base(twin) for metric in metrics for run in runs if train
             and metric in run.scalars and (twin := train_twin(run, metric))}
    figures: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        if _base(metric) not in twins:
            figures.update(_curves(runs, labels, metric, out, train))
    rate_figures, constant = _rates(runs, labels, out)
    figures.update(rate_figures)
    tags = tags_of(runs)
    tabulated = [*metrics, *(f"test/{m[4:]}" for m in metrics
                             if m.startswith("val/") and f"test/{m[4:]}" in tags)]
    rows, columns = summary_table(runs, tabulated, label)
    if train:
        _gap_columns(runs, metrics, rows, columns)
    table = markdown_table(rows, columns)
    (out / "summary.md").write_text(table + "\n")
    (out / "report.md").write_text(_report_md(runs, table, constant, figures))
    report = {"runs": [run.name for run in runs], "columns": columns, "rows": rows,
              "figures": figures, "constant_rates": constant}
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return report
