"""LanguageModel + TextCorpus under real data parallelism: ``ddp_spawn``, 2 CPU processes, gloo.

ddp_spawn hands back to the test process only rank 0's results and weights, so what every
rank saw is written by :class:`RankRecorder` to ``<out_dir>/<stage>_rank<r>.pt`` and read here.
Everything the workers need is module level and paths are strings, so the trainer pickles.

Data layout (see :func:`~lightning_rnn_reg.data.language_modeling.batchify`): with ``W`` ranks
of ``B`` streams the token stream is cut into ``W * B`` streams and rank ``r`` reads streams
``[r * B, (r + 1) * B)``: placed side by side, the ranks' streams are exactly the streams of one
process with ``W * B`` of them. Hence one process with ``eval_batch_size = 2 * B`` evaluates
the same tokens with the same carried states, and must give the same perplexity.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import lightning as L
import pytest
import torch

import lightning_rnn_reg as lrr
from lightning_rnn_reg.data import TextCorpus
from lightning_rnn_reg.data.language_modeling import bptt_windows

WORLD = 2
BATCH, EVAL_BATCH, BPTT = 4, 2, 10


class RankRecorder(L.Callback):
    """Records, in each process, the batches it ran and its metric sums; saved at teardown."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.train: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        self.val: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        self.local_val: tuple[float, int] | None = None
        self.synced_ppl: float | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.train.append((batch.start, batch.inputs.clone(), batch.targets.clone()))

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx,
                                dataloader_idx=0) -> None:
        if not trainer.sanity_checking:
            self.val.append((batch.start, batch.inputs.clone(), batch.targets.clone()))

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        # Callbacks run before Lightning computes the epoch's metrics: the metric still holds
        # this rank's own sums (torchmetrics syncs only inside compute()).
        metric = pl_module.val_metric
        self.local_val = (float(metric.nll_sum), int(metric.count))

    def on_validation_end(self, trainer, pl_module) -> None:
        self.synced_ppl = float(trainer.callback_metrics["val/ppl"])

    def teardown(self, trainer, pl_module, stage: str) -> None:
        dist = torch.distributed
        record = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "backend": dist.get_backend() if dist.is_initialized() else None,
            "train": self.train,
            "val": self.val,
            "local_val": self.local_val,
            "synced_ppl": self.synced_ppl,
            "state_dict": {k: v.detach().clone() for k, v in pl_module.state_dict().items()},
        }
        stage = getattr(stage, "value", stage)  # Lightning passes its TrainerFn enum
        torch.save(record, Path(self.out_dir) / f"{stage}_rank{trainer.global_rank}.pt")


def _trainer(out_dir: str, **kw: Any) -> L.Trainer:
    return L.Trainer(
        strategy="ddp_spawn", accelerator="cpu", devices=WORLD, max_epochs=1,
        logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, default_root_dir=out_dir,
        callbacks=[RankRecorder(out_dir)], **kw,
    )


def _model(vocab_size: int) -> lrr.LanguageModel:
    torch.manual_seed(1234)
    return lrr.LanguageModel(vocab_size, embedding_dim=16, hidden_size=16, num_layers=1, lr=2.0)


def _data(corpus: Path, scale: int = 1) -> TextCorpus:
    return TextCorpus(str(corpus), batch_size=scale * BATCH, eval_batch_size=scale * EVAL_BATCH,
                      bptt=BPTT)


def _records(out_dir: Path, stage: str) -> list[dict[str, Any]]:
    records = [torch.load(out_dir / f"{stage}_rank{r}.pt", weights_only=True)
               for r in range(WORLD)]
    for rank, record in enumerate(records):
        assert (record["rank"], record["world_size"], record["backend"]) == (rank, WORLD, "gloo")
    return records


