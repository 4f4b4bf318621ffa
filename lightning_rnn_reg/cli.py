"""The ``lightning-rnn-reg`` command and :class:`RecurrentCLI`, a LightningCLI for recurrent
task and data modules (ours or the user's).

``lightning-rnn-reg fit --config examples/configs/quickstart.yaml`` (also ``validate``,
``test``, ``predict``), and ``lightning-rnn-reg report RUN_DIR... --out DIR`` (plots and a
table from TensorBoard event files, :mod:`lightning_rnn_reg.report.command`). Model and
data are chosen by ``class_path``; the sizes the data determines (:data:`LINKED_SIZES`:
vocabulary, tag set, classes, character vocabulary) are linked from the data module to every
model argument of the same name, so a config never states them; regularizers and callbacks
are lists of ``class_path`` objects. Every fit keeps a resumable ``last.ckpt``
(:class:`~lightning_rnn_reg.callbacks.LastCheckpoint`), and ``--ckpt_path last`` resumes the
newest one of earlier runs or fails naming the folder it searched. A ``--ckpt_path`` file is
checked before the run starts (plain data only, saved by the model's task class;
:mod:`lightning_rnn_reg.tasks.checkpoint`). Configuration errors print their cause in a few
lines and exit with status 2 (``--debug`` or ``LRR_DEBUG=1``: the full traceback).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from pathlib import Path
from typing import Any

from lightning.pytorch import LightningDataModule, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from lightning_rnn_reg.callbacks.last_checkpoint import LastCheckpoint
from lightning_rnn_reg.cli_errors import ResumeError, short_error
from lightning_rnn_reg.tasks.base import LINKED_SIZES, RecurrentTask, constructor_names
from lightning_rnn_reg.tasks.checkpoint import CheckpointError, check_task, read_checkpoint

__all__ = ["RecurrentCLI", "ResumeError", "build_cli", "fit_summary", "link_data_sizes", "main"]

#: ``ckpt_path`` values that Lightning resolves itself (not files).
_SPECIAL_CKPT_PATHS = ("best", "last", "hpc")
#: Set once a subcommand starts running (after the configuration and checkpoint checks):
#: errors from then on are not configuration errors and keep their traceback.
_RUNNING: ContextVar[bool] = ContextVar("lightning_rnn_reg_cli_running", default=False)

_REPORT_EPILOG = ("Also: lightning-rnn-reg report RUN_DIR... --out DIR (learning curves, rates "
                  "and a table of metrics from TensorBoard event files; see report --help).")


def _data_size(name: str, data: Any) -> Any:
    return getattr(data, name, None)


def link_data_sizes(parser: LightningArgumentParser, model_class: type | None = None) -> None:
    """Link the data module's sizes (:data:`LINKED_SIZES`: ``vocab_size``, ``num_tags``,
    ``num_classes``, ``char_vocab_size``) to the model's arguments of the same name.

    The one line a plain ``LightningCLI`` needs to get our links::

        class MyCLI(LightningCLI):
            def add_arguments_to_parser(self, parser):
                link_data_sizes(parser)     # subclass mode; link_data_sizes(parser, MyLM) if not

    Args:
        parser: the parser LightningCLI hands to ``add_arguments_to_parser``.
        model_class: the model class when the CLI was given one fixed class (no
            ``class_path`` in the config); ``None`` in subclass mode.
    """
    if model_class is None:
        for name in LINKED_SIZES:
            # a model without such an argument is left alone (jsonargparse skips the link)
            parser.link_arguments("data", f"model.init_args.{name}",
                                  compute_fn=partial(_data_size, name), apply_on="instantiate")
        return
    accepted = constructor_names(model_class)
    for name in LINKED_SIZES:
        if accepted is None or name in accepted:
            parser.link_arguments("data", f"model.{name}", compute_fn=partial(_data_size, name),
                                  apply_on="instantiate")


def _newest_last_checkpoint(folders: Sequence[Path]) -> Path | None:
    found = [path for folder in folders for path in folder.glob("last*.ckpt") if path.is_file()]
    return max(found, key=lambda path: path.stat().st_mtime) if found else None


class RecurrentCLI(LightningCLI):
    """LightningCLI with this library's defaults, for our task modules or your own.

    What it adds to ``LightningCLI``:

    * links from the data module's sizes (``vocab_size``, ``num_tags``, ``num_classes``,
      ``char_vocab_size``) to the model's arguments of the same name;
    * a :class:`~lightning_rnn_reg.callbacks.LastCheckpoint` in every fit (``last.ckpt`` after
      each epoch, every 500 steps and on Ctrl-C) unless checkpointing is off;
    * ``--ckpt_path last``: the newest ``last.ckpt`` of earlier runs (in the logger's
      ``version_*/checkpoints`` folders, or the checkpoint ``dirpath``), or a
      :class:`ResumeError` naming the folder searched; ``--fresh_if_missing true`` starts
      from scratch instead;
    * ``--ckpt_path FILE`` read safely and checked against the model's task class before
      anything runs (:class:`~lightning_rnn_reg.tasks.checkpoint.CheckpointError`);
    * ``save_config_kwargs={"overwrite": True}`` and ``auto_configure_optimizers=False``
      (the tasks configure their own optimizers).

    Args:
        model_class: a LightningModule class; default :class:`RecurrentTask` in subclass mode
            (any ``class_path`` in the config).
        datamodule_class: a LightningDataModule class; default: any, in subclass mode.
        *args (Any): as ``LightningCLI``.
        **kwargs (Any): as ``LightningCLI``.

    Example::

        from lightning_rnn_reg.cli import RecurrentCLI
        from lightning_rnn_reg.data import TextCorpus
        RecurrentCLI(MyLanguageModel, TextCorpus)   # python my_cli.py fit --config my.yaml
    """

    def __init__(self, model_class: type[LightningModule] | None = None,
                 datamodule_class: type[LightningDataModule] | None = None,
                 *args: Any, **kwargs: Any) -> None:
        if model_class is None:
            model_class = RecurrentTask
            kwargs.setdefault("subclass_mode_model", True)
        if datamodule_class is None:
            datamodule_class = LightningDataModule
            kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("auto_configure_optimizers", False)
        self._fixed_model = None if kwargs.get("subclass_mode_model") else model_class
        super().__init__(model_class, datamodule_class, *args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        link_data_sizes(parser, self._fixed_model)
        parser.add_argument(
            "--fresh_if_missing", type=bool, default=False,
            help="with --ckpt_path last: start from scratch if no last.ckpt exists (by default "
                 "that is an error naming the folder searched)")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse, then read a ``--ckpt_path`` file safely (clear errors for a corrupted file,
        a non-checkpoint or pickled objects) and check its task against the configured
        model class before LightningCLI reads its hyperparameters."""
        super().parse_arguments(parser, args)
        path = self._ckpt_path()
        if path is not None:
            checkpoint = read_checkpoint(path, map_location="cpu")
            model_class = self._configured_model_class()
            if model_class is not None:
                check_task(checkpoint, model_class, path)

    def _configured_model_class(self) -> type | None:
        if self._fixed_model is not None:
            return self._fixed_model
        subcommand = self.config.get("subcommand")
        model = self.config[subcommand].get("model") if subcommand else self.config.get("model")
        class_path = getattr(model, "class_path", None) or (
            model.get("class_path") if isinstance(model, dict) else None)
        if not class_path:
            return None
        module, _, name = str(class_path).rpartition(".")
        found = getattr(importlib.import_module(module), name, None)
        return found if isinstance(found, type) else None

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """The configured Trainer, with a :class:`LastCheckpoint` unless checkpointing is off
        or the config already has one."""
        config = self._get(self.config_init, "trainer", default={})
        callbacks = config.get("callbacks") or []
        if not isinstance(callbacks, list):
            callbacks = [callbacks]
        wants = config.get("enable_checkpointing", True) is not False \
            and not config.get("fast_dev_run")
        if wants and not any(isinstance(c, LastCheckpoint) for c in callbacks):
            config["callbacks"] = [*callbacks, LastCheckpoint()]
        return super().instantiate_trainer(**kwargs)

    def before_fit(self) -> None:
        self._prepare_run()

    def before_validate(self) -> None:
        self._prepare_run()

    def before_test(self) -> None:
        self._prepare_run()

    def before_predict(self) -> None:
        self._prepare_run()

    def after_fit(self) -> None:
        """Print one line: the final validation metric, where the logs are, and the report
        command to draw them."""
        line = fit_summary(self.trainer)
        if line and self.trainer.is_global_zero:
            print(line, flush=True)

    def _prepare_run(self) -> None:
        self._resolve_last()
        self._check_checkpoint()
        _RUNNING.set(True)

    def _ckpt_path(self) -> str | None:
        """The ``--ckpt_path`` of the subcommand if it names a file (not ``best``, ...)."""
        subcommand = self.config.get("subcommand")
        path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if path is None or path in _SPECIAL_CKPT_PATHS or str(path).startswith("registry"):
            return None
        return str(path)

    def _check_checkpoint(self) -> None:
        """Check that ``--ckpt_path`` was saved by the model's task class, before any run."""
        path = self._ckpt_path()
        if path is not None:
            check_task(read_checkpoint(path, map_location="cpu"), type(self.model), path)

    def _checkpoint_dirpaths(self) -> list[str]:
        """Folders set explicitly on the run's ModelCheckpoint callbacks."""
        return [str(c.dirpath) for c in self.trainer.checkpoint_callbacks
                if isinstance(c, ModelCheckpoint) and c.dirpath]

    def _last_folders(self) -> tuple[list[Path], str]:
        """Where earlier runs of this configuration keep ``last.ckpt``, and how to name that
        place in an error: the checkpoint ``dirpath`` set on the run, else the logger's
        ``version_*/checkpoints`` folders, else ``default_root_dir/checkpoints``."""
        dirpaths = self._checkpoint_dirpaths()
        if dirpaths:
            return [Path(path) for path in dirpaths], ", ".join(dirpaths)
        logger = self.trainer.logger
        if logger is not None and logger.root_dir is not None:
            root = Path(logger.root_dir)
            return sorted(root.glob("*/checkpoints")), str(root / "*" / "checkpoints")
        folder = Path(self.trainer.default_root_dir) / "checkpoints"
        return [folder], str(folder)

    def _resolve_last(self) -> None:
        """``--ckpt_path last`` -> the newest ``last.ckpt`` of earlier runs, or an error."""
        subcommand = self.subcommand
        if subcommand is None:
            return
        config = self.config_init[subcommand]
        if config.get("ckpt_path") != "last":
            return
        folders, searched = self._last_folders()
        found = _newest_last_checkpoint(folders)
        if found is not None:
            config["ckpt_path"] = str(found)
            self.config[subcommand]["ckpt_path"] = str(found)
            return
        if config.get("fresh_if_missing"):
            config["ckpt_path"] = None
            return
        raise ResumeError(
            f"--ckpt_path last: no last.ckpt in {searched} (folders of earlier runs "
            f"under the current directory {os.getcwd()}); run from the folder of the first "
            "run, give the file with --ckpt_path FILE, or add --fresh_if_missing true to "
            "start from scratch")


