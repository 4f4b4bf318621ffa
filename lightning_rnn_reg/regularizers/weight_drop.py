"""WeightDrop: DropConnect (Wan et al. 2013) on the hidden-to-hidden weights, as in AWD-LSTM
(Merity et al. 2017): ``U' = U * M / (1 - p)``, one mask ``M`` per forward pass; ``U`` at eval.
"""

from __future__ import annotations

from torch import Tensor

from lightning_rnn_reg import functional as LF
from lightning_rnn_reg.mask_stats import records_masks
from lightning_rnn_reg.regularizers.base import WeightsSiteRegularizer


class WeightDrop(WeightsSiteRegularizer):
    """DropConnect on every ``weight_hh_l*`` of the layer it is given to (Merity et al. 2017).

    Train: ``U' = U * M / (1 - p)``, ``M ~ Bernoulli(1 - p)`` elementwise, one draw per
    forward call shared by the batch and every time step (each layer and direction draws its
    own). ``variational=True`` drops whole rows instead (all recurrent inputs of one gate
    unit), AWD-LSTM's option. Eval: ``U``. The raw weight stays the layer's parameter (same
    ``state_dict`` as ``nn.LSTM``), gradients reach it, and the fused kernel keeps running.

    Example::

        rnn = lrr.LSTM(400, 1150, regularizers=[lrr.WeightDrop(0.5)])
    """

    def __init__(self, p: float = 0.5, variational: bool = False) -> None:
        super().__init__()
        self.p = p
        self.variational = variational

    def is_identity(self) -> bool:
        return self.p == 0.0 or not self.stochastic

    @records_masks
    def forward(self, weight: Tensor) -> Tensor:
        """The dropped weight (a new tensor; the parameter is untouched)."""
        if not isinstance(weight, Tensor) or weight.dim() != 2:
            got = (f"shape {tuple(weight.shape)}" if isinstance(weight, Tensor)
                   else type(weight).__name__)
            raise TypeError(f"WeightDrop acts on a hidden-to-hidden weight matrix (W_hh, 2-D); "
                            f"got {got}. Give it to lrr.LSTM / lrr.GRU (regularizers=[...]), "
                            "which apply it to every weight_hh_l*")
        if self.variational:
            return LF.row_weight_drop(weight, self.p, self.training)
        return LF.weight_drop(weight, self.p, self.training)

    def _extra_options(self) -> dict[str, object]:
        return {"variational": self.variational}
