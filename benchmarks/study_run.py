"""One run of the regularizer study through the real CLI, resumable: ``fit`` then ``test`` at
the best-validation checkpoint, each a ``python -m lightning_rnn_reg`` subprocess with one
thread, and the result file written last.

A run's folder (``<work>/<task>/<config>__seed<k>/``) holds ``fit.yaml`` / ``test.yaml``,
``checkpoints/`` (``best.ckpt``, ``last.ckpt``), the TensorBoard logs under ``fit/`` and
``test/``, the subprocess logs and ``state.json`` (finished steps and wall time so far). An
interrupted fit resumes from ``last.ckpt`` (``--ckpt_path last``); a run without one starts
over from an empty folder.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from study_plan import RunSpec, describe

from lightning_rnn_reg.report import find_runs
from lightning_rnn_reg.report.pairs import train_per_epoch, train_twin, val_per_epoch

REPO = Path(__file__).resolve().parents[1]
CALLBACKS = "lightning.pytorch.callbacks"


def data_root() -> str:
    """``$LRR_DATA``, else ``<repo>/../shared/data`` (absolute: runs start in their folder)."""
    return os.environ.get("LRR_DATA") or str((REPO.parent / "shared" / "data").resolve())


def environment() -> dict[str, str]:
    """One thread per run, the repository importable, the data found from any folder."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONWARNINGS": "ignore", "PYTHONPATH": path, "LRR_DATA": data_root()}


def run_config(run: RunSpec, folder: Path, logger_name: str) -> dict[str, Any]:
    """The full LightningCLI configuration of ``run`` (logs to ``folder/<logger_name>``)."""
    task = run.task
    checkpoints = str(folder / "checkpoints")
    callbacks = [
        {"class_path": f"{CALLBACKS}.ModelCheckpoint",
         "init_args": {"dirpath": checkpoints, "filename": "best", "monitor": task.monitor,
                       "mode": task.mode, "save_top_k": 1}},
        {"class_path": f"{CALLBACKS}.EarlyStopping",
         "init_args": {"monitor": task.monitor, "mode": task.mode,
                       "patience": task.patience}},
        {"class_path": "lightning_rnn_reg.callbacks.last_checkpoint.LastCheckpoint",
         "init_args": {"dirpath": checkpoints, "every_n_train_steps": 200}},
    ]
    trainer = {"log_every_n_steps": 20, **task.trainer, "enable_progress_bar": False,
               "enable_model_summary": False, "default_root_dir": str(folder),
               "logger": {"class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                          "init_args": {"save_dir": str(folder), "name": logger_name}},
               "callbacks": callbacks}
    model = {**task.model, "regularizers": [dict(spec) for spec in run.regularizers]}
    return {"seed_everything": run.seed, "trainer": trainer,
            "model": {"class_path": task.model_class, "init_args": model},
            "data": {"class_path": task.data_class, "init_args": dict(task.data)}}


def _write_yaml(path: Path, config: dict[str, Any]) -> None:
    import yaml

    path.write_text(yaml.safe_dump(config, sort_keys=False))


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "lightning_rnn_reg", *args]


