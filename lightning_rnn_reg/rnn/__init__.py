"""Recurrent layers that take regularizers, and the retrofit of existing models
(``regularize`` / ``to_torch``)."""

from lightning_rnn_reg.rnn.layers import GRU, LSTM
from lightning_rnn_reg.rnn.retrofit import regularize, to_torch

__all__ = ["GRU", "LSTM", "regularize", "to_torch"]
