"""Lightning callbacks for regularizers: ``CurriculumDropout`` (Morerio et al. 2017),
``RateSchedule`` (any rate on any schedule), ``RegularizerMonitor`` (rates, measured
dropped fractions, AR/TAR/fraternal terms, hidden-state norms) and ``NonFiniteGuard`` (nan/inf
steps skipped and counted, no nan in a checkpoint) and ``Regularize`` (regularizers for an
existing module's ``nn.LSTM`` / ``nn.GRU``, from the Trainer's callbacks) and
``TextPredictionWriter`` (a language model's scores or generated text from ``predict``) and
the optimization rules of AWD-LSTM: ``NTASGD`` (non-monotonically triggered averaged SGD) and
``ScaleLRByWindow`` (variable-BPTT learning-rate scaling)."""

from lightning_rnn_reg.callbacks.curriculum import CurriculumDropout, curriculum_gamma
from lightning_rnn_reg.callbacks.last_checkpoint import LastCheckpoint
from lightning_rnn_reg.callbacks.monitor import RegularizerMonitor
from lightning_rnn_reg.callbacks.nonfinite import NonFiniteError, NonFiniteGuard
from lightning_rnn_reg.callbacks.nt_asgd import NTASGD
from lightning_rnn_reg.callbacks.rate_schedule import RateSchedule
from lightning_rnn_reg.callbacks.regularize import Regularize
from lightning_rnn_reg.callbacks.schedules import (
    SCHEDULES,
    Annealed,
    Constant,
    Cosine,
    Curriculum,
    Linear,
    Schedule,
    Step,
    make_schedule,
)
from lightning_rnn_reg.callbacks.targets import named_regularizers, select_regularizers
from lightning_rnn_reg.callbacks.text_writer import TextPredictionWriter
from lightning_rnn_reg.callbacks.variable_bptt import ScaleLRByWindow

__all__ = [
    "NTASGD",
    "SCHEDULES",
    "Annealed",
    "Constant",
    "Cosine",
    "Curriculum",
    "CurriculumDropout",
    "LastCheckpoint",
    "Linear",
    "NonFiniteError",
    "NonFiniteGuard",
    "RateSchedule",
    "Regularize",
    "RegularizerMonitor",
    "ScaleLRByWindow",
    "Schedule",
    "Step",
    "TextPredictionWriter",
    "curriculum_gamma",
    "make_schedule",
    "named_regularizers",
    "select_regularizers",
]
