"""LightningModules for the tasks of the papers, built to be subclassed."""

from lightning_rnn_reg.tasks.base import RecurrentTask
from lightning_rnn_reg.tasks.language_model import LanguageModel

__all__ = ["LanguageModel", "RecurrentTask"]