def _validation_metric(metrics: dict[str, Any]) -> tuple[str, float] | None:
    """The headline validation metric: ppl / bpc / f1 / accuracy before the loss."""
    names = [name for name in metrics if name.startswith("val/")]
    for preferred in ("val/ppl", "val/bpc", "val/f1", "val/f1_pn", "val/acc", "val/loss"):
        if preferred in names:
            return preferred, float(metrics[preferred])
    return (names[0], float(metrics[names[0]])) if names else None


def fit_summary(trainer: Trainer) -> str | None:
    """``"fit done after N steps: val/ppl 123.45; logs: DIR; plots: lightning-rnn-reg report
    DIR --out DIR/report"`` (the parts that exist)."""
    parts = [f"fit done after {trainer.global_step} steps"]
    metric = _validation_metric(dict(trainer.callback_metrics))
    if metric is not None:
        parts[0] += f": {metric[0]} {metric[1]:.2f}"
    log_dir = trainer.log_dir if trainer.logger is not None else None
    if log_dir:
        parts.append(f"logs: {log_dir}")
        parts.append(f"plots: lightning-rnn-reg report {log_dir} --out {log_dir}/report")
    return "; ".join(parts)


@contextmanager
def _arguments_given_explicitly() -> Iterator[None]:
    """While the CLI parses an explicit argument list, ``sys.argv`` holds the program name
    only: LightningCLI warns when both carry arguments (they would be read from ``args``
    alone anyway)."""
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        yield
    finally:
        sys.argv = saved


