"""Ctrl-C and ``--ckpt_path last`` through the real ``lightning-rnn-reg`` command: a fit
interrupted by SIGINT mid-epoch and resumed with ``--ckpt_path last`` ends with the weights of
an uninterrupted run, bit for bit; with nothing to resume, ``last`` fails naming the folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.tasks.conftest import write_pattern_corpus

#: A callback module in the run's folder (importable because the CLI, like ``python -m``,
#: puts the working directory on sys.path): it records each finished step and slows the
#: steps down so that SIGINT lands mid-epoch.
STEP_FILE_MODULE = '''
import time
from lightning.pytorch.callbacks import Callback


class StepFile(Callback):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        with open("steps.txt", "a") as f:
            f.write(f"{trainer.current_epoch} {trainer.global_step}\\n")
        time.sleep(0.03)
'''

CONFIG = """
seed_everything: 7
trainer:
  max_epochs: 2
  limit_val_batches: 2
  enable_progress_bar: false
  enable_model_summary: false
  log_every_n_steps: 5
  callbacks:
    - class_path: step_file.StepFile
model:
  class_path: lightning_rnn_reg.LanguageModel
  init_args:
    embedding_dim: 12
    hidden_size: 12
    num_layers: 2
    lr: 5.0
    regularizers:
      - class_path: lightning_rnn_reg.EmbeddingDropout
        init_args: {{p: 0.1}}
      - class_path: lightning_rnn_reg.LockedDropout
        init_args: {{p: 0.3, at: between}}
      - class_path: lightning_rnn_reg.UpdateDropout
        init_args: {{p: 0.2}}
data:
  class_path: lightning_rnn_reg.data.TextCorpus
  init_args:
    data_dir: {data}
    batch_size: 8
    eval_batch_size: 4
    bptt: 10
"""


def _command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "lightning_rnn_reg", "fit", "--config", "config.yaml", *extra]


def _environment() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[1])
    return {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}


def _run_folder(root: Path, name: str, data: Path) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "config.yaml").write_text(CONFIG.format(data=data))
    (folder / "step_file.py").write_text(STEP_FILE_MODULE)
    return folder


def _steps(folder: Path) -> list[tuple[int, int]]:
    path = folder / "steps.txt"
    if not path.exists():
        return []
    return [tuple(map(int, line.split())) for line in path.read_text().splitlines()
            if len(line.split()) == 2]  # type: ignore[misc]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True, map_location="cpu")["state_dict"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("cli_resume")
    (root / "corpus").mkdir()
    data = write_pattern_corpus(root / "corpus", sizes=(400, 40, 40))
    full = _run_folder(root, "full", data)
    done = subprocess.run(_command(), cwd=full, env=_environment(), capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    per_epoch = max(step for epoch, step in _steps(full) if epoch == 0)
    total = _steps(full)[-1][1]

    cut = _run_folder(root, "interrupted", data)
    target = per_epoch + per_epoch // 2  # inside the second epoch
    child = subprocess.Popen(_command(), cwd=cut, env=_environment(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and child.poll() is None:
        steps = _steps(cut)
        if steps and steps[-1][1] >= target:
            break
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    _, interrupted_err = child.communicate(timeout=300)
    interrupted_steps = _steps(cut)
    resumed = subprocess.run(_command("--ckpt_path", "last"), cwd=cut, env=_environment(),
                             capture_output=True, text=True, timeout=600)
    return {"full": full, "cut": cut, "per_epoch": per_epoch, "total": total,
            "interrupted_code": child.returncode, "interrupted_err": interrupted_err,
            "interrupted_steps": interrupted_steps, "resumed": resumed}


def test_sigint_stops_the_fit_with_a_failure_status_after_saving_last_ckpt(runs):
    assert runs["interrupted_code"] == 1, runs["interrupted_err"][-3000:]
    last = runs["cut"] / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt"
    saved_step = torch.load(last, weights_only=True, map_location="cpu")["global_step"]
    stopped_at = runs["interrupted_steps"][-1][1]
    assert saved_step == stopped_at  # the checkpoint of the last finished step
    assert runs["per_epoch"] < saved_step < runs["total"]  # mid-epoch, mid-run


def test_resume_with_ckpt_path_last_takes_only_the_remaining_steps(runs):
    assert runs["resumed"].returncode == 0, runs["resumed"].stderr[-3000:]
    steps = [step for _, step in _steps(runs["cut"])]
    stopped_at = runs["interrupted_steps"][-1][1]
    resumed_steps = steps[len(runs["interrupted_steps"]):]
    assert resumed_steps == list(range(stopped_at + 1, runs["total"] + 1))


def test_resumed_run_ends_with_the_uninterrupted_weights_bit_for_bit(runs):
    assert runs["resumed"].returncode == 0, runs["resumed"].stderr[-3000:]
    expected = _weights(runs["full"] / "lightning_logs" / "version_0" / "checkpoints"
                        / "last.ckpt")
    got = _weights(runs["cut"] / "lightning_logs" / "version_1" / "checkpoints" / "last.ckpt")
    assert expected.keys() == got.keys()
    for name, value in expected.items():
        assert torch.equal(value, got[name]), name


def test_ckpt_path_last_with_nothing_to_resume_fails_naming_the_folder(tmp_path):
    (tmp_path / "corpus").mkdir()
    folder = _run_folder(tmp_path, "empty", write_pattern_corpus(tmp_path / "corpus"))
    done = subprocess.run(_command("--ckpt_path", "last"), cwd=folder, env=_environment(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    last_line = done.stderr.strip().splitlines()[-1]
    assert "no last.ckpt in" in last_line
    assert str(folder / "lightning_logs") in last_line
    assert "--fresh_if_missing" in last_line
    assert not (folder / "lightning_logs").exists()


def test_fresh_if_missing_starts_from_scratch(tmp_path):
    (tmp_path / "corpus").mkdir()
    folder = _run_folder(tmp_path, "fresh", write_pattern_corpus(tmp_path / "corpus",
                                                                 sizes=(60, 20, 20)))
    done = subprocess.run(_command("--ckpt_path", "last", "--fresh_if_missing", "true",
                                   "--trainer.max_epochs", "1"),
                          cwd=folder, env=_environment(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (folder / "lightning_logs" / "version_0" / "checkpoints" / "last.ckpt").is_file()