def _streams(batches: list[tuple[int, torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Rebuild the ``(T, B)`` streams from in-order windows: all inputs, then the last target."""
    inputs = torch.cat([b[1] for b in batches])
    return torch.cat([inputs, batches[-1][2][-1:]])


@pytest.fixture(scope="module")
def ddp_fit(module_pattern_corpus: Path, tmp_path_factory: pytest.TempPathFactory):
    """One epoch of ``trainer.fit`` under ddp_spawn; the per-rank records and the weights."""
    out_dir = tmp_path_factory.mktemp("ddp_fit")
    data = _data(module_pattern_corpus)
    model = _model(data.vocab_size)
    initial = copy.deepcopy(model.state_dict())
    trainer = _trainer(str(out_dir))
    trainer.fit(model, datamodule=data)
    return SimpleNamespace(model=model, initial=initial, trainer=trainer,
                           records=_records(out_dir, "fit"))


def test_ddp_ranks_train_on_disjoint_streams_that_tile_the_single_process_ones(
        ddp_fit, module_pattern_corpus: Path) -> None:
    records = ddp_fit.records
    single = _data(module_pattern_corpus, scale=WORLD).train_dataloader().dataset.streams
    assert single.shape[1] == WORLD * BATCH
    windows = bptt_windows(single.size(0), BPTT)
    per_rank = []
    for rank, record in enumerate(records):
        # every rank ran all windows of its streams, in order, with the same lengths
        assert [(start, inputs.size(0)) for start, inputs, _ in record["train"]] == windows
        for _, inputs, targets in record["train"]:
            assert inputs.shape[1] == targets.shape[1] == BATCH
        streams = _streams(record["train"])
        # rank r read exactly streams [r * B, (r + 1) * B) of the W * B single-process streams
        assert torch.equal(streams, single[:, rank * BATCH:(rank + 1) * BATCH])
        per_rank.append(streams)
    assert not torch.equal(per_rank[0], per_rank[1])  # the ranks did not read the same text
    # side by side, the ranks' streams are the single process's: same tokens, each once
    assert torch.equal(torch.cat(per_rank, dim=1), single)
    ids = _data(module_pattern_corpus).split_ids("train")
    assert single.numel() == ids.numel() - ids.numel() % (WORLD * BATCH)


def test_ddp_fit_updates_rank_zero_weights_and_keeps_replicas_equal(ddp_fit) -> None:
    assert ddp_fit.trainer.state.finished
    after = ddp_fit.model.state_dict()  # ddp_spawn loads rank 0's weights into this process
    rank0, rank1 = (record["state_dict"] for record in ddp_fit.records)
    assert after.keys() == ddp_fit.initial.keys()
    for name, value in after.items():
        assert torch.isfinite(value).all(), name
        torch.testing.assert_close(value, rank0[name], rtol=0, atol=0)
        torch.testing.assert_close(rank1[name], rank0[name], rtol=0, atol=0)  # DDP replicas
    changed = [name for name, value in after.items()
               if not torch.equal(value, ddp_fit.initial[name])]
    assert "embedding.weight" in changed and "decoder.bias" in changed
    assert any(name.startswith("rnns.0.") for name in changed)


def test_ddp_validation_perplexity_equals_single_process_over_the_same_streams(
        module_pattern_corpus: Path, tmp_path: Path) -> None:
    data = _data(module_pattern_corpus)
    model = _model(data.vocab_size)  # freshly seeded, no training
    same_model = copy.deepcopy(model)  # identical weights for the single process
    ddp_result = _trainer(str(tmp_path)).validate(model, datamodule=data, verbose=False)[0]
    records = _records(tmp_path, "validate")

    single_dir = tmp_path / "single"
    single_dir.mkdir()
    single_data = _data(module_pattern_corpus, scale=WORLD)
    single_trainer = L.Trainer(accelerator="cpu", devices=1, logger=False,
                               enable_checkpointing=False, enable_progress_bar=False,
                               enable_model_summary=False,
                               callbacks=[RankRecorder(str(single_dir))])
    single_result = single_trainer.validate(same_model, datamodule=single_data,
                                            verbose=False)[0]
    single_record = torch.load(single_dir / "validate_rank0.pt", weights_only=True)

    # the two ranks evaluated disjoint halves of exactly the single process's streams
    single_streams = _streams(single_record["val"])
    assert single_streams.shape[1] == WORLD * EVAL_BATCH
    rank_streams = [_streams(record["val"]) for record in records]
    assert torch.equal(torch.cat(rank_streams, dim=1), single_streams)

    # the metric sums NLL and token counts over ranks, and takes exp of the ratio once
    nll = sum(record["local_val"][0] for record in records)
    count = sum(record["local_val"][1] for record in records)
    assert count == single_record["local_val"][1] == single_streams[1:].numel()
    expected = math.exp(nll / count)
    for record in records:
        assert record["synced_ppl"] == pytest.approx(expected, rel=1e-9)  # same on every rank
        local = math.exp(record["local_val"][0] / record["local_val"][1])
        assert local != pytest.approx(expected, rel=1e-4)  # so the sync is not vacuous
    assert ddp_result["val/ppl"] == pytest.approx(expected, rel=1e-9)

    # ... and equals the single process's perplexity over the same streams
    assert ddp_result["val/ppl"] == pytest.approx(single_result["val/ppl"], rel=1e-5)
    assert ddp_result["val/loss"] == pytest.approx(single_result["val/loss"], rel=1e-5)
    assert single_result["val/ppl"] == pytest.approx(
        math.exp(single_record["local_val"][0] / count), rel=1e-9)
