"""The ``lightning-rnn-reg report`` subcommand: read runs, write their report.

``lightning-rnn-reg report RUN_DIR... --out DIR [--metrics TAG...] [--label HPARAM]
[--no-train]``; each
``RUN_DIR`` is searched for TensorBoard event files (every folder that holds some is a run,
see :func:`~lightning_rnn_reg.report.events.find_runs`), and the report goes to ``DIR`` (see
:func:`~lightning_rnn_reg.report.writer.write_report`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lightning_rnn_reg.report.events import find_runs
from lightning_rnn_reg.report.plots import MissingPlotDependencyError, pyplot
from lightning_rnn_reg.report.writer import DEFAULT_METRICS, write_report


def report_parser() -> argparse.ArgumentParser:
    """The argument parser of ``lightning-rnn-reg report``."""
    parser = argparse.ArgumentParser(
        prog="lightning-rnn-reg report",
        description="Learning curves (validation with its training twin and their gap), "
                    "the regularizer rates that changed, and a table of final and best "
                    "metrics from the TensorBoard event files of one or many runs.")
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="a run's folder (e.g. the trainer's default_root_dir) or a "
                             "folder of runs; searched for event files")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write to")
    parser.add_argument("--metrics", nargs="+", metavar="TAG",
                        help=f"tags to plot and tabulate (default: those of "
                             f"{', '.join(DEFAULT_METRICS)} that a run logged)")
    parser.add_argument("--label", metavar="HPARAM",
                        help="name each run by this hyperparameter (a key of hparams.yaml, "
                             "or a dotted path in config.yaml, e.g. model.init_args.lr)")
    parser.add_argument("--train", action=argparse.BooleanOptionalAction, default=True,
                        help="draw each val/ metric with its training twin (val/loss with "
                             "train/ce, val/ppl with train/ppl, ...) and the gap per epoch; "
                             "--no-train: validation curves only")
    return parser


def report_main(argv: Sequence[str]) -> None:
    """Run ``lightning-rnn-reg report`` with ``argv`` (the arguments after ``report``); exit
    with status 2 and a message when matplotlib is missing or no run or metric is found."""
    parser = report_parser()
    args = parser.parse_args(list(argv))
    try:
        pyplot()
        runs = find_runs(args.run_dirs)
        report = write_report(runs, args.out, metrics=args.metrics, label=args.label,
                              train=args.train)
    except (MissingPlotDependencyError, FileNotFoundError, ValueError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) else error
        parser.exit(2, f"lightning-rnn-reg report: error: {message}\n")
    print(f"{len(report['runs'])} run(s), {len(report['figures'])} figure(s): "
          f"{args.out}/report.md", file=sys.stdout)
