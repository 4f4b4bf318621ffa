"""Rate schedules under real data parallelism (``ddp_spawn``, 2 CPU processes): every rank
sets exactly the same rates at every step, equal to the formula.

ddp_spawn hands back only rank 0's results, so :class:`RankRates` (module level, picklable)
writes what each rank saw to ``<out_dir>/rates_rank<r>.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import lightning as L
import torch

import lightning_rnn_reg as lrr
from lightning_rnn_reg.callbacks import CurriculumDropout, RateSchedule, named_regularizers
from lightning_rnn_reg.data import TextCorpus

WORLD, STEPS = 2, 6


class RankRates(L.Callback):
    """Records the rates at every training batch in this process; written at teardown."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.rates: dict[int, dict[str, dict[str, float]]] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.rates[trainer.global_step] = {
            name: reg.rates for name, reg in named_regularizers(pl_module).items()}

    def teardown(self, trainer, pl_module, stage) -> None:
        record = {"rank": trainer.global_rank, "world_size": trainer.world_size,
                  "rates": self.rates}
        path = Path(self.out_dir) / f"rates_rank{trainer.global_rank}.json"
        path.write_text(json.dumps(record))


def test_ddp_ranks_set_identical_rates_equal_to_the_formula(tiny_corpus: Path, tmp_path: Path):
    torch.manual_seed(0)
    data = TextCorpus(str(tiny_corpus), batch_size=2, eval_batch_size=2, bptt=10)
    model = lrr.LanguageModel(data.vocab_size, embedding_dim=8, hidden_size=8, num_layers=1,
                              regularizers=[lrr.LockedDropout(0.3, at="output"),
                                            lrr.WeightDrop(0.5)])
    callbacks = [CurriculumDropout(0.4, targets="LockedDropout"),
                 RateSchedule("cosine", "WeightDrop", start="final", end=0.1, steps=4),
                 RankRates(str(tmp_path))]
    trainer = L.Trainer(strategy="ddp_spawn", accelerator="cpu", devices=WORLD,
                        max_steps=STEPS, limit_val_batches=0, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=str(tmp_path),
                        callbacks=callbacks)
    trainer.fit(model, datamodule=data)

    records = [json.loads((tmp_path / f"rates_rank{r}.json").read_text()) for r in range(WORLD)]
    assert [(r["rank"], r["world_size"]) for r in records] == [(0, WORLD), (1, WORLD)]
    assert records[0]["rates"] == records[1]["rates"]  # exactly, every step, every rate
    rates = records[0]["rates"]
    assert sorted(int(t) for t in rates) == list(range(STEPS))
    for key, seen in rates.items():
        t = int(key)
        assert seen["0_LockedDropout"]["p"] == 0.3 * (1 - math.exp(-0.4 * t))
        cosine = 0.1 + (0.5 - 0.1) * (1 + math.cos(math.pi * min(t / 4, 1))) / 2
        assert math.isclose(seen["1_WeightDrop"]["p"], cosine, rel_tol=1e-12)
