"""RateSchedule and CurriculumDropout in real fits: every schedule kind at once, step by step,
equal to its formula; an exact resume from a mid-training checkpoint; eval untouched."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

import lightning_rnn_reg as lrr
from lightning_rnn_reg.callbacks import CurriculumDropout, RateSchedule, named_regularizers

MAX_STEPS, SAVE_AT = 14, 6  # 10 windows per epoch: the checkpoint is mid-epoch 0


def sawtooth(t: int, final: float) -> float:
    """A user callable schedule."""
    return final * (t % 3) / 2


def _regularizers(scale: float = 1.0) -> list[lrr.Regularizer]:
    return [lrr.EmbeddingDropout(0.2 * scale), lrr.LockedDropout(0.3 * scale, at="input"),
            lrr.Dropout(0.4 * scale, at="between"), lrr.WeightDrop(0.25 * scale),
            lrr.Zoneout(cell=0.5 * scale, hidden=0.1 * scale),
            lrr.LockedDropout(0.3 * scale, at="output"), lrr.ActivationRegularization(2.0 * scale),
            lrr.TemporalActivationRegularization(1.0 * scale)]


FINALS = {"0_EmbeddingDropout": {"p": 0.2}, "1_LockedDropout": {"p": 0.3},
          "2_Dropout": {"p": 0.4}, "3_WeightDrop": {"p": 0.25},
          "4_Zoneout": {"cell": 0.5, "hidden": 0.1}, "5_LockedDropout": {"p": 0.3},
          "6_ActivationRegularization": {"alpha": 2.0},
          "7_TemporalActivationRegularization": {"beta": 1.0}}


def _schedules() -> list[RateSchedule]:
    return [CurriculumDropout(0.3, targets="0_EmbeddingDropout"),
            RateSchedule("linear", "1_LockedDropout", steps=4),
            RateSchedule("step", [lrr.Dropout], milestones=[2, 5]),
            RateSchedule("annealed", "WeightDrop", gamma=0.5),
            RateSchedule("cosine", "Zoneout", start="final", end=0.0, steps=6),
            RateSchedule(sawtooth, "ActivationRegularization"),
            RateSchedule("constant", "7_TemporalActivationRegularization:beta", value=0.5)]


def _formula(name: str, rate: str, t: int) -> float:
    """Each schedule's formula, written out; ``5_LockedDropout`` is not scheduled."""
    final = FINALS[name][rate]
    return {
        "0_EmbeddingDropout": final * (1 - math.exp(-0.3 * t)),
        "1_LockedDropout": final * min(t / 4, 1),
        "2_Dropout": final * sum(m <= t for m in (2, 5)) / 2,
        "3_WeightDrop": final * math.exp(-0.5 * t),
        "4_Zoneout": final * (1 + math.cos(math.pi * min(t / 6, 1))) / 2,
        "5_LockedDropout": final,
        "6_ActivationRegularization": final * (t % 3) / 2,
        "7_TemporalActivationRegularization": 0.5,
    }[name]


class RateProbe(L.Callback):
    """Records the rates at every training batch (after the schedules set them) and what
    validation ran with: rates, train/eval mode, masks (any RNG draw changes the state)."""

    def __init__(self) -> None:
        self.train: dict[int, dict[str, dict[str, float]]] = {}
        self.val: list[dict] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        regs = named_regularizers(pl_module)
        self.train[trainer.global_step] = {name: reg.rates for name, reg in regs.items()}

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx,
                                  dataloader_idx=0) -> None:
        regs = named_regularizers(pl_module)
        self.val.append({"rates": {name: reg.rates for name, reg in regs.items()},
                         "training": pl_module.training or any(r.training for r in
                                                               regs.values()),
                         "stochastic": any(r.stochastic for r in regs.values()),
                         "rng": torch.get_rng_state()})

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx,
                                dataloader_idx=0) -> None:
        self.val[-1]["rng_unchanged"] = torch.equal(self.val[-1].pop("rng"),
                                                    torch.get_rng_state())


