"""``benchmarks/study.py``: the plan of the regularizer study (rates, runs, the phase-2 pick)
and ``--quick`` end to end through the real CLI: tables with a row per configuration, valid
PNGs, complete result files, and a second invocation that skips every finished run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.benchmarks.conftest import BENCHMARKS

REPO = BENCHMARKS.parent
DATA = Path(os.environ.get("LRR_DATA") or REPO.parent / "shared" / "data")
RESULT_FIELDS = {"task", "config", "phase", "rate_scale", "seed", "regularizers", "metrics",
                 "curves", "budget", "wall_time_s", "versions", "command"}
METRIC_FIELDS = {"best_val", "test", "test_metric", "best_epoch", "epochs_run", "monitor"}


def test_the_plan_has_every_configuration_on_three_seeds(bench_module):
    plan = bench_module("study_plan")
    runs = {name: plan.phase1_runs(plan.task(name), quick=False) for name in plan.TASK_NAMES}
    assert {name: len(r) for name, r in runs.items()} == {"lm": 24, "sst2": 18, "conll": 18}
    lm_configs = {run.config for run in runs["lm"]}
    assert {"none", "zaremba", "locked", "locked_gal", "locked_update", "awd",
            "locked_zoneout", "awd_fraternal"} == lm_configs
    assert {run.config for run in runs["sst2"]} == lm_configs - {"locked_zoneout",
                                                                  "awd_fraternal"}


def test_rates_follow_the_stated_scaling_rule(bench_module):
    plan = bench_module("study_plan")
    assert plan.scaled("zaremba", 200) == 0.3     # 0.5 * sqrt(200 / 650) = 0.277
    assert plan.scaled("awd_embedding", 200) == 0.04  # 0.1 * sqrt(200 / 1150) = 0.042
    assert plan.scaled("zaremba", 2000) == 0.5    # never above the paper's rate
    assert plan.scaled("zaremba", 200, scale="paper") == 0.5
    assert plan.scaled("zaremba", 2000, scale="paper") == 0.7  # = paper: twice, capped


def test_phase_two_picks_the_two_best_on_validation(bench_module):
    report = bench_module("study_report")
    summary = {name: {"phase": 1, "runs": 3, "val": (val, 1.0), "monitor": "val/ppl"}
               for name, val in (("none", 200.0), ("a", 150.0), ("b", 120.0), ("c", 130.0))}
    summary["d"] = {"phase": 1, "runs": 2, "val": (100.0, 1.0), "monitor": "val/ppl"}
    assert report.best_configs(summary) == ["b", "c"]  # d: not all seeds; none: baseline


def _study(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LRR_DATA": str(DATA), "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, str(BENCHMARKS / "study.py"), "--quick", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    pytest.importorskip("matplotlib")
    if not (DATA / "ptb").is_dir():
        pytest.skip(f"no datasets at {DATA} (set LRR_DATA)")
    out = tmp_path_factory.mktemp("study") / "out"
    first = _study("--out", str(out))
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    second = _study("--out", str(out))
    return out, first, second


@pytest.mark.parametrize("task", ["lm", "sst2", "conll"])
def test_quick_writes_a_table_row_per_configuration(quick, task):
    out, _, _ = quick
    table = (out / f"{task}.md").read_text()
    for config in ("none", "locked"):
        row = next(line for line in table.splitlines() if line.startswith(f"| {config} |"))
        assert len(re.findall(r"\d ± \d", row)) == 2, row  # test and best val: mean ± std
        assert row.rstrip().endswith("| 2 |")  # two seeds


@pytest.mark.parametrize("task", ["lm", "sst2", "conll"])
def test_quick_writes_valid_pngs(quick, task):
    from matplotlib.image import imread

    out, _, _ = quick
    pngs = [out / "plots" / f"{task}_test.png",
            *(out / "plots" / task / f"{config}.png" for config in ("none", "locked"))]
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert imread(png).shape[0] > 100, png


def test_quick_writes_complete_result_files(quick):
    out, _, _ = quick
    files = sorted(out.glob("*/*__seed*.json"))
    assert len(files) == 12  # 3 tasks x 2 configurations x 2 seeds
    for path in files:
        result = json.loads(path.read_text())
        assert set(result) >= RESULT_FIELDS, path
        assert set(result["metrics"]) >= METRIC_FIELDS, path
        assert path.name == f"{result['config']}__seed{result['seed']}.json"
        assert result["metrics"]["test"] is not None
        assert result["metrics"]["epochs_run"] == 2
        assert {"torch", "lightning", "lightning_rnn_reg"} <= set(result["versions"])
        assert "lightning_rnn_reg fit --config fit.yaml" in result["command"][0]
        assert "--ckpt_path" in result["command"][1]


def test_a_second_invocation_skips_every_finished_run(quick):
    _, _, second = quick
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "0 ran, 12 skipped, 0 failed" in second.stdout
    assert "start" not in second.stdout


def test_list_marks_the_finished_runs(quick):
    out, _, _ = quick
    listed = _study("--out", str(out), "--list")
    assert listed.returncode == 0, listed.stderr[-3000:]
    assert "12 runs planned, 12 done, 0 to run" in listed.stdout


def test_recipes_hold_the_baseline_and_the_validation_winner_with_their_numbers(
        bench_module, tmp_path, capsys):
    from lightning_rnn_reg.cli import main

    recipes = bench_module("study_recipes")
    report = bench_module("study_report")
    results = REPO / "benchmarks" / "study" / "results"  # the committed study results
    written = recipes.write_recipes(results, tmp_path)
    assert {p.name.split("_")[1] for p in written} == {"lm", "sst2", "conll"}
    for task in ("lm", "sst2", "conll"):
        summary = report.aggregate(report.load_results(results, task))
        seeds = max(s["runs"] for c, s in summary.items() if c != "none" and s["phase"] == 1)
        winner = report.best_configs(summary, count=1, seeds=seeds)[0]
        assert sorted(p.name for p in written if p.name.startswith(f"study_{task}_")) == sorted(
            [f"study_{task}_none.yaml", f"study_{task}_{winner}.yaml"])
    for path in written:
        task, config = path.stem.split("_", 2)[1:]
        summary = report.aggregate(report.load_results(results, task))[config]
        text = path.read_text()
        assert f"{summary['test_metric']} {report.format_value(summary['test'][0])}" in text
        assert "benchmarks/study/runs" not in text  # no run folder leaks into a recipe
        with pytest.raises(SystemExit) as exit_info:
            main(["fit", "--config", str(path), "--print_config"])
        assert exit_info.value.code in (0, None)
        assert "EarlyStopping" in capsys.readouterr().out


def test_guide_blocks_take_the_task_tables_and_their_plots(bench_module, tmp_path):
    guide_module = bench_module("study_guide")
    out, docs = tmp_path / "results", tmp_path / "docs"
    (out / "plots" / "lm").mkdir(parents=True)
    docs.mkdir()
    (out / "plots" / "lm" / "none.png").write_bytes(b"png")
    (out / "lm.md").write_text("### lm: regularizer study\n\n| config |\n|---|\n| none |\n\n"
                               "![lm none curves](plots/lm/none.png)\n")
    guide = docs / "guide.md"
    guide.write_text("intro\n<!-- study:lm -->\nold table\n<!-- /study:lm -->\noutro\n")
    text = guide_module.refresh(guide, out, docs / "img" / "study", ("lm",))
    assert text == ("intro\n<!-- study:lm -->\n| config |\n|---|\n| none |\n\n"
                    "![lm none curves](img/study/lm/none.png)\n<!-- /study:lm -->\noutro\n")
    assert (docs / "img" / "study" / "lm" / "none.png").read_bytes() == b"png"
    with pytest.raises(ValueError, match="study:sst2"):
        guide_module.refresh(guide, out, docs / "img" / "study", ("sst2",))
    recipe = tmp_path / "examples" / "configs" / "study_lm_none.yaml"
    guide.write_text(guide.read_text() + "<!-- study:recipes -->\n<!-- /study:recipes -->\n")
    text = guide_module.refresh(guide, out, docs / "img" / "study", ("lm",), [recipe], tmp_path)
    assert ("<!-- study:recipes -->\n```bash\nLRR_DATA=../shared/data lightning-rnn-reg fit "
            "--config examples/configs/study_lm_none.yaml\n```\n<!-- /study:recipes -->") in text
