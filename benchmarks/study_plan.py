"""The plan of the regularizer study (``benchmarks/study.py``): tasks, budgets, regularizer
configurations with their rates, and the list of runs.

Rates: every rate comes from a paper's recipe (``../shared/PAPERS.md``, ``examples/configs``)
and is scaled to our model by the rule of :func:`scaled`: ``p = p_paper * min(1,
sqrt(h / h_paper))``, ``h`` the hidden units per direction of our model, ``h_paper`` those of
the paper's regularized model the rate was tuned for (:data:`PAPER_RATES`), rounded to 0.05
(to 0.005 below 0.05). Loss weights (AR ``alpha``, TAR ``beta``, fraternal ``kappa``) are not
rates and are not scaled. Phase 2 reruns the two best configurations at ``scale="paper"``:
the paper's rate unscaled (or twice the phase-1 rate where the two are equal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

LRR = "lightning_rnn_reg"
#: rate name -> (paper rate, hidden units of the paper's model, source)
PAPER_RATES: dict[str, tuple[float, int, str]] = {
    "zaremba": (0.5, 650, "Zaremba et al. 2014 medium, 2x650, per-step dropout"),
    "locked": (0.5, 650, "Gal & Ghahramani 2016 medium, 2x650, layer inputs/softmax"),
    "gal_recurrent": (0.3, 650, "Gal & Ghahramani 2016 medium, 2x650, recurrent h"),
    "update": (0.25, 256, "Semeniuta et al. 2016, 1x256, per step"),
    "zoneout_cell": (0.25, 1500, "Krueger et al. 2016 word PTB, 2x1500"),
    "zoneout_hidden": (0.025, 1500, "Krueger et al. 2016 word PTB, 2x1500"),
    "awd_embedding": (0.1, 1150, "Merity et al. 2017 AWD-LSTM, 3x1150, dropoute"),
    "awd_input": (0.4, 1150, "Merity et al. 2017, dropouti"),
    "awd_between": (0.3, 1150, "Merity et al. 2017, dropouth"),
    "awd_output": (0.4, 1150, "Merity et al. 2017, dropout"),
    "awd_weight": (0.5, 1150, "Merity et al. 2017, wdrop"),
}
SITES = ("input", "between", "output")
SEEDS = (1, 2, 3)
QUICK_SEEDS = (1, 2)


def _round_rate(p: float) -> float:
    step = 0.005 if p < 0.05 else 0.05
    return round(math.floor(p / step + 0.5) * step, 3)


def scaled(name: str, hidden: int, scale: str = "sqrt") -> float:
    """The rate ``name`` for a model of ``hidden`` units per direction: ``"sqrt"`` (phase 1,
    the rule of the module docstring) or ``"paper"`` (the paper's rate; twice the phase-1
    rate where that is the paper's rate already, at most 0.7)."""
    paper, paper_hidden, _ = PAPER_RATES[name]
    phase1 = _round_rate(paper * min(1.0, math.sqrt(hidden / paper_hidden)))
    if scale == "sqrt":
        return phase1
    return paper if paper != phase1 else min(0.7, _round_rate(2 * phase1))


def _reg(name: str, **init_args: Any) -> dict[str, Any]:
    return {"class_path": f"{LRR}.{name}", "init_args": init_args}


def _sites(kind: str, rates: dict[str, float]) -> list[dict[str, Any]]:
    return [_reg(kind, p=rates[site], at=site) for site in SITES]


def configurations(task: str, hidden: int, scale: str = "sqrt",
                   ) -> dict[str, list[dict[str, Any]]]:
    """``config name -> regularizer specs`` (``class_path`` / ``init_args``) for ``task``."""
    r = {name: scaled(name, hidden, scale) for name in PAPER_RATES}
    locked = _sites("LockedDropout", dict.fromkeys(SITES, r["locked"]))
    awd = [_reg("EmbeddingDropout", p=r["awd_embedding"]),
           *_sites("LockedDropout", {s: r[f"awd_{s}"] for s in SITES}),
           _reg("WeightDrop", p=r["awd_weight"])]
    configs = {
        "none": [],
        "zaremba": _sites("Dropout", dict.fromkeys(SITES, r["zaremba"])),
        "locked": locked,
        "locked_gal": [*locked, _reg("RecurrentDropout", p=r["gal_recurrent"])],
        "locked_update": [*locked, _reg("UpdateDropout", p=r["update"])],
        "awd": awd,
    }
    if task == "lm":
        configs["awd"] = [*awd, _reg("ActivationRegularization", alpha=2.0),
                          _reg("TemporalActivationRegularization", beta=1.0)]
        configs["locked_zoneout"] = [*locked, _reg("Zoneout", cell=r["zoneout_cell"],
                                                   hidden=r["zoneout_hidden"])]
        configs["awd_fraternal"] = [*awd, _reg("FraternalDropout", kappa=0.1)]
    return configs


@dataclass(frozen=True)
class Task:
    """One task of the study: its model and data (``init_args``), the trainer budget, the
    monitored validation metric and the test metric."""

    name: str
    model_class: str
    model: dict[str, Any]
    data_class: str
    data: dict[str, Any]
    trainer: dict[str, Any]
    monitor: str
    mode: str
    patience: int
    quick_configs: tuple[str, ...] = ("none", "locked")
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def hidden(self) -> int:
        return int(self.model["hidden_size"])

    @property
    def test_metric(self) -> str:
        return "test/" + self.monitor.split("/", 1)[1]


def _lm(quick: bool) -> Task:
    size = 16 if quick else 200
    return Task(
        "lm", f"{LRR}.LanguageModel",
        {"embedding_dim": size, "hidden_size": size, "num_layers": 2, "tie_weights": False,
         "init_range": 0.1, "optimizer": "sgd", "lr": 20.0, "lr_schedule": "zaremba",
         "lr_decay": 1.5, "lr_decay_start": 10},
        f"{LRR}.data.PennTreebank", {"batch_size": 20, "eval_batch_size": 20, "bptt": 35},
        {"max_epochs": 20, "limit_train_batches": 0.1, "gradient_clip_val": 0.25},
        "val/ppl", "min", 3)


def _sst2(quick: bool) -> Task:
    return Task(
        "sst2", f"{LRR}.SequenceClassifier",
        {"embedding_dim": 16 if quick else 300, "hidden_size": 8 if quick else 150,
         "num_layers": 2, "cell": "lstm", "bidirectional": True, "pooling": "max",
         "optimizer": "adam", "lr": 0.001},
        f"{LRR}.data.SentimentDataModule",
        {"format": "sst", "sst_classes": 2, "lowercase": True, "min_count": 1,
         "batch_size": 32, "eval_batch_size": 128, "unknown_warning_threshold": 0.08},
        {"max_epochs": 15, "gradient_clip_val": 5.0}, "val/acc", "max", 4)


def _conll(quick: bool) -> Task:
    return Task(
        "conll", f"{LRR}.SequenceTagger",
        {"embedding_dim": 16 if quick else 100, "hidden_size": 8 if quick else 100,
         "num_layers": 2, "char_embedding_dim": 8 if quick else 25,
         "char_hidden_size": 8 if quick else 25, "use_caps": True, "caps_dim": 4,
         "optimizer": "adam", "lr": 0.001, "lr_schedule": "plateau", "lr_decay": 2.0,
         "decode": "viterbi"},
        f"{LRR}.data.CoNLL2003",
        {"tag_scheme": "IOB1", "lowercase": True, "char_vocab": True, "min_count": 2,
         "unknown_warning_threshold": 0.15, "batch_size": 32, "eval_batch_size": 64},
        {"max_epochs": 15, "gradient_clip_val": 5.0}, "val/f1", "max", 4)


QUICK_TRAINER = {"max_epochs": 2, "limit_train_batches": 4, "limit_val_batches": 2,
                 "limit_test_batches": 2, "log_every_n_steps": 1}
TASK_NAMES = ("lm", "sst2", "conll")


def task(name: str, quick: bool = False) -> Task:
    """The task ``name`` (``lm``, ``sst2``, ``conll``); ``quick``: tiny model, 2 epochs of 4
    batches (the test version)."""
    builders = {"lm": _lm, "sst2": _sst2, "conll": _conll}
    if name not in builders:
        raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASK_NAMES)}")
    built = builders[name](quick)
    if quick:
        return Task(**{**built.__dict__, "trainer": {**built.trainer, **QUICK_TRAINER},
                       "patience": 2})
    return built


