"""Dropouts inside the recurrence: on the recurrent input (Gal 2016), on the cell state (Moon
2015) and on the cell update (Semeniuta 2016).

LSTM step with the three masks (``d(v) = v * m / (1 - p)``)::

    gates = W x_t + U d_R(h_{t-1}) + b                     RecurrentDropout (Gal 2016)
    c_t   = d_C( f * c_{t-1} + i * d_U(g_t) )               CellDropout (Moon 2015),
                                                            UpdateDropout (Semeniuta 2016)
    h_t   = o * tanh(c_t)

GRU (PyTorch's convention, ``z`` keeps the old state): ``h_t = (1 - z) * d_U(n_t) + z * h_{t-1}``.
At eval no mask is applied (``CellDropout`` then computes ``c_t`` unscaled, which is the
test-time scaling problem Semeniuta et al. 2016 describe; it is kept on purpose).
"""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from lightning_rnn_reg import functional as LF
from lightning_rnn_reg.loop_masks import LoopMasks
from lightning_rnn_reg.mask_stats import records_masks
from lightning_rnn_reg.regularizers.base import RecurrentSiteRegularizer


class RecurrentRegularizer(RecurrentSiteRegularizer):
    """A dropout inside the recurrence with one rate ``p``: one Bernoulli mask per step (or
    per sequence) in the :class:`~lightning_rnn_reg.loop_masks.LoopMasks` field ``mask_key``.
    """

    mask_key: ClassVar[str] = ""
    default_per_sequence: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.mask_key and "mask_fields" not in vars(cls):
            cls.mask_fields = (cls.mask_key,)

    def __init__(self, p: float = 0.25, per_sequence: bool | None = None) -> None:
        super().__init__()
        self.p = p
        self.per_sequence = self.default_per_sequence if per_sequence is None else per_sequence

    def is_identity(self) -> bool:
        return self.p == 0.0 or not self.stochastic

    @records_masks
    def loop_masks(self, steps: int, batch: int, hidden: int, like: Tensor,
                   gates: int = 4) -> LoopMasks:
        """The masks for one direction of one layer: ``mask_key`` set to a ``(1|T, B, H)``
        mask, or no mask at all."""
        if self.is_identity():
            return LoopMasks()
        shape = (1 if self.per_sequence else steps, batch, hidden)
        return LoopMasks(**{self.mask_key: LF.dropout_mask(shape, self.p, like)})

    def _extra_options(self) -> dict[str, object]:
        return {"per_sequence": self.per_sequence}


class RecurrentDropout(RecurrentRegularizer):
    """Variational recurrent dropout, Gal & Ghahramani 2016.

    The hidden state entering the recurrent product is dropped, with one mask per sequence
    by default: ``gates_t = W x_t + U (h_{t-1} * m / (1 - p)) + b``. Eval: ``h_{t-1}``.
    That is the "tied weights" variant: one mask for all gates. ``per_gate=True`` is the
    "untied" variant of Gal's best PTB result: an independent mask per gate,
    ``gate_k = act(W_k x_t + U_k (h_{t-1} * m_k / (1 - p)) + b_k)`` (LSTM ``i, f, g, o``;
    GRU ``r, z, n``). Like ``per_sequence``, it only chooses the masks' shape; the rate and
    the eval rule are the same. LSTM and GRU.

    Example::

        rnn = lrr.LSTM(650, 650, 2, regularizers=[lrr.LockedDropout(0.5, at="between"),
                                                  lrr.RecurrentDropout(0.3, per_gate=True)])
    """

    mask_key = "h_mask"
    mask_fields = ("h_mask", "gate_h_mask")
    default_per_sequence = True

    def __init__(self, p: float = 0.25, per_sequence: bool = True,
                 per_gate: bool = False) -> None:
        super().__init__(p, per_sequence)
        self.per_gate = per_gate

    @records_masks
    def loop_masks(self, steps: int, batch: int, hidden: int, like: Tensor,
                   gates: int = 4) -> LoopMasks:
        """``h_mask`` ``(1|T, B, H)``, or with ``per_gate`` ``gate_h_mask``
        ``(1|T, gates, B, H)``; no mask at all when inactive."""
        if not self.per_gate or self.is_identity():
            return super().loop_masks(steps, batch, hidden, like, gates)
        shape = (1 if self.per_sequence else steps, gates, batch, hidden)
        return LoopMasks(gate_h_mask=LF.dropout_mask(shape, self.p, like))

    def _extra_options(self) -> dict[str, object]:
        return {**super()._extra_options(), "per_gate": self.per_gate}


class CellDropout(RecurrentRegularizer):
    """Cell-state dropout (rnnDrop), Moon et al. 2015.

    ``c_t = (f * c_{t-1} + i * g_t) * m / (1 - p)``, one mask per sequence by default, and
    ``h_t = o * tanh(c_t)``. Eval: ``c_t`` as computed, no scaling. With saturated gates the
    train-time cell grows by ``1 / (1 - p)`` per step while the eval cell does not: the
    memory-loss/scaling problem shown by Semeniuta et al. 2016, reproduced faithfully here.
    LSTM only.

    Example::

        rnn = lrr.LSTM(2, 256, regularizers=[lrr.CellDropout(0.5)])
    """

    mask_key = "cell_mask"
    cells = frozenset({"LSTM"})
    cells_reason = "acts on an LSTM cell state; GRU has none"
    default_per_sequence = True

    def __init__(self, p: float = 0.25, per_sequence: bool = True) -> None:
        super().__init__(p, per_sequence)


class UpdateDropout(RecurrentRegularizer):
    """Recurrent dropout without memory loss, Semeniuta et al. 2016.

    Only the candidate update is dropped: ``c_t = f * c_{t-1} + i * g_t * m_t / (1 - p)``
    (GRU: ``h_t = (1 - z) * n_t * m_t / (1 - p) + z * h_{t-1}``), a fresh mask per step by
    default (``per_sequence=True`` for one mask per sequence). Eval: no mask. Inverted
    scaling replaces the authors' non-inverted ``m`` / ``(1 - p)``; the two are equal in
    expectation at every step.

    Example::

        rnn = lrr.LSTM(256, 256, regularizers=[lrr.UpdateDropout(0.25)])
    """

    mask_key = "update_mask"
    default_per_sequence = False

    def __init__(self, p: float = 0.25, per_sequence: bool = False) -> None:
        super().__init__(p, per_sequence)
