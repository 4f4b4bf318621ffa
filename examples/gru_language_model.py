"""Subclassing LanguageModel: a GRU language model in a few lines.

Override ``make_layer`` to change the recurrent layer; ``encode``, ``head`` and
``compute_loss`` are the other override points.

    lightning-rnn-reg fit --config examples/configs/quickstart.yaml \\
        --model examples.gru_language_model.GRULanguageModel   # from the repository root
"""

from __future__ import annotations

from torch import nn

import lightning_rnn_reg as lrr


class GRULanguageModel(lrr.LanguageModel):
    """LanguageModel whose recurrent layers are ``lrr.GRU`` (same regularizers apply, except
    CellDropout and zoneout of a cell, which need an LSTM cell)."""

    def make_layer(self, input_size: int, hidden_size: int, regularizers: list) -> nn.Module:
        return lrr.GRU(input_size, hidden_size, regularizers=regularizers)


if __name__ == "__main__":
    import torch

    model = GRULanguageModel(vocab_size=100, embedding_dim=16, hidden_size=32, num_layers=2,
                             regularizers=[lrr.UpdateDropout(0.25), lrr.WeightDrop(0.3)])
    logits, state = model(torch.randint(0, 100, (35, 4)))
    print(logits.shape, [s.shape for s in state])
