"""lightning-rnn-reg: regularizers for recurrent networks, usable in one line from Lightning.

Public API (``import lightning_rnn_reg as lrr``): the regularizer objects, the ``LSTM`` /
``GRU`` layers that take them, ``regularize`` / ``to_torch`` (retrofit an existing model's
``nn.LSTM`` / ``nn.GRU`` and back), the stochastic-mode switches ``mc_dropout`` / ``no_dropout``
and the pure functions in ``lrr.functional``.
"""

from lightning_rnn_reg import callbacks, functional
from lightning_rnn_reg.callbacks import (
    CurriculumDropout,
    NonFiniteGuard,
    RateSchedule,
    RegularizerMonitor,
)
from lightning_rnn_reg.mode import mc_dropout, no_dropout
from lightning_rnn_reg.regularizers import (
    ActivationRegularization,
    CellDropout,
    Dropout,
    EmbeddingDropout,
    FraternalDropout,
    LockedDropout,
    RecurrentDropout,
    Regularizer,
    TemporalActivationRegularization,
    UpdateDropout,
    WeightDrop,
    Zoneout,
)
from lightning_rnn_reg.rnn import GRU, LSTM, regularize, to_torch
from lightning_rnn_reg.tasks import LanguageModel, RecurrentTask, SequenceClassifier, SequenceTagger

__version__ = "0.1.0"

__all__ = [
    "GRU",
    "LSTM",
    "ActivationRegularization",
    "CellDropout",
    "CurriculumDropout",
    "Dropout",
    "EmbeddingDropout",
    "FraternalDropout",
    "LanguageModel",
    "LockedDropout",
    "NonFiniteGuard",
    "RateSchedule",
    "RecurrentDropout",
    "RecurrentTask",
    "Regularizer",
    "RegularizerMonitor",
    "SequenceClassifier",
    "SequenceTagger",
    "TemporalActivationRegularization",
    "UpdateDropout",
    "WeightDrop",
    "Zoneout",
    "__version__",
    "callbacks",
    "functional",
    "mc_dropout",
    "no_dropout",
    "regularize",
    "to_torch",
]
