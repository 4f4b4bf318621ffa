"""Tables and plots of the regularizer study from its result files, through
:mod:`lightning_rnn_reg.report` only: per task ``<out>/<task>.md`` (one row per
configuration: mean ± std over seeds), ``<out>/plots/<task>_test.png`` (test metric, error
bars = std) and ``<out>/plots/<task>/<config>.png`` (train and validation loss per epoch of
every seed, overlaid, with the gap below).

*Larger than the seed noise*: ``|mean - mean(none)| > std + std(none)`` (both over seeds;
a configuration with one run, phase 2, is never marked).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning_rnn_reg.report import curve_chart, error_bar_chart, format_value, write_table

BASELINE = "none"


def load_results(out: Path, task: str) -> list[dict[str, Any]]:
    """Every result file of ``task`` under ``out``, in name order."""
    return [json.loads(path.read_text()) for path in sorted((out / task).glob("*.json"))]


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return math.nan, math.nan
    std = statistics.stdev(values) if len(values) > 1 else math.nan
    return statistics.fmean(values), std


def _pm(mean: float, std: float) -> str:
    return f"{format_value(mean)} ± {format_value(std)}"


def aggregate(results: list[dict[str, Any]], order: Sequence[str] = (),
              ) -> dict[str, dict[str, Any]]:
    """``config -> summary`` (mean / std of test and best val, epochs, runs): the
    configurations of ``order`` first, in that order (``<name>@paper`` after ``<name>``),
    then the others by name."""
    rank = {name: i for i, name in enumerate(order)}
    results = sorted(results, key=lambda r: (rank.get(r["config"].split("@")[0], len(rank)),
                                             r["config"], r["seed"]))
    grouped: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        grouped.setdefault(result["config"], []).append(result)
    summary = {}
    for config, runs in grouped.items():
        metrics = [r["metrics"] for r in runs]
        summary[config] = {
            "test": _mean_std([m["test"] for m in metrics]),
            "val": _mean_std([m["best_val"] for m in metrics]),
            "best_epoch": statistics.fmean(m["best_epoch"] for m in metrics),
            "epochs_run": statistics.fmean(m["epochs_run"] for m in metrics),
            "wall_min": statistics.fmean(r["wall_time_s"] for r in runs) / 60,
            "runs": len(runs), "seeds": sorted(r["seed"] for r in runs),
            "text": runs[0]["regularizers_text"], "phase": runs[0]["phase"],
            "test_metric": metrics[0]["test_metric"], "monitor": metrics[0]["monitor"],
        }
    return summary


def beyond_noise(row: dict[str, Any], base: dict[str, Any] | None) -> bool:
    """Whether ``row``'s test mean differs from the baseline's by more than the seed noise
    (the sum of both standard deviations)."""
    if base is None or row is base:
        return False
    (mean, std), (base_mean, base_std) = row["test"], base["test"]
    if any(math.isnan(v) for v in (mean, std, base_mean, base_std)):
        return False
    return abs(mean - base_mean) > std + base_std


def lower_is_better(metric: str) -> bool:
    return metric.rsplit("/", 1)[-1] in ("ppl", "loss", "bpc")


def best_configs(summary: dict[str, dict[str, Any]], count: int = 2,
                 seeds: int = 3) -> list[str]:
    """The ``count`` phase-1 configurations (not the baseline) with the best mean validation
    metric, among those with ``seeds`` finished runs (selection on validation, not test)."""
    done = {c: s for c, s in summary.items()
            if s["phase"] == 1 and c != BASELINE and s["runs"] >= seeds}
    if not done:
        return []
    reverse = not lower_is_better(next(iter(done.values()))["monitor"])
    return sorted(done, key=lambda c: done[c]["val"][0], reverse=reverse)[:count]


def table_rows(summary: dict[str, dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    base = summary.get(BASELINE)
    rows = []
    any_row = next(iter(summary.values()))
    test, val = any_row["test_metric"], any_row["monitor"]
    for config, s in summary.items():
        delta = s["test"][0] - base["test"][0] if base else math.nan
        rows.append({"config": config, "regularizers": s["text"],
                     f"{test} (mean ± std)": _pm(*s["test"]),
                     f"best {val} (mean ± std)": _pm(*s["val"]),
                     f"Δ {test} vs none": delta,
                     "> seed noise": "yes" if beyond_noise(s, base) else "",
                     "best epoch": s["best_epoch"], "epochs run": s["epochs_run"],
                     "min / run": s["wall_min"], "runs": s["runs"]})
    return rows, list(rows[0])


def curve_plot(task: str, config: str, results: list[dict[str, Any]], out_png: Path) -> None:
    """Train and validation loss per epoch of every seed of ``config``, with the gap."""
    series, styles, gap, gap_styles = {}, {}, {}, {}
    for index, result in enumerate(sorted(results, key=lambda r: r["seed"])):
        seed, colour = result["seed"], f"C{index % 10}"
        val = {int(k): v for k, v in result["curves"]["val_loss"].items()}
        train = {int(k): v for k, v in result["curves"]["train_loss"].items()}
        series[f"val seed {seed}"] = (list(val), list(val.values()))
        styles[f"val seed {seed}"] = {"color": colour}
        if train:
            series[f"train seed {seed}"] = (list(train), list(train.values()))
            styles[f"train seed {seed}"] = {"color": colour, "linestyle": "--"}
            both = [e for e in val if e in train]
            gap[f"seed {seed}"] = (both, [val[e] - train[e] for e in both])
            gap_styles[f"seed {seed}"] = {"color": colour}
    curve_chart(series, out_png, xlabel="epoch", ylabel="loss (cross-entropy)",
                title=f"{task} / {config}: train (dashed) and validation loss",
                styles=styles, gap=gap, gap_ylabel="val - train", gap_styles=gap_styles)


def _notes(summary: dict[str, dict[str, Any]], results: list[dict[str, Any]]) -> str:
    budget = results[0]["budget"]
    model = results[0]["model"]
    model_args = {k: v for k, v in model["init_args"].items() if k != "regularizers"}
    return (f"Model: `{model['class_path']}` {model_args}. Budget (all configurations): "
            f"{budget}, early stopping on {results[0]['metrics']['monitor']} with patience "
            f"{budget['patience']}; test at the best-validation checkpoint. "
            "`> seed noise`: |Δ mean| > std + std(none) over seeds. "
            f"Results: {len(results)} runs.")


def write_task_report(out: Path, task: str, order: Sequence[str] = (),
                      ) -> dict[str, Any] | None:
    """Write the table and plots of ``task`` (rows in ``order``, see :func:`aggregate`);
    ``None`` without results."""
    results = load_results(out, task)
    if not results:
        return None
    summary = aggregate(results, order)
    rows, columns = table_rows(summary)
    plots = out / "plots"
    test_metric = results[0]["metrics"]["test_metric"]
    base = summary.get(BASELINE)
    better = [c for c, s in summary.items() if beyond_noise(s, base)]
    error_bar_chart(list(summary), [s["test"][0] for s in summary.values()],
                    [s["test"][1] for s in summary.values()], plots / f"{task}_test.png",
                    value_label=f"{test_metric} (mean ± std over seeds)",
                    title=f"{task}: {test_metric} at the best-validation checkpoint",
                    reference=base["test"][0] if base else None, highlight=better)
    images = [f"![{task} {test_metric}](plots/{task}_test.png)"]
    for config in summary:
        curve_plot(task, config, [r for r in results if r["config"] == config],
                   plots / task / f"{_slug(config)}.png")
        images.append(f"![{task} {config} curves](plots/{task}/{_slug(config)}.png)")
    one_decimal = {c: _one_decimal for c in ("best epoch", "epochs run", "min / run")}
    text = write_table(rows, columns, out / f"{task}.md", title=f"{task}: regularizer study",
                       formats=one_decimal)
    (out / f"{task}.md").write_text(text + "\n\n" + _notes(summary, results) + "\n\n"
                                    + "\n".join(images) + "\n")
    return {"summary": summary, "best": best_configs(summary)}


def _one_decimal(value: Any) -> str:
    return "—" if value is None else f"{value:.1f}"


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)
