"""benchmarks/memory.py: one real (tiny) Temporal Order run through its training path, and
its table and chart through lightning_rnn_reg.report (the full benchmark is not run here)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

MEMORY = Path(__file__).resolve().parents[1] / "benchmarks" / "memory.py"


@pytest.fixture(scope="module")
def memory():
    spec = importlib.util.spec_from_file_location("memory_benchmark", MEMORY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_one_tiny_run_scores_test_and_training_accuracy(memory):
    budget = memory.Budget(hidden=8, embedding=4, train_batches=3, batch_size=8, epochs=1,
                           test_size=40)
    result = memory.run_one("CellDropout per-sequence (Moon)", 9, 1, budget)
    for score in (result.test_acc, result.train_acc_masks_on, result.train_acc_eval):
        assert 0.0 <= score <= 1.0
    assert result.scheme == "CellDropout per-sequence (Moon)" and result.length == 9


def _results(memory):
    return [memory.Result("none", 15, 1, 1.0, 1.0, 1.0, 60.0),
            memory.Result("none", 30, 1, 0.5, 0.75, 0.625, 60.0),
            memory.Result("CellDropout per-sequence (Moon)", 15, 1, 0.25, 0.5, 0.125, 60.0)]


def test_table_has_a_row_per_scheme_run_and_the_budget(memory):
    text = memory.table(_results(memory), memory.Budget(), [1])
    lines = text.splitlines()
    assert lines[0].startswith("| scheme (p = 0.5) | short (15): test acc |")
    assert lines[2] == ("| none | 100.0% | 100.0% | 100.0% | 50.0% | 75.0% | 62.5% |")
    assert lines[3].startswith("| CellDropout per-sequence (Moon) | 25.0% | 50.0% | 12.5% | —")
    assert "30 epochs of 200 batches x 32" in text


def test_plot_draws_mean_test_accuracy_per_scheme_and_length(memory, tmp_path):
    pytest.importorskip("matplotlib")
    drawn = memory.plot(_results(memory), str(tmp_path / "memory.png"))
    assert drawn == {"length 15": {"none": 1.0, "CellDropout per-sequence (Moon)": 0.25},
                     "length 30": {"none": 0.5, "CellDropout per-sequence (Moon)": 0.0}}
    assert (tmp_path / "memory.png").stat().st_size > 1000
