"""RegularizerMonitor: the TensorBoard tags it writes (read back from the event files), their
values, and training that is bit-identical with the monitor off, on, or without a logger."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.nn.utils.rnn import pack_padded_sequence

import lightning_rnn_reg as lrr
from lightning_rnn_reg.callbacks import RegularizerMonitor, named_regularizers
from lightning_rnn_reg.callbacks.monitor import _norm_per_step

STEPS, EVERY, SIZE, BATCH, BPTT = 5, 2, 16, 4, 10
P = {"0_EmbeddingDropout/p": 0.2, "1_LockedDropout/p": 0.25, "2_Zoneout/cell": 0.3,
     "2_Zoneout/hidden": 0.1, "3_WeightDrop/p": 0.4, "4_Dropout/p": 0.5}
# units drawn per training step at each rate (two passes: fraternal dropout), a lower bound
# for the embedding (distinct words per sequence of a window: at least 5)
UNITS = {"0_EmbeddingDropout/p": 2 * BATCH * 5, "1_LockedDropout/p": 2 * BATCH * SIZE,
         "2_Zoneout/cell": 2 * 2 * BPTT * BATCH * SIZE,
         "2_Zoneout/hidden": 2 * 2 * BPTT * BATCH * SIZE,
         "3_WeightDrop/p": 2 * 2 * 4 * SIZE * SIZE, "4_Dropout/p": 2 * BPTT * BATCH * SIZE}


def _regularizers() -> list[lrr.Regularizer]:
    return [lrr.EmbeddingDropout(0.2), lrr.LockedDropout(0.25, at="input"),
            lrr.Zoneout(cell=0.3, hidden=0.1), lrr.WeightDrop(0.4),
            lrr.Dropout(0.5, at="output"), lrr.ActivationRegularization(2.0),
            lrr.TemporalActivationRegularization(1.0), lrr.FraternalDropout(0.1)]


def _scalars(root: Path) -> dict[str, list[tuple[int, float]]]:
    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in root.rglob("events.out.tfevents.*"):
        events = EventAccumulator(str(path))
        events.Reload()
        for tag in events.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend((e.step, e.value) for e in events.Scalars(tag))
    return scalars


@pytest.fixture(scope="module")
def runs(make_lm, quiet_trainer, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """Four short fits from the same seed: no monitor, monitor off, monitor without a logger,
    monitor on every EVERY steps."""
    root = tmp_path_factory.mktemp("monitor_runs")

    def fit(name: str, monitor: RegularizerMonitor | None, logged: bool = True):
        model, data = make_lm(_regularizers(), size=SIZE)
        logger = TensorBoardLogger(save_dir=str(root / name), name="") if logged else False
        trainer = quiet_trainer(root, [monitor] if monitor else [], max_steps=STEPS,
                                logger=logger, log_every_n_steps=1, limit_val_batches=0,
                                num_sanity_val_steps=0)
        trainer.fit(model, datamodule=data)
        return SimpleNamespace(model=model, weights=model.state_dict(),
                               scalars=_scalars(root / name) if logged else {})

    return SimpleNamespace(plain=fit("plain", None), off=fit("off", RegularizerMonitor(0)),
                           no_logger=fit("no_logger", RegularizerMonitor(1), logged=False),
                           on=fit("on", RegularizerMonitor(EVERY)))


def _monitored(scalars: dict, group: str) -> dict[str, list[tuple[int, float]]]:
    prefix = f"regularizers/{group}/"
    return {tag[len(prefix):]: values for tag, values in scalars.items()
            if tag.startswith(prefix)}


def test_training_is_bit_identical_with_the_monitor_off_on_or_without_logger(runs):
    for other in (runs.off, runs.no_logger, runs.on):
        assert other.weights.keys() == runs.plain.weights.keys()
        for name, value in runs.plain.weights.items():
            assert torch.equal(other.weights[name], value), name
    assert runs.on.scalars["train/loss"] == runs.plain.scalars["train/loss"]


def test_monitor_off_writes_nothing(runs):
    assert not any(tag.startswith("regularizers/") for tag in runs.off.scalars)
    assert not any(tag.startswith("regularizers/") for tag in runs.plain.scalars)


def test_rates_are_logged_every_n_steps_with_the_configured_values(runs):
    rates = _monitored(runs.on.scalars, "rate")
    expected = {**P, "5_ActivationRegularization/alpha": 2.0,
                "6_TemporalActivationRegularization/beta": 1.0,
                "7_FraternalDropout/kappa": 0.1}
    assert set(rates) == set(expected)
    for key, values in rates.items():
        assert [step for step, _ in values] == list(range(0, STEPS, EVERY))
        assert all(value == pytest.approx(expected[key]) for _, value in values)


def test_dropped_fraction_is_measured_near_each_rate(runs):
    dropped = _monitored(runs.on.scalars, "dropped")
    assert set(dropped) == set(P)
    for key, values in dropped.items():
        p = P[key]
        band = 5 * math.sqrt(p * (1 - p) / UNITS[key])
        assert [step for step, _ in values] == list(range(0, STEPS, EVERY))
        for _, fraction in values:
            assert abs(fraction - p) < band, (key, fraction)
        assert len({fraction for _, fraction in values}) > 1  # measured, not the rate itself


def test_loss_terms_are_the_values_the_task_logged_at_that_step(runs):
    terms = _monitored(runs.on.scalars, "term")
    assert set(terms) == {"ar", "tar", "fraternal"}
    for name, values in terms.items():
        logged = dict(runs.on.scalars[f"train/{name}"])
        assert len(logged) == STEPS
        for step, value in values:
            assert value == pytest.approx(logged[step], rel=1e-6)
            assert value > 0


def test_hidden_norm_is_logged_for_every_layer_and_time_step(runs):
    norms = _monitored(runs.on.scalars, "hidden_norm")
    assert set(norms) == {f"rnns.{layer}/t{t:03d}" for layer in (0, 1) for t in range(BPTT)}
    for values in norms.values():
        assert [step for step, _ in values] == list(range(0, STEPS, EVERY))
        assert all(0 < value < math.sqrt(SIZE) for _, value in values)  # |h| <= 1 per unit


def test_after_fit_no_recording_and_no_hook_is_left(runs):
    model = runs.on.model
    assert all(reg.mask_stats is None for reg in named_regularizers(model).values())
    assert all(not rnn._forward_hooks for rnn in model.rnns)


def test_norm_per_step_averages_over_the_valid_examples():
    layer = lrr.LSTM(3, 4)
    out = torch.randn(5, 2, 4)
    out[3:, 1] = 0.0  # example 1 is padding from step 3 on
    expected = torch.cat([out[:3].norm(dim=-1).mean(1), out[3:, 0].norm(dim=-1)])
    torch.testing.assert_close(_norm_per_step(layer, out), expected)
    packed = pack_padded_sequence(out, torch.tensor([5, 3]))
    torch.testing.assert_close(_norm_per_step(layer, packed), expected)
    batch_first = lrr.LSTM(3, 4, batch_first=True)
    torch.testing.assert_close(_norm_per_step(batch_first, out.transpose(0, 1)), expected)
    torch.testing.assert_close(_norm_per_step(layer, out[:, 0]), out[:, 0].norm(dim=-1))


def test_every_n_steps_must_be_a_non_negative_int():
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError):
            RegularizerMonitor(bad)
