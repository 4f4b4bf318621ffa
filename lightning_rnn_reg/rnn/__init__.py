"""Recurrent layers that take regularizers."""

from lightning_rnn_reg.rnn.layers import GRU, LSTM

__all__ = ["GRU", "LSTM"]
