"""The Regularize callback: an existing LightningModule (embedding -> nn.LSTM -> linear) gets
regularizers from the Trainer's callbacks alone: swapped at setup, trained, resumed exactly
from a checkpoint, run under ddp_spawn, built by LightningCLI from YAML.

Exact resume needs a data order that does not draw from torch's global generator (the
DataLoaders here have their own ``generator``): the masks do, and the callback saves and
restores that generator with the checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_rnn_reg as lrr
from lightning_rnn_reg.callbacks import Regularize

VOCAB, CLASSES, SEQUENCES, STEPS_LONG, BATCH = 12, 3, 16, 10, 4  # 4 batches per epoch


def _dataset() -> TensorDataset:
    ids = torch.randint(0, VOCAB, (SEQUENCES, STEPS_LONG), generator=torch.Generator()
                        .manual_seed(7))
    return TensorDataset(ids, (ids * 5 + 1) % CLASSES)


def _loader() -> DataLoader:
    # its own generator: iterating draws nothing from torch's global generator
    return DataLoader(_dataset(), batch_size=BATCH, generator=torch.Generator().manual_seed(0))


class TinyTagger(L.LightningModule):
    """A plain LightningModule of its own: embedding -> 2-layer nn.LSTM -> linear."""

    def __init__(self, dim: int = 8, hidden: int = 8, lr: float = 1.0) -> None:
        super().__init__()
        self.lr = lr
        self.embedding = nn.Embedding(VOCAB, dim)
        self.rnn = nn.LSTM(dim, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, CLASSES)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embedding(ids))
        return self.head(out)

    def _loss(self, batch: list[torch.Tensor]) -> torch.Tensor:
        ids, tags = batch
        return F.cross_entropy(self(ids).flatten(0, 1), tags.flatten())

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self._loss(batch)

    def test_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self.log("test_loss", self._loss(batch))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr)

    def train_dataloader(self) -> DataLoader:
        return _loader()

    def test_dataloader(self) -> DataLoader:
        return _loader()


def _regs() -> list[lrr.Regularizer]:
    """Mask-drawing regularizers: every step's numbers depend on the generator."""
    return [lrr.LockedDropout(0.3, at="input"), lrr.WeightDrop(0.4),
            lrr.LockedDropout(0.3, at="output")]


def _trainer(root: Path, callbacks: list[L.Callback], max_steps: int, **kw: Any) -> L.Trainer:
    args: dict[str, Any] = {"max_steps": max_steps, "accelerator": "cpu", "devices": 1,
                            "logger": False, "enable_checkpointing": False,
                            "enable_progress_bar": False, "enable_model_summary": False,
                            "default_root_dir": str(root), "callbacks": callbacks}
    args.update(kw)
    return L.Trainer(**args)


def _weights(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _fit(root: Path, max_steps: int, regs: list[lrr.Regularizer] | None,
         seed: int = 0, **kw: Any) -> TinyTagger:
    L.seed_everything(seed, verbose=False)
    model = TinyTagger()
    callbacks: list[L.Callback] = [Regularize(regs)] if regs is not None else []
    ckpt_path = kw.pop("ckpt_path", None)
    _trainer(root, callbacks + kw.pop("callbacks", []), max_steps, **kw).fit(
        model, ckpt_path=ckpt_path)
    return model


class StartRecorder(L.Callback):
    """The module's layer type and weights at train start (after a checkpoint's restore)."""

    def __init__(self) -> None:
        self.layer: nn.Module | None = None
        self.weights: dict[str, torch.Tensor] = {}
        self.step = -1

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.layer = pl_module.rnn
        self.weights = _weights(pl_module)
        self.step = trainer.global_step


# --------------------------------------------------------------------------- fit
def test_fit_swaps_the_lstm_for_an_lrr_lstm_holding_the_regularizers(tmp_path: Path) -> None:
    model = _fit(tmp_path, 2, _regs())
    assert isinstance(model.rnn, lrr.LSTM)
    assert [type(r) for r in model.rnn.regularizers] == [lrr.LockedDropout, lrr.WeightDrop,
                                                          lrr.LockedDropout]
    assert model.rnn.regularizers[1].p == 0.4


def test_fit_trains_the_original_parameters_inside_the_swapped_layer(tmp_path: Path) -> None:
    L.seed_everything(0, verbose=False)
    model = TinyTagger()
    original = dict(model.rnn.named_parameters())
    start = _weights(model)
    _trainer(tmp_path, [Regularize(_regs())], 3).fit(model)
    assert all(p is original[name] for name, p in model.rnn.named_parameters())
    assert not torch.equal(model.rnn.weight_hh_l1, start["rnn.weight_hh_l1"])
    assert list(model.state_dict()) == list(start)


def test_the_regularizers_act_during_training(tmp_path: Path) -> None:
    plain = _fit(tmp_path / "plain", 3, None)
    regularized = _fit(tmp_path / "reg", 3, _regs())
    assert not torch.equal(plain.rnn.weight_hh_l0, regularized.rnn.weight_hh_l0)
    # and with the regularizers but no masks (p = 0): exactly the plain run
    zero = _fit(tmp_path / "zero", 3, [lrr.LockedDropout(0.0), lrr.WeightDrop(0.0)])
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(),
                                                  zero.state_dict().values(), strict=True))


