"""benchmarks/peers.py without any peer library: options, skip lines, ratios, tables."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest


@pytest.fixture
def peers(bench_module):
    return bench_module("peers")


def _fake_launch(peers, calls: list[str]):
    """Bare nn.LSTM at 10 ms and ours' AWD set at 10.5 ms; every other group missing."""
    timings = {"nn.LSTM": {peers.BARE: 0.010}, "ours": {peers.AWD_SET: 0.0105}}

    def launch(group: str, spec: dict) -> dict:
        calls.append(group)
        if group in timings:
            return {"median_s": timings[group]}
        return {"skipped": "not installed (no module 'x')"}

    return launch


def test_quick_option_runs_the_small_shape_in_two_short_rounds(peers) -> None:
    args = peers.parse_args(["--quick"])
    assert (args.shapes, args.rounds, args.repeats, args.warmup) == (["small"], 2, 3, 1)


def test_baseline_group_is_always_timed(peers) -> None:
    assert peers.parse_args(["--groups", "fastai"]).groups == ["nn.LSTM", "fastai"]


def test_child_reports_a_missing_library_as_skipped(peers, monkeypatch) -> None:
    group = dataclasses.replace(peers.GROUPS["fastai"], requires=("lrr_no_such_module",))
    monkeypatch.setitem(peers.GROUPS, "fastai", group)
    result = peers.child("fastai", {"threads": 1, "repeats": 1, "warmup": 0})
    assert "lrr_no_such_module" in result["skipped"]


def test_missing_peers_get_one_skip_line_each_and_are_not_launched_again(peers, capsys
                                                                        ) -> None:
    calls: list[str] = []
    peers.main(["--quick"], launch=_fake_launch(peers, calls))
    out = capsys.readouterr().out
    for group in ("fastai", "flair", "keras-tf", "keras-torch"):
        assert out.count(f"{group}: skipped: not installed") == 2  # progress line + table note
        assert calls.count(group) == 1
    assert calls.count("ours") == 2


def test_ratio_to_bare_lstm_is_written_to_markdown_and_json(peers, tmp_path: Path) -> None:
    markdown, data = tmp_path / "peers.md", tmp_path / "peers.json"
    peers.main(["--quick", "--markdown", str(markdown), "--json", str(data)],
               launch=_fake_launch(peers, []))
    entry = json.loads(data.read_text())["shapes"]["small"]["configurations"][peers.AWD_SET]
    assert entry["to_bare"]["median"] == pytest.approx(1.05)
    assert f"| {peers.AWD_SET} | ours | 10.5 | 1.05x (1.05-1.05) |" in markdown.read_text()


def test_ratio_to_counterpart_is_the_median_of_same_round_ratios(peers) -> None:
    shape = peers.Shape("t", 4, 4, 2, 2, 3, 10)
    run = peers.ShapeRun(shape, rounds=[
        {peers.BARE: 1.0, peers.AWD_SET: 2.0, "fastai AWD_LSTM": 4.0},
        {peers.BARE: 1.0, peers.AWD_SET: 1.0, "fastai AWD_LSTM": 3.0},
        {peers.BARE: 1.0, peers.AWD_SET: 1.0, "fastai AWD_LSTM": 5.0},
    ], groups={peers.BARE: "nn.LSTM", peers.AWD_SET: "ours", "fastai AWD_LSTM": "fastai"})
    ratio = peers.summarize(run)["fastai AWD_LSTM"]["to_counterpart"]
    assert (ratio["median"], ratio["min"], ratio["max"]) == (3.0, 2.0, 5.0)


def test_markdown_table_aligns_text_left_and_numbers_right(peers) -> None:
    table = peers.markdown_table(["name", "group", "ms"], [["a", "b", "1.0"]], text_columns=2)
    assert table.splitlines() == ["| name | group | ms |", "|---|---|---:|", "| a | b | 1.0 |"]


def test_awd_shape_has_a_last_layer_of_embedding_size(peers) -> None:
    assert peers.shapes(awd_batch=10)["awd"].sizes() == [1150, 1150, 400]


def test_our_configurations_exist_in_speed_py_and_build(peers) -> None:
    configs = peers._our_configs()
    assert all(build() for build in configs.values())
    assert peers.GROUPS["fastai"].counterparts["fastai AWD_LSTM"] in configs


def test_bare_and_our_cases_time_one_step_each_on_a_tiny_shape(peers) -> None:
    shape = peers.Shape("tiny", 8, 12, 3, 2, 4, 30)
    cases = {**peers._cases_bare(shape), **peers._cases_ours(shape)}
    times = peers.time_cases(cases, repeats=2, warmup=1)
    assert len(times) == 1 + len(peers._our_configs())
    assert all(len(values) == 2 and min(values) > 0 for values in times.values())


def test_from_json_rebuilds_the_tables_and_the_chart_draws_the_ratios(peers, tmp_path: Path
                                                                      ) -> None:
    pytest.importorskip("matplotlib")
    markdown, data = tmp_path / "peers.md", tmp_path / "peers.json"
    peers.main(["--quick", "--markdown", str(markdown), "--json", str(data)],
               launch=_fake_launch(peers, []))
    again, chart = tmp_path / "again.md", tmp_path / "peers.png"
    saved = peers.main(["--from-json", str(data), "--markdown", str(again), "--plot", str(chart)],
                       launch=lambda group, spec: pytest.fail("--from-json must not time"))
    assert again.read_text() == markdown.read_text()
    assert chart.read_bytes().startswith(b"\x89PNG")
    drawn = peers.plot(saved["shapes"], str(tmp_path / "redrawn.png"), 2)
    (series,) = drawn.values()
    assert series[peers.BARE] == pytest.approx(1.0)
    assert series[peers.AWD_SET] == pytest.approx(1.05)
