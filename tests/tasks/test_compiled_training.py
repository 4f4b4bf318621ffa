"""A compiled LightningModule holding a loop-path layer trains in a Trainer exactly as eager."""

from __future__ import annotations

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_rnn_reg as lrr


class _Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(30, 8)
        self.rnn = lrr.LSTM(8, 10, 2, regularizers=[lrr.UpdateDropout(0.25),
                                                    lrr.Zoneout(cell=0.1, hidden=0.05)])
        self.head = nn.Linear(10, 30)

    def forward(self, tokens):
        return self.head(self.rnn(self.embedding(tokens))[0])

    def training_step(self, batch, batch_idx):
        tokens, targets = batch
        return nn.functional.cross_entropy(self(tokens).flatten(0, 1), targets.flatten())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def _time_major(rows):
    return tuple(torch.stack(column).t() for column in zip(*rows, strict=True))


def _loader():
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 30, (16, 6), generator=g)  # (B, T) -> time-major per batch
    return DataLoader(TensorDataset(tokens, tokens.roll(-1, 1)), batch_size=4,
                      collate_fn=_time_major)


def _fit(compiled: bool) -> dict[str, torch.Tensor]:
    torch._dynamo.reset()
    L.seed_everything(3)
    model = _Tiny()
    trainer = L.Trainer(max_steps=6, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(torch.compile(model) if compiled else model, _loader())
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_trainer_fit_of_a_compiled_module_gives_the_eager_weights():
    eager = _fit(False)
    torch._dynamo.utils.counters.clear()
    compiled = _fit(True)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0  # it did compile
    for name, value in eager.items():
        torch.testing.assert_close(compiled[name], value, atol=1e-5, rtol=1e-5, msg=name)