def build_cli(args: list[str] | None = None, run: bool = True) -> RecurrentCLI:
    """Parse ``args`` (default: the command line), instantiate, and run the subcommand; with
    ``run=False`` only parse and instantiate (a dry run; no subcommand in ``args``)."""
    argv = list(sys.argv[1:] if args is None else args)
    with _arguments_given_explicitly():
        return RecurrentCLI(
            args=argv,
            run=run,
            parser_kwargs={"epilog": _REPORT_EPILOG, "exit_on_error": False},
        )


def _make_working_directory_importable() -> None:
    """As ``python -m`` does: ``--model my_module.MyModel`` from the project's folder."""
    cwd = os.getcwd()
    if "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)


def _debug_requested(argv: list[str]) -> bool:
    """``--debug`` (removed from ``argv``) or ``LRR_DEBUG`` set to a true value."""
    flag = "--debug" in argv
    while "--debug" in argv:
        argv.remove("--debug")
    return flag or os.environ.get("LRR_DEBUG", "").lower() not in ("", "0", "false", "no")


def main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``lightning-rnn-reg`` console script and ``python -m
    lightning_rnn_reg``: ``report`` goes to :func:`~lightning_rnn_reg.report.command.report_main`,
    every other subcommand to :class:`RecurrentCLI`. A configuration error (a bad class
    name, rate, site, missing data, a checkpoint of another task, ``--ckpt_path last`` with
    nothing to resume) prints its cause in a few lines, the last one the sentence that says
    what to do, and exits with status 2; ``--debug`` or ``LRR_DEBUG=1`` re-raises it with
    the full traceback. Returns nothing on success (exit status 0)."""
    argv = list(sys.argv[1:] if args is None else args)
    debug = _debug_requested(argv)
    if argv[:1] == ["report"]:
        from lightning_rnn_reg.report.command import report_main

        report_main(argv[1:])
        return
    _make_working_directory_importable()
    token = _RUNNING.set(False)
    try:
        build_cli(argv)
    except Exception as error:
        user_error = isinstance(error, (CheckpointError, ResumeError)) or not _RUNNING.get()
        if debug or not user_error:
            raise
        sys.stderr.write(short_error(error, argv))
        raise SystemExit(2) from None
    finally:
        _RUNNING.reset(token)
