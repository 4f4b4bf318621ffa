"""Language-model metrics from summed token negative log-likelihoods: perplexity
``exp(sum NLL / N)`` (word level) and bits per character ``sum NLL / (N ln 2)``.

Both keep two sum states (total NLL in float64 and token count), so they are exact under DDP:
ranks add their sums, and the ratio is taken once.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torchmetrics import Metric


class _MeanNLL(Metric):
    """Accumulates summed NLL and token counts; subclasses turn the mean into their unit."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    # states (add_state)
    nll_sum: Tensor
    count: Tensor

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.add_state("nll_sum", default=torch.tensor(0.0, dtype=torch.float64),
                       dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, nll_sum: Tensor, count: Tensor | int) -> None:
        """Add ``nll_sum`` (sum of natural-log NLL over ``count`` tokens)."""
        self.nll_sum = self.nll_sum + nll_sum.detach().to(torch.float64)
        self.count = self.count + torch.as_tensor(count, device=self.count.device,
                                                  dtype=torch.long)

    def _mean(self) -> Tensor:
        if int(self.count) == 0:
            raise ValueError(f"{type(self).__name__}.compute() called before any update")
        return self.nll_sum / self.count


class Perplexity(_MeanNLL):
    """Word-level perplexity ``exp(sum_i -log p(w_i) / N)``, exact under DDP.

    Example::

        ppl = Perplexity()
        ppl.update(F.cross_entropy(logits, y, reduction="sum"), y.numel())
        ppl.compute()
    """

    def compute(self) -> Tensor:
        return torch.exp(self._mean())


class BitsPerCharacter(_MeanNLL):
    """Bits per character ``sum_i -log2 p(c_i) / N``, exact under DDP.

    Example::

        bpc = BitsPerCharacter()
        bpc.update(F.cross_entropy(logits, y, reduction="sum"), y.numel())
        bpc.compute()
    """

    def compute(self) -> Tensor:
        return self._mean() / math.log(2.0)
