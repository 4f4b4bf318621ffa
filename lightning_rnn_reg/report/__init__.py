"""Reports of runs and benchmarks: TensorBoard event files read back, PNG charts, markdown
tables. ``lightning-rnn-reg report`` is built from these (:func:`train_twin` and
:func:`gap_per_epoch` pair validation with training metrics, :func:`rate_labels` names the
regularizer rates); the benchmarks write their tables and bar charts with
:func:`write_table` / :func:`markdown_table` and :func:`bar_chart` (:func:`error_bar_chart`:
means with error bars, e.g. over seeds).
matplotlib is optional (``pip install "lightning-rnn-reg[report]"``) and imported on first use.
"""

from lightning_rnn_reg.report.events import Run, ScalarSeries, find_runs, read_run
from lightning_rnn_reg.report.pairs import gap_per_epoch, train_twin
from lightning_rnn_reg.report.plots import (
    MissingPlotDependencyError,
    bar_chart,
    curve_chart,
    error_bar_chart,
    line_chart,
)
from lightning_rnn_reg.report.rates import rate_labels
from lightning_rnn_reg.report.summary import lower_is_better, summarize, summary_table
from lightning_rnn_reg.report.tables import format_value, markdown_table, write_table
from lightning_rnn_reg.report.writer import write_report

__all__ = [
    "MissingPlotDependencyError",
    "Run",
    "ScalarSeries",
    "bar_chart",
    "curve_chart",
    "error_bar_chart",
    "find_runs",
    "format_value",
    "gap_per_epoch",
    "line_chart",
    "lower_is_better",
    "markdown_table",
    "rate_labels",
    "read_run",
    "summarize",
    "summary_table",
    "train_twin",
    "write_report",
    "write_table",
]
