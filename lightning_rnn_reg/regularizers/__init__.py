"""Regularizer objects: plain PyTorch modules that hold rates (no Lightning import)."""

from lightning_rnn_reg.regularizers.activation import (
    ActivationRegularization,
    TemporalActivationRegularization,
)
from lightning_rnn_reg.regularizers.base import Regularizer
from lightning_rnn_reg.regularizers.dropout import Dropout, LockedDropout
from lightning_rnn_reg.regularizers.embedding import EmbeddingDropout
from lightning_rnn_reg.regularizers.fraternal import FraternalDropout
from lightning_rnn_reg.regularizers.recurrent import CellDropout, RecurrentDropout, UpdateDropout
from lightning_rnn_reg.regularizers.weight_drop import WeightDrop
from lightning_rnn_reg.regularizers.zoneout import Zoneout

__all__ = [
    "ActivationRegularization",
    "CellDropout",
    "Dropout",
    "EmbeddingDropout",
    "FraternalDropout",
    "LockedDropout",
    "RecurrentDropout",
    "Regularizer",
    "TemporalActivationRegularization",
    "UpdateDropout",
    "WeightDrop",
    "Zoneout",
]