def test_a_second_setup_of_the_same_module_changes_nothing(tmp_path: Path) -> None:
    L.seed_everything(0, verbose=False)
    model = TinyTagger()
    callback = Regularize(_regs())
    trainer = _trainer(tmp_path, [callback], 2)
    trainer.fit(model)
    layer = model.rnn
    trainer.test(model, verbose=False)
    _trainer(tmp_path, [callback], 3).fit(model)  # a second fit: setup once more
    assert model.rnn is layer and len(layer.regularizers) == 3


# ------------------------------------------------------------------------- resume
@pytest.fixture(scope="module")
def resume_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """An uninterrupted 8-step fit; a 4-step fit saving a checkpoint; a fresh module (other
    seed, so other initial weights) + fresh callback resumed from it to 8 steps."""
    root = tmp_path_factory.mktemp("regularize_resume")
    full = _fit(root / "full", 8, _regs())
    saver = ModelCheckpoint(dirpath=str(root / "ckpt"), filename="{step}",
                            every_n_train_steps=4, save_top_k=-1)
    _fit(root / "first", 4, _regs(), enable_checkpointing=True, callbacks=[saver])
    checkpoint = root / "ckpt" / "step=4.ckpt"
    recorder = StartRecorder()
    resumed = _fit(root / "resumed", 8, _regs(), seed=123, callbacks=[recorder],
                   ckpt_path=str(checkpoint))
    return {"root": root, "full": full, "resumed": resumed, "checkpoint": checkpoint,
            "recorder": recorder}


def test_resume_loads_the_checkpoint_weights_into_the_swapped_layers(resume_runs) -> None:
    recorder = resume_runs["recorder"]
    assert recorder.step == 4  # resumed after the checkpoint's 4 steps
    assert isinstance(recorder.layer, lrr.LSTM) and len(recorder.layer.regularizers) == 3
    saved = torch.load(resume_runs["checkpoint"], weights_only=True)["state_dict"]
    assert recorder.weights.keys() == saved.keys()
    for name in saved:
        assert torch.equal(recorder.weights[name], saved[name]), name


def test_interrupted_and_resumed_fit_ends_with_the_uninterrupted_weights(resume_runs) -> None:
    full, resumed = resume_runs["full"].state_dict(), resume_runs["resumed"].state_dict()
    assert full.keys() == resumed.keys()
    for name in full:
        assert torch.equal(full[name], resumed[name]), name


def test_a_resume_without_the_saved_generator_state_would_differ(resume_runs) -> None:
    """The check above can fail: the masks after the resume depend on the generator."""
    root = resume_runs["root"]
    state = torch.load(resume_runs["checkpoint"], weights_only=True)
    assert len(state["lrr"]["rng"]) == 1
    del state["lrr"]
    torch.save(state, root / "no_rng.ckpt")
    forgot = _fit(root / "forgot", 8, _regs(), seed=123, ckpt_path=str(root / "no_rng.ckpt"))
    assert not torch.equal(forgot.rnn.weight_hh_l0, resume_runs["full"].rnn.weight_hh_l0)


