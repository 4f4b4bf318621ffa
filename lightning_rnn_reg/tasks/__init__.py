"""LightningModules for the tasks of the papers, built to be subclassed."""

from lightning_rnn_reg.tasks.base import RecurrentTask
from lightning_rnn_reg.tasks.classifier import SequenceClassifier
from lightning_rnn_reg.tasks.language_model import LanguageModel
from lightning_rnn_reg.tasks.tagger import SequenceTagger

__all__ = ["LanguageModel", "RecurrentTask", "SequenceClassifier", "SequenceTagger"]
