"""torchmetrics Metrics, exact under DDP."""

from lightning_rnn_reg.metrics.language_modeling import BitsPerCharacter, Perplexity

__all__ = ["BitsPerCharacter", "Perplexity"]
