"""Final and best values: direction of each metric, epoch of the best, table rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_rnn_reg.report import Run, ScalarSeries, lower_is_better, summarize, summary_table
from lightning_rnn_reg.report.summary import run_labels

EPOCH = ScalarSeries((0, 10, 20, 30), (0.0, 1.0, 2.0, 3.0))


def _run(name: str, **scalars: tuple[float, ...]) -> Run:
    series = {tag.replace("__", "/"): ScalarSeries((9, 19, 29)[: len(v)], v)
              for tag, v in scalars.items()}
    return Run(name, Path(name), {"epoch": EPOCH, **series}, hparams={"lr": 1.0})


@pytest.mark.parametrize(("tag", "lower"), [("val/ppl", True), ("test/loss", True),
                                            ("val/bpc", True), ("val/f1", False),
                                            ("val/acc", False), ("val/f1_pn", False)])
def test_lower_is_better_for_losses_and_perplexities_only(tag, lower):
    assert lower_is_better(tag) is lower


def test_best_perplexity_is_the_minimum_and_its_epoch():
    summary = summarize(_run("a", val__ppl=(9.0, 7.0, 8.0)), "val/ppl")
    assert (summary.final, summary.best, summary.best_step, summary.best_epoch) == (
        8.0, 7.0, 19, 2)


def test_best_f1_is_the_maximum():
    assert summarize(_run("a", val__f1=(0.5, 0.7, 0.6)), "val/f1").best == 0.7


def test_summary_table_gives_a_metric_logged_once_one_column():
    rows, columns = summary_table([_run("a", test__ppl=(5.0,))], ["test/ppl"])
    assert columns == ["run", "last step", "epochs", "test/ppl"]
    assert rows[0]["test/ppl"] == 5.0


def test_summary_table_leaves_a_metric_a_run_did_not_log_empty():
    rows, _ = summary_table([_run("a", val__ppl=(9.0, 8.0)), _run("b")], ["val/ppl"])
    assert rows[1]["val/ppl final"] is None and rows[0]["val/ppl final"] == 8.0


def test_run_labels_add_the_name_where_labels_are_equal():
    assert run_labels([_run("a"), _run("b")], "lr") == ["lr=1.0 (a)", "lr=1.0 (b)"]
