"""Final and best value of each metric per run, and the rows of the summary table.

*Best* is the minimum for metrics where lower is better (a tag whose last part is one of
:data:`LOWER_IS_BETTER`: loss, perplexity, bits per character, cross-entropy) and the
maximum otherwise (F1, accuracy, precision, recall, ...). *Final* is the value logged last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lightning_rnn_reg.report.events import Run

LOWER_IS_BETTER = ("loss", "ppl", "bpc", "ce", "nll")


def lower_is_better(tag: str) -> bool:
    """Whether the best value of ``tag`` is its minimum (``val/ppl``: yes, ``val/f1``: no)."""
    return tag.rsplit("/", 1)[-1] in LOWER_IS_BETTER


@dataclass(frozen=True)
class MetricSummary:
    """A metric of one run: its final value, its best value and where the best was logged."""

    final: float
    best: float
    best_step: int
    best_epoch: int | None


def summarize(run: Run, tag: str) -> MetricSummary:
    """:class:`MetricSummary` of ``tag`` in ``run`` (the first point among equal bests)."""
    series = run.scalars[tag]
    pick = min if lower_is_better(tag) else max
    index = pick(range(len(series.values)), key=series.values.__getitem__)
    epochs = run.epochs(tag)
    return MetricSummary(series.last, series.values[index], series.steps[index],
                         epochs[index] if epochs else None)


def hparam_or_none(run: Run, key: str) -> Any:
    """The run's hyperparameter ``key`` (:meth:`Run.hparam`), ``None`` where it has none."""
    try:
        return run.hparam(key)
    except KeyError:
        return None


def run_label(run: Run, key: str | None) -> str:
    """``key=value`` of the run's hyperparameter ``key`` (``key=—`` where the run has none),
    or the run's name without a key."""
    if key is None:
        return run.name
    value = hparam_or_none(run, key)
    return f"{key}={'—' if value is None else value}"


def run_labels(runs: Sequence[Run], key: str | None) -> list[str]:
    """:func:`run_label` of each run, the run's name added where two labels are equal."""
    labels = [run_label(run, key) for run in runs]
    return [label if labels.count(label) == 1 else f"{label} ({run.name})"
            for label, run in zip(labels, runs, strict=True)]


def _last_step(run: Run) -> int:
    return max((s.steps[-1] for s in run.scalars.values() if s.steps), default=0)


def summary_table(runs: Sequence[Run], metrics: Sequence[str], label: str | None = None,
                  ) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows and columns of the summary: run, the ``label`` hyperparameter, last step and
    epoch, then per metric its final value, best value and the best's epoch; a metric that
    no run logged more than once (a test metric) gets one column, its value."""
    columns = ["run", *([label] if label else []), "last step", "epochs"]
    rows: list[dict[str, Any]] = []
    for run in runs:
        epoch = run.scalars.get("epoch")
        row: dict[str, Any] = {"run": run.name, "last step": _last_step(run),
                               "epochs": 1 + int(epoch.last) if epoch else None}
        if label:
            row[label] = hparam_or_none(run, label)
        rows.append(row)
    for tag in metrics:
        present = [run for run in runs if tag in run.scalars]
        if not present:
            continue
        if all(len(run.scalars[tag].values) == 1 for run in present):
            columns.append(tag)
        else:
            columns += [f"{tag} final", f"{tag} best", f"{tag} best epoch"]
        for run, row in zip(runs, rows, strict=True):
            if tag not in run.scalars:
                continue
            summary = summarize(run, tag)
            row.update({tag: summary.final, f"{tag} final": summary.final,
                        f"{tag} best": summary.best, f"{tag} best epoch": summary.best_epoch})
    return [{column: row.get(column) for column in columns} for row in rows], columns
