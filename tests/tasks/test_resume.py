"""Exact resume: a training run killed with SIGKILL mid-epoch and resumed from its last
checkpoint ends with the same weights, bit for bit, as an uninterrupted run (CPU).

What must come back for that: the data position inside the epoch (and the variable-BPTT
windows of that epoch), the carried hidden state, the optimizer state, the rate schedule and
the mask generator's state.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.tasks.conftest import write_pattern_corpus

CHILD = Path(__file__).with_name("resume_child.py")


def _corpus(tmp_path: Path) -> Path:
    (tmp_path / "corpus").mkdir()
    return write_pattern_corpus(tmp_path / "corpus", sizes=(150, 30, 30))


def _run(task: str, data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, str(CHILD), task, str(data), str(out), *extra],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})


@pytest.mark.parametrize("task", ["lm", "classifier"])
def test_sigkilled_run_resumed_mid_epoch_ends_with_bit_identical_weights(
        task: str, tmp_path: Path) -> None:
    data = _corpus(tmp_path)
    full = _run(task, data, tmp_path / "full")
    assert full.returncode == 0, full.stderr[-3000:]
    ends = [int(line.split()[1]) for line in (tmp_path / "full" / "steps.txt").read_text()
            .splitlines()]
    assert len(ends) == 2 and ends[0] >= 6
    kill_at = ends[0] + 3  # inside the second epoch: its windows depend on the epoch
    killed = _run(task, data, tmp_path / "killed", "--kill-at", str(kill_at))
    assert killed.returncode == -9  # SIGKILL: nothing after the kill ran
    assert not (tmp_path / "killed" / "final.pt").exists()
    checkpoint = tmp_path / "killed" / "ckpt" / f"step={kill_at}.ckpt"
    assert checkpoint.is_file()
    assert not (tmp_path / "killed" / "ckpt" / f"step={kill_at + 1}.ckpt").exists()
    resumed = _run(task, data, tmp_path / "killed", "--resume", str(checkpoint))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "not resumable" not in resumed.stderr
    expected = torch.load(tmp_path / "full" / "final.pt", weights_only=True)
    got = torch.load(tmp_path / "killed" / "final.pt", weights_only=True)
    assert expected.keys() == got.keys()
    for name in expected:
        assert torch.equal(expected[name], got[name]), name
    # the resumed run took the remaining steps only
    assert (tmp_path / "killed" / "steps.txt").read_text().splitlines()[-1] == \
        (tmp_path / "full" / "steps.txt").read_text().splitlines()[-1]


def test_a_resume_that_ignored_the_data_position_would_differ(tmp_path: Path) -> None:
    """The check above can fail: weights after different data differ."""
    data = _corpus(tmp_path)
    a = _run("classifier", data, tmp_path / "a")
    assert a.returncode == 0, a.stderr[-3000:]
    checkpoint = tmp_path / "a" / "ckpt" / "step=3.ckpt"
    state = torch.load(checkpoint, weights_only=True)
    state["TemporalOrder"]["train_position"]["batches"] = 0  # forget the position
    torch.save(state, tmp_path / "forgot.ckpt")
    b = _run("classifier", data, tmp_path / "b", "--resume", str(tmp_path / "forgot.ckpt"))
    assert b.returncode == 0, b.stderr[-3000:]
    first = torch.load(tmp_path / "a" / "final.pt", weights_only=True)
    second = torch.load(tmp_path / "b" / "final.pt", weights_only=True)
    assert any(not torch.equal(first[k], second[k]) for k in first)
