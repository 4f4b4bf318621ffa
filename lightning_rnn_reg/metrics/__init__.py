"""torchmetrics Metrics, exact under DDP."""

from lightning_rnn_reg.metrics.classification import F1PN, MeanCrossEntropy, classification_metrics
from lightning_rnn_reg.metrics.language_modeling import BitsPerCharacter, Perplexity
from lightning_rnn_reg.metrics.span_f1 import SpanF1

__all__ = [
    "F1PN",
    "BitsPerCharacter",
    "MeanCrossEntropy",
    "Perplexity",
    "SpanF1",
    "classification_metrics",
]
