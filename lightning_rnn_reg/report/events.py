"""Runs read back from TensorBoard event files: every scalar series of a run, its
hyperparameters, and the epoch of each logged step.

A *run* is one folder that holds ``events.out.tfevents.*`` files (Lightning writes them to
``<root>/lightning_logs/version_<n>/``); several files in one folder (a resumed fit) are read
as one run, in order, through TensorBoard's ``EventAccumulator``. Next to them Lightning
writes ``hparams.yaml`` (the module's hyperparameters) and LightningCLI ``config.yaml`` (the
whole configuration); :meth:`Run.hparam` looks a key up in the first, then as a dotted path in
the second (``model.init_args.regularizers.0.init_args.p``).

Epochs: Lightning logs the scalar ``epoch`` (0-based) with the other metrics, at the same
global step; the epoch of a point at step ``s`` is ``1 +`` the last ``epoch`` value logged at
a step ``<= s``, so the validation after the first epoch sits at epoch 1.
"""

from __future__ import annotations

import bisect
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

EVENT_GLOB = "events.out.tfevents.*"
_MISSING = object()


@dataclass(frozen=True)
class ScalarSeries:
    """One scalar tag of a run: the global steps and values, in logging order."""

    steps: tuple[int, ...]
    values: tuple[float, ...]

    @property
    def last(self) -> float:
        """The value logged last."""
        return self.values[-1]


@dataclass
class Run:
    """A run's scalars (``tag -> ScalarSeries``), hyperparameters and configuration.

    Example::

        run = read_run("runs/zaremba_small/lightning_logs/version_0", name="zaremba_small")
        run.scalars["val/ppl"].values, run.epochs("val/ppl"), run.hparam("lr")
    """

    name: str
    path: Path
    scalars: dict[str, ScalarSeries]
    hparams: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def epochs(self, tag: str) -> list[int]:
        """The epoch (1-based, see the module docstring) of every point of ``tag``; ``[]`` if
        the run never logged ``epoch``."""
        logged = self.scalars.get("epoch")
        if logged is None:
            return []
        steps = list(logged.steps)
        epochs = []
        for step in self.scalars[tag].steps:
            index = bisect.bisect_right(steps, step) - 1
            epochs.append(1 + int(logged.values[max(index, 0)]))
        return epochs

    def hparam(self, key: str) -> Any:
        """``hparams.yaml[key]``, else the dotted path ``key`` in ``config.yaml`` (list items
        by index); ``KeyError`` naming the run if neither has it."""
        if key in self.hparams:
            return self.hparams[key]
        value = _dotted(self.config, key)
        if value is _MISSING:
            raise KeyError(f"run {self.name!r} has no hyperparameter {key!r} (hparams.yaml "
                           f"keys: {sorted(k for k in self.hparams if not k.startswith('_'))})")
        return value


def _dotted(tree: Any, key: str) -> Any:
    for part in key.split("."):
        if isinstance(tree, dict) and part in tree:
            tree = tree[part]
        elif isinstance(tree, list) and part.isdigit() and int(part) < len(tree):
            tree = tree[int(part)]
        else:
            return _MISSING
    return tree


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        warnings.warn(f"could not read {path}: {error}", stacklevel=3)
        return {}
    return loaded if isinstance(loaded, dict) else {}


def read_run(folder: str | Path, name: str | None = None) -> Run:
    """Every scalar of the event files in ``folder`` (not its subfolders), with the
    ``hparams.yaml`` and ``config.yaml`` found there. ``name`` defaults to the folder name."""
    from tensorboard.backend.event_processing.event_accumulator import (
        SCALARS,
        EventAccumulator,
    )

    folder = Path(folder)
    if not any(folder.glob(EVENT_GLOB)):
        raise FileNotFoundError(f"no TensorBoard event file ({EVENT_GLOB}) in {folder}")
    accumulator = EventAccumulator(str(folder), size_guidance={SCALARS: 0})  # 0: keep all
    accumulator.Reload()
    scalars = {}
    for tag in accumulator.Tags()["scalars"]:
        events = accumulator.Scalars(tag)
        scalars[tag] = ScalarSeries(tuple(e.step for e in events),
                                    tuple(float(e.value) for e in events))
    return Run(name or folder.name, folder, scalars, _read_yaml(folder / "hparams.yaml"),
               _read_yaml(folder / "config.yaml"))


def _root_dir_chosen(folder: Path) -> bool:
    """Whether the folder above ``lightning_logs`` names the run: LightningCLI's
    ``config.yaml`` in ``folder`` sets ``trainer.default_root_dir`` or a logger's
    ``save_dir``; without ``config.yaml`` it cannot tell and says yes. A fit without them
    logs to the working directory, whose name says nothing of the run."""
    config = _read_yaml(folder / "config.yaml")
    trainer = config.get("trainer")
    if not config or not isinstance(trainer, dict):
        return True
    if trainer.get("default_root_dir"):
        return True
    loggers = trainer.get("logger")
    for logger in loggers if isinstance(loggers, list) else [loggers]:
        init_args = logger.get("init_args") if isinstance(logger, dict) else None
        if isinstance(init_args, dict) and init_args.get("save_dir") not in (None, "", "."):
            return True
    return False


def _short_name(root: Path, folder: Path) -> str:
    """The part of ``folder`` below ``root`` without ``lightning_logs`` and ``version_<n>``
    parts; when nothing is left, the run's own name: for ``<name>/version_<n>`` the logger's
    ``<name>``, and for ``lightning_logs/version_<n>`` ``root``'s name where it was named
    (not ``.``), else the folder above ``lightning_logs`` where that was the run's chosen
    root folder (:func:`_root_dir_chosen`), else ``version_<n>`` (the working directory of a
    fit without ``default_root_dir`` does not name the run)."""
    parts = [part for part in folder.relative_to(root).parts
             if part != "lightning_logs" and not part.startswith("version_")]
    if parts:
        return "/".join(parts)
    run, base = folder.resolve(), root.resolve()
    if not run.name.startswith("version_"):
        return base.name
    if run.parent.name != "lightning_logs":
        return run.parent.name  # a logger given a name: <save_dir>/<name>/version_<n>
    named = base == run.parent.parent and root.name not in ("", "..")
    return run.parent.parent.name if named or _root_dir_chosen(folder) else run.name


def find_runs(roots: Iterable[str | Path]) -> list[Run]:
    """The runs under each of ``roots``: every folder at or below a root that holds event
    files is one run. A run is named by its path below the root without the
    ``lightning_logs/version_<n>`` parts (the root's own name for a root that is one run:
    ``runs/zaremba_small`` reads ``zaremba_small``); names that would clash keep their full
    path; ``lightning_logs/version_<n>`` of a fit that chose no root folder reads
    ``version_<n>`` (see :func:`_short_name`). Raises ``FileNotFoundError`` for a root
    without any event file."""
    found: list[tuple[Path, str]] = []
    for root in map(Path, roots):
        folders = sorted({path.parent for path in root.rglob(EVENT_GLOB)})
        if not folders:
            raise FileNotFoundError(f"no TensorBoard event file ({EVENT_GLOB}) under {root}")
        found += [(folder, _short_name(root, folder)) for folder in folders]
    names = [name for _, name in found]
    return [read_run(folder, name if names.count(name) == 1 else str(folder))
            for folder, name in found]


def tags_of(runs: Sequence[Run]) -> list[str]:
    """Every scalar tag logged by any of ``runs``, sorted."""
    return sorted({tag for run in runs for tag in run.scalars})
