"""The ``lightning-rnn-reg`` command: a LightningCLI over the task and data modules.

``lightning-rnn-reg fit --config examples/configs/quickstart.yaml`` (also ``validate``,
``test``, ``predict``). Model and data are chosen by ``class_path``; the vocabulary size is
linked from the data module to the model, so a config never states it; regularizers and
callbacks are lists of ``class_path`` objects.
"""

from __future__ import annotations

from lightning.pytorch import LightningDataModule
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from lightning_rnn_reg.tasks.base import RecurrentTask


class RecurrentCLI(LightningCLI):
    """LightningCLI with the links between data and model sizes."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.vocab_size", "model.init_args.vocab_size",
                              apply_on="instantiate")


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
    )


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``lightning-rnn-reg`` console script and ``python -m
    lightning_rnn_reg``. Returns nothing, so the process exits with status 0 on success."""
    build_cli(args)
