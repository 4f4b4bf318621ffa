"""The study's recipes: per task, the baseline (``none``) and the winning configuration as
``examples/configs/study_<task>_<config>.yaml``, each header stating the measured numbers.

The winner is the configuration with the best mean *validation* metric over its seeds (the
rule phase 2 uses, ``study_report.best_configs``), among the configurations with the most
finished seeds; the test numbers in the header are reported, not used to choose. The
recipe is the study's own run configuration (``study_run.run_config``: same model, data,
budget, early stopping and checkpointing on the validation metric), without the study's
run folders, so ``lightning-rnn-reg fit --config`` reproduces seed 1 of the study's runs.

Run through ``python benchmarks/study.py --report-only --publish``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from study_plan import RunSpec, configurations, task
from study_report import BASELINE, aggregate, best_configs, load_results
from study_run import run_config

from lightning_rnn_reg.report import format_value

TITLES = {"lm": "word-level PTB language model", "sst2": "SST-2 sentence classifier",
          "conll": "CoNLL-2003 NER tagger"}


def recipe_config(task_name: str, config: str) -> dict[str, Any]:
    """The study's configuration of ``config`` on ``task_name`` (seed 1), without run
    folders: checkpoints and logs go where Lightning puts them by default."""
    task_ = task(task_name)
    regs = configurations(task_name, task_.hidden)[config]
    full = run_config(RunSpec(task_, config, tuple(regs), 1, 1, "sqrt"), Path("."), "fit")
    trainer = {k: v for k, v in full["trainer"].items()
               if k not in ("default_root_dir", "logger", "enable_progress_bar",
                            "enable_model_summary")}
    trainer["callbacks"] = [
        {"class_path": c["class_path"],
         "init_args": {k: v for k, v in c["init_args"].items() if k != "dirpath"}}
        for c in trainer["callbacks"] if not c["class_path"].endswith("LastCheckpoint")]
    return {**full, "trainer": trainer}


def _numbers(summary: dict[str, Any], name: str) -> str:
    s = summary[name]
    test, val = s["test"], s["val"]
    return (f"{s['test_metric']} {format_value(test[0])} ± {format_value(test[1])}, best "
            f"{s['monitor']} {format_value(val[0])} ± {format_value(val[1])} over "
            f"{s['runs']} seed(s) {s['seeds']}, best epoch {s['best_epoch']:.1f}")


def header(task_name: str, config: str, summary: dict[str, Any], winner: str) -> str:
    role = "baseline (no regularizer)" if config == BASELINE else "the study's winner"
    s = summary[config]
    lines = [
        f"{TITLES[task_name]}: {role}, configuration `{config}` of benchmarks/study.py",
        f"(issue 17; docs/guide.md). Regularizers: {s['text']}.",
        "Measured by the study (test at the best-validation checkpoint): "
        f"{_numbers(summary, config)}.",
    ]
    if config != BASELINE and BASELINE in summary:
        lines.append(f"Baseline `none`: {_numbers(summary, BASELINE)}.")
    elif winner != BASELINE:
        lines.append(f"Winner `{winner}`: {_numbers(summary, winner)}.")
    lines += ["Winner: best mean validation metric among the configurations with the most "
              "seeds finished.",
              "The same budget, early stopping and checkpointing as every run of the study.",
              f"  LRR_DATA=/path/to/data lightning-rnn-reg fit --config "
              f"examples/configs/study_{task_name}_{config}.yaml",
              "  then: lightning-rnn-reg test --config <the same> --ckpt_path CKPT "
              "(CKPT: the best.ckpt that fit wrote)"]
    return "".join(f"# {line}\n" for line in lines)


def write_recipes(out: Path, configs_dir: Path, tasks: tuple[str, ...] = tuple(TITLES)
                  ) -> list[Path]:
    """Write the baseline and the winner of every task with results; returns the files."""
    import yaml

    written = []
    for task_name in tasks:
        summary = aggregate(load_results(out, task_name))
        phase1 = {c: s for c, s in summary.items() if s["phase"] == 1}
        if BASELINE not in phase1 or len(phase1) < 2:
            continue
        seeds = max(s["runs"] for c, s in phase1.items() if c != BASELINE)
        winner = best_configs(phase1, count=1, seeds=seeds)[0]
        for old in configs_dir.glob(f"study_{task_name}_*.yaml"):
            old.unlink()
        for config in (BASELINE, winner):
            path = configs_dir / f"study_{task_name}_{config}.yaml"
            body = yaml.safe_dump(recipe_config(task_name, config), sort_keys=False)
            path.write_text(header(task_name, config, summary, winner) + body)
            written.append(path)
    return written
