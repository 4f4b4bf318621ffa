"""The subclassing example in examples/ stays short and works."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

import lightning_rnn_reg as lrr

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "gru_language_model.py"


def _load():
    spec = importlib.util.spec_from_file_location("gru_language_model", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gru_language_model_example_trains_one_step():
    model = _load().GRULanguageModel(vocab_size=50, embedding_dim=8, hidden_size=12,
                                     num_layers=2, regularizers=[lrr.UpdateDropout(0.25)])
    assert all(isinstance(rnn, lrr.GRU) for rnn in model.rnns)
    tokens = torch.randint(0, 50, (7, 3))
    loss, _, state = model.compute_loss(tokens[:-1], tokens[1:], None)
    loss.backward()
    assert model.rnns[0].weight_hh_l0.grad is not None
    assert state[0].shape == (1, 3, 12)


def test_example_subclass_code_is_under_40_lines():
    code = [line for line in EXAMPLE.read_text().splitlines()
            if line.strip() and not line.strip().startswith("#")]
    assert len(code) < 40
