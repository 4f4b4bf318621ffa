"""Masks under data parallelism (``ddp_spawn``, 2 CPU processes, gloo): each rank draws its
own masks, reproducibly from the seed; fraternal dropout's two passes, AR and TAR and
WeightDrop run inside the DDP step with Lightning's default ``find_unused_parameters=False``;
WeightDrop's raw weight is what is synced and saved. FSDP: Lightning runs it on GPUs only.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

import lightning_rnn_reg as lrr
from lightning_rnn_reg.data import TextCorpus
from lightning_rnn_reg.tasks.rank_state import rank_seed

WORLD = 2


class MaskRecorder(L.Callback):
    """Saves, per rank, the mask the generator would give a LockedDropout at the first two
    training steps (drawn under ``fork_rng``, so training is not disturbed) and the weights."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.masks: list[torch.Tensor] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx < 2:
            with torch.random.fork_rng():
                self.masks.append(lrr.LockedDropout(0.5)(torch.ones(1, 4, 32)) > 0)

    def on_train_end(self, trainer, pl_module) -> None:
        torch.save({"masks": self.masks, "world_size": trainer.world_size,
                    "state_dict": {k: v.detach().clone()
                                   for k, v in pl_module.state_dict().items()}},
                   Path(self.out_dir) / f"rank{trainer.global_rank}.pt")


def _fit(corpus: Path, out_dir: Path) -> list[dict]:
    out_dir.mkdir()
    L.seed_everything(11, verbose=False)
    data = TextCorpus(corpus, batch_size=2, eval_batch_size=2, bptt=6)
    model = lrr.LanguageModel(
        data.vocab_size, embedding_dim=12, hidden_size=12, num_layers=2, lr=1.0,
        regularizers=[lrr.EmbeddingDropout(0.1), lrr.LockedDropout(0.3, at="input"),
                      lrr.WeightDrop(0.5), lrr.LockedDropout(0.3, at="output"),
                      lrr.ActivationRegularization(1.0),
                      lrr.TemporalActivationRegularization(1.0), lrr.FraternalDropout(0.1)])
    trainer = L.Trainer(strategy="ddp_spawn", accelerator="cpu", devices=WORLD, max_epochs=1,
                        limit_train_batches=4, limit_val_batches=1, logger=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=str(out_dir),
                        callbacks=[MaskRecorder(str(out_dir)),
                                   ModelCheckpoint(dirpath=str(out_dir), filename="last")])
    trainer.fit(model, data)
    return [torch.load(out_dir / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], list[dict], Path]:
    from tests.tasks.conftest import write_pattern_corpus

    root = tmp_path_factory.mktemp("ddp_masks")
    corpus = root / "corpus"
    corpus.mkdir()
    write_pattern_corpus(corpus, sizes=(200, 40, 40))
    return _fit(corpus, root / "a"), _fit(corpus, root / "b"), root


def test_each_rank_draws_its_own_masks(two_runs) -> None:
    ranks, _, _ = two_runs
    assert [r["world_size"] for r in ranks] == [WORLD, WORLD]
    for step in range(2):
        assert not torch.equal(ranks[0]["masks"][step], ranks[1]["masks"][step])


def test_rank_masks_are_reproducible_from_the_seed(two_runs) -> None:
    first, second, _ = two_runs
    for rank in range(WORLD):
        for a, b in zip(first[rank]["masks"], second[rank]["masks"], strict=True):
            assert torch.equal(a, b)


def test_rank_seeds_differ_and_depend_only_on_seed_and_rank() -> None:
    assert rank_seed(11, 0) != rank_seed(11, 1)
    assert rank_seed(11, 1) == rank_seed(11, 1) != rank_seed(12, 1)


def test_fraternal_ar_tar_and_weight_drop_train_under_ddp_with_replicas_in_sync(
        two_runs) -> None:
    ranks, _, _ = two_runs
    zero, one = (r["state_dict"] for r in ranks)
    assert zero.keys() == one.keys()
    for name in zero:
        assert torch.equal(zero[name], one[name]), name


def test_weight_drop_saves_the_raw_recurrent_weight(two_runs) -> None:
    ranks, _, root = two_runs
    state = torch.load(root / "a" / "last.ckpt", weights_only=True)["state_dict"]
    recurrent = [k for k in state if "weight_hh" in k]
    assert recurrent and all(k.endswith("weight_hh_l0") for k in recurrent)
    for key in recurrent:
        assert torch.equal(state[key], ranks[0]["state_dict"][key])


def test_rank_generator_states_are_saved_for_every_rank(two_runs) -> None:
    _, _, root = two_runs
    states = torch.load(root / "a" / "last.ckpt", weights_only=True)["lrr"]["rng"]
    assert len(states) == WORLD
    assert not torch.equal(states[0]["cpu"], states[1]["cpu"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU refusal only")
def test_fsdp_is_refused_on_cpu_by_lightning_with_a_clear_message() -> None:
    # Lightning's FSDPStrategy needs CUDA: CPU runs use ddp / ddp_spawn (README, Scaling out)
    with pytest.raises(ValueError, match="requires a GPU accelerator"):
        L.Trainer(strategy="fsdp", accelerator="cpu", devices=2)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="FSDP needs 2 CUDA devices")
def test_fsdp_fit_runs_on_gpus(tmp_path: Path) -> None:  # pragma: no cover - GPU only
    from lightning_rnn_reg.data import TemporalOrder

    data = TemporalOrder(length=9, train_batches=4, batch_size=8, valid_size=16, test_size=16)
    model = lrr.SequenceClassifier(data.vocab_size, 4, embedding_dim=8, hidden_size=8,
                                   regularizers=[lrr.WeightDrop(0.3), lrr.UpdateDropout(0.2)])
    L.Trainer(strategy="fsdp", accelerator="cuda", devices=2, max_epochs=1, logger=False,
              enable_progress_bar=False, default_root_dir=str(tmp_path)).fit(model, data)