# --------------------------------------------------------------------------- DDP
class RankRecord(L.Callback):
    """Per rank (ddp_spawn hands back rank 0 only): the layer, a mask probe, the weights."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir
        self.probe: list[list[bool]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx == 0:  # the mask a LockedDropout would draw now (training undisturbed)
            with torch.random.fork_rng():
                self.probe = (lrr.LockedDropout(0.5)(torch.ones(1, 4, 16)) > 0).flatten().tolist()

    def on_train_end(self, trainer, pl_module) -> None:
        record = {"rank": trainer.global_rank, "world_size": trainer.world_size,
                  "layer": type(pl_module.rnn).__qualname__,
                  "regularizers": [type(r).__name__ for r in pl_module.rnn.regularizers],
                  "probe": self.probe,
                  "weights": {k: v.tolist() for k, v in pl_module.state_dict().items()}}
        (Path(self.out_dir) / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


def test_ddp_spawn_swaps_the_layers_in_every_process_and_keeps_them_in_sync(
        tmp_path: Path) -> None:
    L.seed_everything(5, verbose=False)
    model = TinyTagger()
    start = _weights(model)
    saver = ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), filename="last")
    trainer = _trainer(tmp_path, [Regularize(_regs()), RankRecord(str(tmp_path)), saver], 3,
                       strategy="ddp_spawn", devices=2, enable_checkpointing=True)
    trainer.fit(model)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [(r["rank"], r["world_size"]) for r in ranks] == [(0, 2), (1, 2)]
    for record in ranks:
        assert record["layer"] == "LSTM" and record["regularizers"] == [
            "LockedDropout", "WeightDrop", "LockedDropout"]
    assert ranks[0]["probe"] != ranks[1]["probe"]  # each rank draws its own masks
    assert ranks[0]["weights"] == ranks[1]["weights"]  # replicas in sync, exactly
    trained = {k: torch.tensor(v) for k, v in ranks[0]["weights"].items()}
    assert not torch.equal(trained["rnn.weight_hh_l0"], start["rnn.weight_hh_l0"])
    # the checkpoint (a collective dump on both ranks) holds each rank's mask generator
    rng = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)["lrr"]["rng"]
    assert len(rng) == 2 and not torch.equal(rng[0]["cpu"], rng[1]["cpu"])
    # the launching process's module was never set up (plain nn.LSTM), with rank 0's weights
    assert type(model.rnn) is nn.LSTM
    assert all(torch.equal(v, trained[k]) for k, v in model.state_dict().items())


# -------------------------------------------------------------------- construction
CALLBACK_YAML = """
trainer:
  callbacks:
    - class_path: lightning_rnn_reg.callbacks.Regularize
      init_args:
        include: rnn
        regularizers:
          - class_path: lightning_rnn_reg.LockedDropout
            init_args: {p: 0.3}
          - class_path: lightning_rnn_reg.WeightDrop
            init_args: {p: 0.5}
"""


def test_lightning_cli_builds_the_callback_from_yaml(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(CALLBACK_YAML)
    cli = LightningCLI(TinyTagger, run=False, save_config_callback=None, args=[
        "--config", str(config), "--trainer.logger", "false", "--trainer.max_steps", "1",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_checkpointing", "false",
        "--trainer.enable_model_summary", "false",
        f"--trainer.default_root_dir={tmp_path}"])
    [callback] = [cb for cb in cli.trainer.callbacks if isinstance(cb, Regularize)]
    assert callback.include == ["rnn"]
    assert [(type(r), r.p) for r in callback.regularizers] == [(lrr.LockedDropout, 0.3),
                                                               (lrr.WeightDrop, 0.5)]
    cli.trainer.fit(cli.model)
    assert isinstance(cli.model.rnn, lrr.LSTM)


def test_the_lightning_rnn_reg_command_parses_the_callback(tmp_path: Path, capsys) -> None:
    from lightning_rnn_reg.cli import main

    config = tmp_path / "config.yaml"
    config.write_text(CALLBACK_YAML + """
model:
  class_path: lightning_rnn_reg.SequenceClassifier
  init_args: {vocab_size: 10, num_classes: 2}
data:
  class_path: lightning_rnn_reg.data.TemporalOrder
""")
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    assert "lightning_rnn_reg.callbacks.Regularize" in capsys.readouterr().out


def test_the_constructor_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="at least one regularizer"):
        Regularize([])
    with pytest.raises(TypeError, match=r"regularizers\[0\] must be a lightning_rnn_reg "
                                        "Regularizer"):
        Regularize([nn.Dropout(0.3)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="must be a list"):
        Regularize(lrr.WeightDrop(0.5))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="EmbeddingDropout acts at site 'embedding'"):
        Regularize([lrr.EmbeddingDropout(0.1)])
    with pytest.raises(TypeError, match="include patterns must be non-empty strings"):
        Regularize([lrr.WeightDrop(0.5)], include=[""])


def test_a_pattern_matching_no_layer_is_an_error_at_setup() -> None:
    with pytest.raises(ValueError, match="'encoder' matches no recurrent layer of TinyTagger"):
        Regularize([lrr.WeightDrop(0.5)], include="encoder").setup(
            L.Trainer(logger=False), TinyTagger(), "fit")


def test_a_module_with_only_its_own_lrr_layers_is_an_error() -> None:
    model = lrr.SequenceClassifier(10, 2, embedding_dim=4, hidden_size=4)
    with pytest.raises(ValueError, match="already are lightning_rnn_reg layers with their own"):
        Regularize([lrr.WeightDrop(0.5)]).setup(L.Trainer(logger=False), model, "fit")