@pytest.fixture(scope="module")
def runs(make_lm, quiet_trainer, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """An uninterrupted fit of MAX_STEPS that checkpoints at SAVE_AT, and a fit resumed from
    that checkpoint with fresh callbacks and a model built with different (halved) rates."""
    root = tmp_path_factory.mktemp("schedule_runs")

    def fit(scale: float, ckpt_path: Path | None, checkpoint: ModelCheckpoint | None):
        model, data = make_lm(_regularizers(scale))
        probe, schedules = RateProbe(), _schedules()
        callbacks = [*schedules, probe] + ([checkpoint] if checkpoint else [])
        trainer = quiet_trainer(root, callbacks, max_steps=MAX_STEPS,
                                enable_checkpointing=checkpoint is not None)
        trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
        return SimpleNamespace(model=model, probe=probe, schedules=schedules, trainer=trainer)

    saver = ModelCheckpoint(dirpath=root / "ckpt", every_n_train_steps=SAVE_AT, save_top_k=-1)
    full = fit(1.0, None, saver)
    path = root / "ckpt" / f"epoch=0-step={SAVE_AT}.ckpt"
    resumed = fit(0.5, path, None)
    return SimpleNamespace(full=full, resumed=resumed, path=path)


def test_every_schedule_kind_sets_its_formula_at_every_optimizer_step(runs):
    seen = runs.full.probe.train
    assert sorted(seen) == list(range(MAX_STEPS))
    for t, rates in seen.items():
        for name, values in rates.items():
            for rate, value in values.items():
                assert value == pytest.approx(_formula(name, rate, t), rel=1e-12, abs=1e-15), (
                    t, name, rate)
    assert seen[0]["0_EmbeddingDropout"]["p"] == 0.0  # curriculum: no dropout at t = 0


def test_curriculum_dropout_rate_is_bit_exact_to_morerio(runs):
    for t, rates in runs.full.probe.train.items():
        assert rates["0_EmbeddingDropout"]["p"] == 0.2 * (1 - math.exp(-0.3 * t))


def test_checkpoint_holds_the_finals_of_every_schedule(runs):
    raw = torch.load(runs.path, weights_only=True)
    assert raw["global_step"] == SAVE_AT
    for schedule in runs.full.schedules:
        finals = raw["callbacks"][schedule.state_key]["finals"]
        for name, values in finals.items():
            assert values == {rate: FINALS[name][rate] for rate in values}
    assert len({schedule.state_key for schedule in runs.full.schedules}) == 7


def test_resume_continues_every_schedule_exactly(runs):
    full, resumed = runs.full.probe.train, runs.resumed.probe.train
    assert sorted(resumed) == list(range(SAVE_AT, MAX_STEPS))
    for t in resumed:
        unscheduled = resumed[t].pop("5_LockedDropout")
        assert unscheduled == {"p": 0.15}  # as built in the resumed run: not scheduled
        # every scheduled rate exactly as in the uninterrupted run
        assert resumed[t] == {k: v for k, v in full[t].items() if k != "5_LockedDropout"}, t
    # the finals came from the checkpoint, not from the (halved) rates the model was built with
    for schedule in runs.resumed.schedules:
        for name, values in schedule.finals.items():
            assert values == {rate: FINALS[name][rate] for rate in values}


def test_validation_runs_eval_semantics_with_the_final_rates(runs):
    val = runs.full.probe.val
    assert len(val) == 1 + 2 * 1  # the sanity check, then one validation of 2 batches
    for record in val:
        assert record["rates"] == FINALS
        assert not record["training"] and not record["stochastic"]
        assert record["rng_unchanged"]  # no mask drawn


def test_after_fit_the_module_holds_its_final_rates(runs):
    rates = {name: reg.rates for name, reg in named_regularizers(runs.full.model).items()}
    assert rates == FINALS