def _call(command: list[str], folder: Path, log_name: str) -> float:
    """Run ``command`` in ``folder`` (output to ``folder/<log_name>``); its wall time.
    ``RuntimeError`` with the log's tail when it fails."""
    start = time.monotonic()
    with open(folder / log_name, "a") as log:
        log.write(f"$ {shlex.join(command)}\n")
        log.flush()
        done = subprocess.run(command, cwd=folder, env=environment(), stdout=log,
                              stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = (folder / log_name).read_text()[-2000:]
        raise RuntimeError(f"{shlex.join(command[1:])} failed ({done.returncode}) in "
                           f"{folder}:\n{tail}")
    return time.monotonic() - start


def _state(folder: Path) -> dict[str, Any]:
    path = folder / "state.json"
    return json.loads(path.read_text()) if path.is_file() else {"wall_s": 0.0}


def _save_state(folder: Path, state: dict[str, Any]) -> None:
    (folder / "state.json").write_text(json.dumps(state, indent=1))


def _prepare(run: RunSpec, folder: Path) -> bool:
    """Write the configs; start over unless a ``last.ckpt`` or a finished fit is there.
    Whether the fit resumes."""
    resumable = (folder / "checkpoints" / "last.ckpt").is_file()
    if not resumable and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _write_yaml(folder / "fit.yaml", run_config(run, folder, "fit"))
    _write_yaml(folder / "test.yaml", run_config(run, folder, "test"))
    return resumable


def execute(run: RunSpec, folder: Path, result_path: Path) -> dict[str, Any]:
    """Fit (or resume), test at ``best.ckpt``, and write the result file; the result."""
    resumed = _prepare(run, folder)
    state = _state(folder)
    fit = _cli("fit", "--config", "fit.yaml", *(["--ckpt_path", "last"] if resumed else []))
    if not state.get("fit_done"):
        state["wall_s"] += _call(fit, folder, "fit.log")
        state.update(fit_done=True, resumed=resumed or state.get("resumed", False))
        _save_state(folder, state)
    best = folder / "checkpoints" / "best.ckpt"
    if not best.is_file():
        raise RuntimeError(f"no best.ckpt in {best.parent} after the fit")
    shutil.rmtree(folder / "test", ignore_errors=True)
    test = _cli("test", "--config", "test.yaml", "--ckpt_path", str(best))
    state["wall_s"] += _call(test, folder, "test.log")
    _save_state(folder, state)
    result = collect(run, folder, state, [shlex.join(fit), shlex.join(test)])
    result_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = result_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(result_path)  # atomic: a result file is always complete
    return result


def _merged(runs: list[Any], pick: Any, tag: Any) -> dict[int, float]:
    """``epoch -> value`` over the fit's logger versions (a resumed run's later wins);
    ``tag``: a tag, or a function of the run that gives it."""
    merged: dict[int, float] = {}
    for logged in runs:
        name = tag(logged) if callable(tag) else tag
        if name is None or name not in logged.scalars:
            continue
        series = pick(logged, name)
        if series is not None:
            merged.update(zip(series.epochs, series.values, strict=True))
    return dict(sorted(merged.items()))


def curves(folder: Path, monitor: str) -> dict[str, dict[int, float]]:
    """Per epoch: the monitored metric, ``val/loss`` and its training twin (``train/ce``)."""
    runs = sorted(find_runs([folder / "fit"]), key=lambda r: r.path.name)
    return {"monitor": _merged(runs, val_per_epoch, monitor),
            "val_loss": _merged(runs, val_per_epoch, "val/loss"),
            "train_loss": _merged(runs, train_per_epoch,
                                  lambda r: train_twin(r, "val/loss"))}


def versions() -> dict[str, str]:
    import lightning
    import torch

    import lightning_rnn_reg

    return {"torch": torch.__version__, "lightning": lightning.__version__,
            "lightning_rnn_reg": lightning_rnn_reg.__version__,
            "python": platform.python_version()}


def collect(run: RunSpec, folder: Path, state: dict[str, Any],
            commands: list[str]) -> dict[str, Any]:
    """The result record of a finished run (see ``study.py``'s docstring for the fields)."""
    task = run.task
    per_epoch = curves(folder, task.monitor)
    monitored = per_epoch["monitor"]
    if not monitored:
        raise RuntimeError(f"no {task.monitor} logged under {folder / 'fit'}")
    pick = min if task.mode == "min" else max
    best_epoch = pick(monitored, key=monitored.__getitem__)
    tested = find_runs([folder / "test"])[-1]
    test_all = {tag: s.last for tag, s in tested.scalars.items() if tag.startswith("test/")}
    return {
        "task": task.name, "config": run.config, "phase": run.phase, "rate_scale": run.scale,
        "seed": run.seed, "regularizers": list(run.regularizers),
        "regularizers_text": describe(run.regularizers),
        "metrics": {"monitor": task.monitor, "best_val": monitored[best_epoch],
                    "test_metric": task.test_metric,
                    "test": test_all.get(task.test_metric), "test_all": test_all,
                    "best_epoch": best_epoch, "epochs_run": max(monitored)},
        "curves": {name: {str(k): v for k, v in values.items()}
                   for name, values in per_epoch.items()},
        "budget": {**task.trainer, "patience": task.patience},
        "model": {"class_path": task.model_class, "init_args": task.model},
        "wall_time_s": round(state["wall_s"], 1), "resumed": state.get("resumed", False),
        "versions": versions(), "command": commands, "run_folder": str(folder),
    }