@dataclass(frozen=True)
class RunSpec:
    """One planned run: a task, a configuration (``<name>`` or ``<name>@paper`` in phase
    2), its regularizers and a seed."""

    task: Task
    config: str
    regularizers: tuple[Any, ...]
    seed: int
    phase: int
    scale: str

    @property
    def key(self) -> str:
        return f"{self.config}__seed{self.seed}"


def phase1_runs(task_: Task, quick: bool) -> list[RunSpec]:
    """Every configuration of the task (two in quick mode) on every seed."""
    configs = configurations(task_.name, task_.hidden)
    names = task_.quick_configs if quick else tuple(configs)
    seeds = QUICK_SEEDS if quick else SEEDS
    return [RunSpec(task_, name, tuple(configs[name]), seed, 1, "sqrt")
            for name in names for seed in seeds]


def phase2_runs(task_: Task, best: list[str]) -> list[RunSpec]:
    """The configurations ``best`` at the second rate (``scale="paper"``), seed 1."""
    configs = configurations(task_.name, task_.hidden, scale="paper")
    return [RunSpec(task_, f"{name}@paper", tuple(configs[name]), SEEDS[0], 2, "paper")
            for name in best]


def describe(regularizers: tuple[Any, ...] | list[Any]) -> str:
    """A short text of the regularizer specs: ``LockedDropout(p=0.3, at=input), ...``."""
    if not regularizers:
        return "—"
    parts = []
    for spec in regularizers:
        args = ", ".join(f"{k}={v}" for k, v in spec["init_args"].items())
        parts.append(f"{spec['class_path'].rsplit('.', 1)[-1]}({args})")
    return ", ".join(parts)
