"""The ``lightning-rnn-reg`` command: a LightningCLI over the task and data modules.

``lightning-rnn-reg fit --config examples/configs/quickstart.yaml`` (also ``validate``,
``test``, ``predict``), and ``lightning-rnn-reg report RUN_DIR... --out DIR`` (plots and a
table from TensorBoard event files, :mod:`lightning_rnn_reg.report.command`). Model and
data are chosen by ``class_path``; the sizes the data determines (:data:`LINKED_SIZES`:
vocabulary, tag set, classes, character vocabulary) are linked from the data module to every
model argument of the same name, so a config never states them; regularizers and callbacks
are lists of ``class_path`` objects. A ``--ckpt_path`` file is checked before the run starts
(plain data only, saved by the model's task class; :mod:`lightning_rnn_reg.tasks.checkpoint`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from functools import partial
from typing import Any

from lightning.pytorch import LightningDataModule
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from lightning_rnn_reg.tasks.base import LINKED_SIZES, RecurrentTask
from lightning_rnn_reg.tasks.checkpoint import check_task, read_checkpoint

#: ``ckpt_path`` values that Lightning resolves itself (not files).
_SPECIAL_CKPT_PATHS = ("best", "last", "hpc")


def _data_size(name: str, data: Any) -> Any:
    return getattr(data, name, None)


_REPORT_EPILOG = ("Also: lightning-rnn-reg report RUN_DIR... --out DIR (learning curves, rates "
                  "and a table of metrics from TensorBoard event files; see report --help).")


class RecurrentCLI(LightningCLI):
    """LightningCLI with the links from the data module's sizes to the model."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for name in LINKED_SIZES:
            # a model without such an argument is left alone (jsonargparse skips the link)
            parser.link_arguments("data", f"model.init_args.{name}",
                                  compute_fn=partial(_data_size, name), apply_on="instantiate")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse, then read a ``--ckpt_path`` file safely (clear errors for a corrupted file,
        a non-checkpoint or pickled objects) before LightningCLI reads its hyperparameters."""
        super().parse_arguments(parser, args)
        path = self._ckpt_path()
        if path is not None:
            read_checkpoint(path, map_location="cpu")

    def before_fit(self) -> None:
        self._check_checkpoint()

    def before_validate(self) -> None:
        self._check_checkpoint()

    def before_test(self) -> None:
        self._check_checkpoint()

    def before_predict(self) -> None:
        self._check_checkpoint()

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


def build_cli(args: list[str] | None = None, run: bool = True) -> RecurrentCLI:
    """Parse ``args`` (default: the command line), instantiate, and run the subcommand; with
    ``run=False`` only parse and instantiate (a dry run; no subcommand in ``args``)."""
    return RecurrentCLI(
        RecurrentTask,
        LightningDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        args=args,
        run=run,
        save_config_kwargs={"overwrite": True},
        auto_configure_optimizers=False,
        parser_kwargs={"epilog": _REPORT_EPILOG},
    )


def main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``lightning-rnn-reg`` console script and ``python -m
    lightning_rnn_reg``: ``report`` goes to :func:`~lightning_rnn_reg.report.command.report_main`,
    every other subcommand to LightningCLI. Returns nothing, so the process exits with status
    0 on success."""
    argv = list(sys.argv[1:] if args is None else args)
    if argv[:1] == ["report"]:
        from lightning_rnn_reg.report.command import report_main

        report_main(argv[1:])
        return
    build_cli(argv)
