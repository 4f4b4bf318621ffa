"""``write_report``: learning curves, regularizer rates and a summary table of runs, in one
folder.

For runs read from TensorBoard event files (:mod:`~lightning_rnn_reg.report.events`) it
writes to ``out``:

* ``curve_<metric>_step.png`` and ``curve_<metric>_epoch.png``: each validation metric
  against the global step and against the epoch, one line per run;
* ``rate_<regularizer>_<rate>.png``: each regularizer's rate against the step, one line per
  run that has it (the task's ``reg/<index>_<Class>/<rate>`` tags; the
  ``<prefix>/rate/...`` tags of :class:`~lightning_rnn_reg.callbacks.RegularizerMonitor`
  for a run without them);
* ``summary.md``: the final and best value of each metric per run
  (:mod:`~lightning_rnn_reg.report.summary`);
* ``report.md``: the table and every figure, to read in one place;
* ``report.json``: the same table and, for every figure, the series it draws (as read back
  from the plotted lines), for scripts and tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_rnn_reg.report.events import Run, tags_of
from lightning_rnn_reg.report.plots import Series, line_chart
from lightning_rnn_reg.report.summary import hparam_or_none, run_labels, summary_table
from lightning_rnn_reg.report.tables import markdown_table

#: validation metrics plotted and tabulated by default, those any run logged
DEFAULT_METRICS = ("val/ppl", "val/bpc", "val/f1", "val/f1_pn", "val/acc", "val/loss")


def default_metrics(runs: Sequence[Run]) -> list[str]:
    """The :data:`DEFAULT_METRICS` logged by any run, else every ``val/`` tag."""
    tags = tags_of(runs)
    chosen = [tag for tag in DEFAULT_METRICS if tag in tags]
    return chosen or [tag for tag in tags if tag.startswith("val/")]


def rate_tags(run: Run) -> dict[str, str]:
    """``{"<regularizer>/<rate>": tag}`` of the run's regularizer rates (see the module
    docstring for the two sources)."""
    task = {tag[len("reg/"):]: tag for tag in run.scalars
            if tag.startswith("reg/") and tag.count("/") == 2}
    if task:
        return task
    return {"/".join(parts[2:]): tag for tag in run.scalars
            if len(parts := tag.split("/")) == 4 and parts[1] == "rate"}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")


def _curves(runs: Sequence[Run], labels: Sequence[str], metric: str, out: Path,
            ) -> dict[str, dict[str, Any]]:
    figures: dict[str, dict[str, Any]] = {}
    having = [(run, label) for run, label in zip(runs, labels, strict=True)
              if metric in run.scalars]
    axes: dict[str, Series] = {
        "step": {label: (run.scalars[metric].steps, run.scalars[metric].values)
                 for run, label in having}}
    by_epoch = {label: (run.epochs(metric), run.scalars[metric].values)
                for run, label in having if run.epochs(metric)}
    if by_epoch:
        axes["epoch"] = by_epoch
    for xlabel, series in axes.items():
        name = f"curve_{_slug(metric)}_{xlabel}.png"
        title = f"{metric} against the {xlabel}"
        drawn = line_chart(series, out / name, xlabel=xlabel, ylabel=metric, title=title)
        figures[name] = {"title": title, "xlabel": xlabel, "ylabel": metric, "series": drawn}
    return figures


def _rates(runs: Sequence[Run], labels: Sequence[str], out: Path) -> dict[str, dict[str, Any]]:
    by_key: dict[str, dict[str, tuple[Sequence[float], Sequence[float]]]] = {}
    for run, label in zip(runs, labels, strict=True):
        for key, tag in rate_tags(run).items():
            by_key.setdefault(key, {})[label] = (run.scalars[tag].steps, run.scalars[tag].values)
    figures = {}
    for key in sorted(by_key):
        name = f"rate_{_slug(key)}.png"
        title = f"{key} against the step"
        drawn = line_chart(by_key[key], out / name, xlabel="step", ylabel=key, title=title)
        figures[name] = {"title": title, "xlabel": "step", "ylabel": key, "series": drawn}
    return figures


def write_report(runs: Sequence[Run], out: str | Path, *, metrics: Sequence[str] | None = None,
                 label: str | None = None) -> dict[str, Any]:
    """Write the report of ``runs`` into the folder ``out`` (see the module docstring) and
    return what ``report.json`` holds: ``runs``, ``columns``, ``rows``, ``figures``.

    ``metrics``: the tags to plot and tabulate (default :func:`default_metrics`), each
    ``val/`` metric with its ``test/`` twin in the table where a run logged it. ``label``: a
    hyperparameter (:meth:`Run.hparam`) that names each run's line and gets a column.

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
    figures: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        figures.update(_curves(runs, labels, metric, out))
    figures.update(_rates(runs, labels, out))
    tags = tags_of(runs)
    tabulated = [*metrics, *(f"test/{m[4:]}" for m in metrics
                             if m.startswith("val/") and f"test/{m[4:]}" in tags)]
    rows, columns = summary_table(runs, tabulated, label)
    table = markdown_table(rows, columns)
    (out / "summary.md").write_text(table + "\n")
    images = "\n\n".join(f"![{spec['title']}]({name})" for name, spec in figures.items())
    (out / "report.md").write_text(f"# Report: {len(runs)} run(s)\n\n{table}\n\n{images}\n")
    report = {"runs": [run.name for run in runs], "columns": columns, "rows": rows,
              "figures": figures}
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return report
