"""Which regularizer, where: a resumable study of this library's regularizers on three tasks,
3 seeds each, through the real CLI (issue #17).

Usage::

    python benchmarks/study.py [--tasks lm,sst2,conll] [--phase 1|2] [--jobs 2]
                               [--out DIR] [--work DIR] [--quick] [--list] [--report-only]

Tasks (model sizes chosen so that one run fits ~20 min on one CPU core and the unregularized
baseline overfits within the budget; timings measured on this 2-core machine with one torch
thread each, another job running beside):

* ``lm``: word-level PTB (``LanguageModel`` + ``PennTreebank``), 2 x 200 LSTM, embedding 200
  untied (Zaremba et al.'s "small" size), batch 20 x BPTT 35, SGD lr 20 on the per-token mean
  (Zaremba's lr 1 on the sum over 20 steps), /1.5 per epoch from epoch 10, clip 0.25. An
  epoch is the first 10% of the training batches (``limit_train_batches: 0.1``: the same
  133 batches, 93k tokens, every epoch; full validation and test sets). Why: full PTB runs at
  0.25-0.29 s/step (1,328 steps, 6.4 min/epoch), which leaves 3 epochs in 20 min, where no
  configuration has overfitted yet; on 20% of PTB (266 steps) SGD reached val ppl 270 and
  Adam (lr 2e-3) 467 after 4 and 2 epochs, still far from overfitting. Measured per step:
  0.21-0.29 s (none, locked, Gal, zoneout, AWD), 0.43 s with FraternalDropout (two passes);
  validation 6-9 s. A measured baseline (``none``, seed 1, 8 epochs): val ppl 815, 553, 501,
  420, 372, 349, 345, 344 against train ppl 829 ... 155, 102 (gap opening from epoch 6,
  validation flat from epoch 7), 51 s/epoch with other jobs on the machine. Budget 20
  epochs, patience 3: <= 17 min a run, <= ~27 min with FraternalDropout (the one
  configuration over the 20-minute target: same epochs for every configuration).
* ``sst2``: SST-2 (``SequenceClassifier`` + ``SentimentDataModule``), 2-layer BiLSTM 2 x 150,
  embedding 300, max pooling, Adam 1e-3, clip 5. Measured 0.13 s/step, 217 steps: ~30 s/epoch.
  Budget 15 epochs, patience 4: <= 8 min.
* ``conll``: CoNLL-2003 NER (``SequenceTagger`` + ``CoNLL2003``), words 100 + char BiLSTM
  2 x 25 + caps 4 -> 2-layer BiLSTM 2 x 100, Viterbi, Adam 1e-3 halved on plateau, clip 5.
  Measured 0.07 s/step, 439 steps: ~35 s/epoch. Budget 15 epochs, patience 4: <= 9 min.

Two layers everywhere, so that every site (input / between / output) exists.

Configurations (``study_plan.configurations``): ``none``; ``zaremba`` (``Dropout`` per step
on input / between / output); ``locked`` (``LockedDropout`` there); ``locked_gal`` (+
``RecurrentDropout``); ``locked_update`` (+ ``UpdateDropout``, per step); ``awd``
(``EmbeddingDropout`` + ``LockedDropout`` + ``WeightDrop``, + AR 2 / TAR 1 for the LM); LM only
``locked_zoneout`` (+ ``Zoneout``) and ``awd_fraternal`` (AWD without AR/TAR +
``FraternalDropout`` kappa 0.1, as Zolna et al.). Rates: the paper's rate for the paper
model closest in size, scaled by ``sqrt(h / h_paper)`` (capped at 1) and rounded to 0.05
(``study_plan`` docstring; ``--list`` prints every rate). Phase 2 (``--phase 2``) takes the
two configurations with the best mean validation metric over the 3 seeds of phase 1 (not
the baseline) and reruns them at the papers' unscaled rates, seed 1 (``<config>@paper``).

Every run: early stopping on the validation metric (same patience for every configuration of
a task), test at the best-validation checkpoint. Planned: 8 + 6 + 6 configurations x 3 seeds
= 60 runs in phase 1 and 6 in phase 2; at the measured times, without early stopping, at
most 21 x 17 + 3 x 27 (lm) + 18 x 8 (sst2) + 18 x 9 (conll) = 744 core-minutes in phase 1
and <= 70 in phase 2: <= 6.8 h of wall time with ``--jobs 2`` (the baselines stop early,
so expect less; more where other work shares the cores).

Results: one JSON file per finished run, ``<out>/<task>/<config>__seed<k>.json`` (task,
config, phase, rate_scale, seed, regularizers, metrics: best_val, test at the best
validation epoch, best_epoch, epochs_run, all test metrics; per-epoch curves; budget, model,
wall_time_s, versions of torch / lightning / lightning_rnn_reg, the exact commands). A rerun
skips runs whose file exists and resumes an interrupted one from its ``last.ckpt``. Run
folders (configs, logs, checkpoints) go to ``--work`` (default ``benchmarks/study/runs``,
not committed; with ``--out`` given, ``<out>/runs``). Tables and plots
(``study_report``): ``<out>/<task>.md`` and ``<out>/plots/``.

``--report-only --publish`` also refreshes the tables and plots in ``docs/guide.md``
(``study_guide``) and writes each task's baseline and validation winner as
``examples/configs/study_<task>_<config>.yaml`` (``study_recipes``).

``--quick``: tiny models, 2 epochs of 4 batches, 2 configurations x 2 seeds per task (the
test version, ``tests/benchmarks/test_study.py``).
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# the study modules beside this file, and this checkout of the package (as the runs use it)
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from study_guide import refresh  # noqa: E402
from study_plan import (  # noqa: E402
    QUICK_SEEDS,
    SEEDS,
    TASK_NAMES,
    RunSpec,
    configurations,
    describe,
    phase1_runs,
    phase2_runs,
    task,
)
from study_recipes import write_recipes  # noqa: E402
from study_report import aggregate, best_configs, load_results, write_task_report  # noqa: E402
from study_run import execute  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_OUT = HERE / "study" / "results"
DEFAULT_WORK = HERE / "study" / "runs"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(TASK_NAMES),
                        help="comma-separated tasks (default: %(default)s)")
    parser.add_argument("--phase", type=int, choices=(1, 2), default=1,
                        help="1: every configuration x 3 seeds; 2: the second rate of the two "
                             "best configurations of phase 1, seed 1")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (1 thread each)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"results, tables, plots (default {DEFAULT_OUT})")
    parser.add_argument("--work", type=Path, default=None,
                        help=f"run folders (default {DEFAULT_WORK}; with --out: OUT/runs)")
    parser.add_argument("--quick", action="store_true", help="the ~2-minute test version")
    parser.add_argument("--list", action="store_true", help="print the planned runs and stop")
    parser.add_argument("--report-only", action="store_true",
                        help="rebuild tables and plots from the result files and stop")
    parser.add_argument("--publish", action="store_true",
                        help="with --report-only: also refresh the tables and plots in "
                             "docs/guide.md and the recipes examples/configs/study_*.yaml")
    args = parser.parse_args(argv)
    args.tasks = [name.strip() for name in args.tasks.split(",") if name.strip()]
    for name in args.tasks:
        if name not in TASK_NAMES:
            parser.error(f"unknown task {name!r}; choose from {', '.join(TASK_NAMES)}")
    if args.work is None:
        args.work = DEFAULT_WORK if args.out is None else args.out / "runs"
    if args.out is None:
        args.out = DEFAULT_OUT
    return args


def plan(args: argparse.Namespace) -> list[RunSpec]:
    """The runs of the chosen phase for every chosen task, seed 1 of every run first."""
    runs: list[RunSpec] = []
    for name in args.tasks:
        task_ = task(name, args.quick)
        if args.phase == 1:
            runs += phase1_runs(task_, args.quick)
            continue
        seeds = len(QUICK_SEEDS if args.quick else SEEDS)
        best = best_configs(aggregate(load_results(args.out, name)), seeds=seeds)  # by val
        if len(best) < 2:
            print(f"{name}: phase 2 needs phase 1 finished (all seeds of >= 2 "
                  f"configurations); found {best}", flush=True)
            continue
        print(f"{name}: phase 2 reruns {best} at the papers' rates", flush=True)
        runs += phase2_runs(task_, best)
    # Seed-major (every task and configuration on seed 1, then seed 2, ...): a study cut off
    # part-way has a first comparison of every configuration, not three seeds of a few.
    return sorted(runs, key=lambda run: run.seed)


def result_path(out: Path, run: RunSpec) -> Path:
    return out / run.task.name / f"{run.key}.json"


def run_folder(work: Path, run: RunSpec) -> Path:
    return work / run.task.name / run.key


def status(args: argparse.Namespace, run: RunSpec) -> str:
    if result_path(args.out, run).is_file():
        return "done"
    if (run_folder(args.work, run) / "checkpoints" / "last.ckpt").is_file():
        return "partial (resumes from last.ckpt)"
    return "todo"


def print_plan(args: argparse.Namespace, runs: list[RunSpec]) -> None:
    for run in runs:
        print(f"{run.task.name:6} {run.key:28} [{status(args, run)}] "
              f"{describe(run.regularizers)}")
    done = sum(status(args, run) == "done" for run in runs)
    print(f"{len(runs)} runs planned, {done} done, {len(runs) - done} to run")


def _one(args: argparse.Namespace, run: RunSpec) -> str:
    """Run ``run`` unless its result exists: ``skipped``, ``done`` or ``failed``."""
    path = result_path(args.out, run)
    label = f"{run.task.name}/{run.key}"
    if path.is_file():
        print(f"skipped {label} (result exists: {path})", flush=True)
        return "skipped"
    print(f"start   {label}", flush=True)
    start = time.monotonic()
    try:
        result = execute(run, run_folder(args.work, run), path)
    except Exception as error:  # one failed run does not stop the others
        print(f"FAILED  {label}: {error}", flush=True)
        return "failed"
    metrics = result["metrics"]
    print(f"done    {label}: {metrics['test_metric']} {metrics['test']:.4g} (best "
          f"{metrics['monitor']} {metrics['best_val']:.4g} at epoch {metrics['best_epoch']}/"
          f"{metrics['epochs_run']}), {time.monotonic() - start:.0f} s", flush=True)
    return "done"


def write_reports(args: argparse.Namespace) -> None:
    for name in args.tasks:
        task_ = task(name, args.quick)
        written = write_task_report(args.out, name, list(configurations(name, task_.hidden)))
        if written is None:
            print(f"{name}: no results under {args.out / name}", flush=True)
        else:
            print(f"{name}: table {args.out / f'{name}.md'}; best (validation): "
                  f"{written['best']}", flush=True)


def publish(out: Path) -> None:
    """The guide's tables and plots and the study recipes, from the results under ``out``."""
    recipes = write_recipes(out, REPO / "examples" / "configs")
    for path in recipes:
        print(f"recipe {path}", flush=True)
    refresh(REPO / "docs" / "guide.md", out, REPO / "docs" / "img" / "study", TASK_NAMES,
            recipes, REPO)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report_only:
        write_reports(args)
        if args.publish:
            publish(args.out)
        return 0
    runs = plan(args)
    if args.list:
        print_plan(args, runs)
        return 0
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        outcomes = list(pool.map(lambda run: _one(args, run), runs))
    write_reports(args)
    counts = {kind: outcomes.count(kind) for kind in ("done", "skipped", "failed")}
    print(f"study: {counts['done']} ran, {counts['skipped']} skipped, {counts['failed']} "
          f"failed, {time.monotonic() - start:.0f} s", flush=True)
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
