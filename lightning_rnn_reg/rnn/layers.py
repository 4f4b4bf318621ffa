"""Recurrent layers that take regularizers: ``LSTM`` and ``GRU``, drop-ins for ``nn.LSTM`` /
``nn.GRU``.

Same constructor names, parameter names and shapes (``weight_ih_l0``, ``weight_hh_l0_reverse``,
...), same ``state_dict`` and return values. Regularizers are passed as objects and act at
their site (Zaremba 2014 notation, ``D`` a dropout)::

    x -> D_input -> [layer 1] -> D_between -> [layer 2] ... -> D_output -> output
    inside each layer: WeightDrop on U (weights), RecurrentDropout / CellDropout /
    UpdateDropout / Zoneout (recurrent)

Two paths compute the same math. *Fused*: the ``nn.LSTM`` / ``nn.GRU`` kernel (oneDNN on
CPU, cuDNN on GPU), used whenever every regularizer acts outside the recurrence; WeightDrop
swaps the dropped ``U`` in with ``torch.func.functional_call``. *Loop*: input projection of
all steps in one product, then :mod:`lightning_rnn_reg.rnn.loop` (hand-written backward).
The loop runs only when a recurrent-site regularizer draws masks now (or with
``path="loop"``); e.g. ``UpdateDropout`` at eval is plain LSTM math and runs fused.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import ClassVar, cast

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lightning_rnn_reg.regularizers.base import (
    ActivationDropoutBase,
    RecurrentSiteRegularizer,
    Regularizer,
    WeightsSiteRegularizer,
)
from lightning_rnn_reg.regularizers.dropout import Dropout  # nn.LSTM's dropout= is Zaremba's
from lightning_rnn_reg.rnn.checks import LayerChecks
from lightning_rnn_reg.rnn.fused import FusedKernels, Result
from lightning_rnn_reg.rnn.loop_runner import LoopRunner
from lightning_rnn_reg.rnn.params import RNNBaseCompat, register_weights, reset_uniform

PATHS = ("auto", "fused", "loop")


class _RecurrentLayer(LayerChecks, RNNBaseCompat, nn.Module):
    """Shared machinery of :class:`LSTM` and :class:`GRU` (``mode`` and ``gates`` differ)."""

    mode: ClassVar[str] = ""
    gates: ClassVar[int] = 0
    _kernel: ClassVar[type[nn.LSTM] | type[nn.GRU]]

    def _setup(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bias: bool,
        batch_first: bool,
        dropout: float,
        bidirectional: bool,
        proj_size: int,
        regularizers: Iterable[Regularizer],
        path: str,
        device: torch.device | str | None,
        dtype: torch.dtype | None,
    ) -> None:
        """The constructor body shared by :class:`LSTM` and :class:`GRU`."""
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("num_layers", num_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{self.mode}: {name} must be a positive int, got {value!r}")
        if isinstance(proj_size, bool) or not isinstance(proj_size, int) or proj_size < 0:
            raise ValueError(f"{self.mode}: proj_size must be an int >= 0, got {proj_size!r}")
        if proj_size >= hidden_size:
            raise ValueError(f"{self.mode}: proj_size must be smaller than hidden_size "
                             f"({hidden_size}), got {proj_size}")
        if path not in PATHS:
            raise ValueError(f"{self.mode}: path must be one of {PATHS}, got {path!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = self._check_dropout(dropout, num_layers)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        self.num_directions = 2 if bidirectional else 1
        self._directions = register_weights(self, self.gates, input_size, hidden_size,
                                            num_layers, self.num_directions, bias, proj_size,
                                            device, dtype)
        self.reset_parameters()
        regs = list(regularizers)
        if self.dropout > 0.0 and num_layers > 1:
            regs.insert(0, Dropout(self.dropout, at="between"))
        self.regularizers = nn.ModuleList(self._check_regularizers(regs, path))
        self.path = "loop" if path == "loop" or self._recurrent_regs() else "fused"
        self._forced_loop = path == "loop"
        self._kernels = FusedKernels(self._kernel, input_size, hidden_size, num_layers, bias,
                                     bidirectional, proj_size)

    def _check_dropout(self, dropout: float, num_layers: int) -> float:
        """``dropout=p`` as in ``nn.LSTM``: per-step dropout on every layer's output but the
        last, i.e. ``Dropout(p, at="between")`` (Zaremba 2014)."""
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) \
                or not 0.0 <= dropout < 1.0:
            raise ValueError(f"{self.mode}: dropout must be a number in [0, 1), got {dropout!r}")
        if dropout > 0.0 and num_layers == 1:
            warnings.warn(
                f"{self.mode}: dropout={dropout} acts between recurrent layers (as in nn.LSTM), "
                "so with num_layers=1 it does nothing; use LockedDropout(at='output') or "
                "Dropout(at='output') to drop the layer's output",
                UserWarning, stacklevel=3)
        return float(dropout)

    # ----------------------------------------------------------------------------- set-up
    def reset_parameters(self) -> None:
        """``U(-1/sqrt(H), 1/sqrt(H))`` for every parameter, in ``nn.LSTM``'s order (so a seed
        gives the same weights as ``nn.LSTM`` / ``nn.GRU``)."""
        reset_uniform(self, self.hidden_size)

    def _regs(self) -> Iterable[Regularizer]:
        # nn.ModuleList iterates as Module; it holds only what _check_regularizers accepted.
        return cast("Iterable[Regularizer]", self.regularizers)

    def _recurrent_regs(self) -> list[RecurrentSiteRegularizer]:
        return [reg for reg in self._regs() if isinstance(reg, RecurrentSiteRegularizer)]

    def _site_regs(self, site: str) -> list[ActivationDropoutBase]:
        # Only activation dropouts act at 'input' / 'between' / 'output'.
        return [cast(ActivationDropoutBase, reg) for reg in self._regs() if reg.site == site]

    def _weight_regs(self) -> dict[str, WeightsSiteRegularizer]:
        """``{weight kind: the regularizer acting on it now}``."""
        return {kind: reg for reg in self._regs() if isinstance(reg, WeightsSiteRegularizer)
                and not reg.is_identity() for kind in reg.weights}

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        defaults = {"bias": True, "batch_first": False, "dropout": 0.0, "bidirectional": False,
                    "proj_size": 0}
        for name, default in defaults.items():
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)}"
        return text + f", path={self.path!r}"

    # ---------------------------------------------------------------------------- forward
    def _uses_loop_now(self) -> bool:
        """Loop only when the math needs it: a recurrent regularizer that acts now."""
        if self._forced_loop:
            return True
        return any(not reg.is_identity() for reg in self._recurrent_regs())

    def forward(
        self,
        input: Tensor | PackedSequence,
        hx: Tensor | tuple[Tensor, Tensor] | None = None,
        lengths: Tensor | None = None,
    ) -> tuple[Tensor | PackedSequence, Tensor | tuple[Tensor, Tensor]]:
        """Run the stack.

        Args:
            input: ``(T, B, input_size)`` (``(B, T, input_size)`` with ``batch_first``), an
                unbatched ``(T, input_size)``, or a ``PackedSequence``.
            hx: initial state as for ``nn.LSTM`` (``(h_0, c_0)``, each
                ``(num_layers * num_directions, B, hidden_size)``) or ``nn.GRU`` (``h_0``);
                zeros when omitted.
            lengths: optional ``(B,)`` valid lengths of a padded batch (``1 <= len <= T``):
                padding never enters the states, and outputs there are zero.

        Returns:
            ``(output, (h_n, c_n))`` for LSTM, ``(output, h_n)`` for GRU, as ``nn.LSTM`` /
            ``nn.GRU``; ``output`` is ``(T, B, D * hidden_size)`` (a ``PackedSequence`` when
            the input was one).
        """
        if isinstance(input, PackedSequence):
            if lengths is not None:
                raise ValueError(f"{self.mode}: give lengths or a PackedSequence, not both")
            return self._forward_packed(input, hx)
        x, unbatched = self._check_input(input)
        steps, batch = x.shape[0], x.shape[1]
        if lengths is not None:
            lengths = self._check_lengths(lengths, steps, batch)
        h0, c0 = self._initial_state(hx, batch, x, unbatched)
        out, h_n, c_n = self._run(x, h0, c0, lengths)
        if self.batch_first and not unbatched:
            out = out.transpose(0, 1)
        if unbatched:
            out, h_n = out.squeeze(1), h_n.squeeze(1)
            c_n = c_n.squeeze(1) if c_n is not None else None
        return out, self._pack_state(h_n, c_n)

    def _forward_packed(
        self, packed: PackedSequence, hx: Tensor | tuple[Tensor, Tensor] | None
    ) -> tuple[PackedSequence, Tensor | tuple[Tensor, Tensor]]:
        padded, lengths = pad_packed_sequence(packed)  # original (unsorted) batch order
        h0, c0 = self._initial_state(hx, padded.shape[1], padded, False)
        out, h_n, c_n = self._run(padded, h0, c0, lengths)
        if packed.sorted_indices is not None:
            order = packed.sorted_indices
            out, lengths = out.index_select(1, order), lengths[order.cpu()]
        repacked = pack_padded_sequence(out, lengths, enforce_sorted=True)
        result = PackedSequence(
            repacked.data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices
        )
        return result, self._pack_state(h_n, c_n)

    def _pack_state(self, h_n: Tensor, c_n: Tensor | None) -> Tensor | tuple[Tensor, Tensor]:
        return h_n

    def _initial_state(
        self, hx: object, batch: int, like: Tensor, unbatched: bool
    ) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError

    # ------------------------------------------------------------------------ the stack
    def _direction_weights(self, index: int, drops: dict[str, WeightsSiteRegularizer]
                           ) -> dict[str, Tensor]:
        """``{kind: tensor}`` of direction ``index`` (layer-major), weights-site regularizers
        applied."""
        weights = self._directions[index].tensors(self)
        for kind, reg in drops.items():
            weights[kind] = reg(weights[kind])
        return weights

    def _run(
        self, x: Tensor, h0: Tensor, c0: Tensor | None, lengths: Tensor | None
    ) -> Result:
        """The stack: input-site dropout, the layers (one runner, picked once per call),
        between-layer dropout, output-site dropout."""
        for reg in self._site_regs("input"):
            x = reg.drop(x, False)
        drops = self._weight_regs()
        between = self._site_regs("between")
        loop = self._uses_loop_now()
        if not loop and not between:  # one kernel call for the whole stack
            weights: dict[str, Tensor] = {}
            for index, direction in enumerate(self._directions):
                tensors = self._direction_weights(index, drops)
                weights.update({direction.names[kind]: t for kind, t in tensors.items()})
            out, h_n, c_n = self._kernels.run_stack(weights, x, h0, c0, lengths)
        else:
            runner: FusedKernels | LoopRunner = (
                LoopRunner(self.mode, self.gates, self.hidden_size, self._recurrent_regs()) if loop
                else self._kernels)
            out, h_n, c_n = self._run_layers(runner, drops, between, x, h0, c0, lengths)
        for reg in self._site_regs("output"):
            out = reg.drop(out, False)
        return out, h_n, c_n

    def _run_layers(self, runner: FusedKernels | LoopRunner,
                    drops: dict[str, WeightsSiteRegularizer],
                    between: list[ActivationDropoutBase], x: Tensor, h0: Tensor,
                    c0: Tensor | None, lengths: Tensor | None) -> Result:
        h_list, c_list = [], []
        d = self.num_directions
        for layer in range(self.num_layers):
            if layer > 0:
                for reg in between:
                    x = reg.drop(x, False)
            state = slice(layer * d, (layer + 1) * d)
            directions = [self._direction_weights(i, drops) for i in range(layer * d,
                                                                            (layer + 1) * d)]
            x, h, c = runner.run_layer(layer, directions, x, h0[state],
                                       c0[state] if c0 is not None else None, lengths)
            h_list.append(h)
            if c is not None:
                c_list.append(c)
        return x, torch.cat(h_list), torch.cat(c_list) if c_list else None


class LSTM(_RecurrentLayer):
    """Multi-layer LSTM that takes regularizers; a drop-in for ``nn.LSTM``.

    ``i, f, g, o = σ, σ, tanh, σ(W x_t + b_ih + U h_{t-1} + b_hh)``,
    ``c_t = f * c_{t-1} + i * g``, ``h_t = o * tanh(c_t)`` (Hochreiter & Schmidhuber 1997),
    with each regularizer acting at its site (see the module docstring).

    Args:
        input_size: features of the input ``x_t`` (as ``nn.LSTM``).
        hidden_size: units ``H`` per layer and direction (as ``nn.LSTM``).
        num_layers: stacked layers (as ``nn.LSTM``).
        bias: whether the layers have ``b_ih`` and ``b_hh`` (as ``nn.LSTM``).
        batch_first: input and output ``(B, T, F)`` instead of ``(T, B, F)`` (as ``nn.LSTM``).
        dropout: as ``nn.LSTM``: per-step dropout with rate ``p`` on the output of every
            layer but the last, i.e. ``Dropout(p, at="between")`` (Zaremba 2014), composable
            with the other regularizers; with ``num_layers=1`` it warns and does nothing.
        bidirectional: a second, reversed direction per layer (as ``nn.LSTM``).
        proj_size: as ``nn.LSTM``: ``h_t = W_hr (o_t * tanh(c_t))`` of size ``proj_size``;
            fused path only (a recurrent-site regularizer or ``path="loop"`` with it is
            refused: the loop does not implement projections).
        regularizers: regularizer objects for the sites ``input``, ``between``, ``output``,
            ``weights`` and ``recurrent``; others raise ``ValueError``.
        path: ``"auto"`` (fused unless a recurrent-site regularizer needs the loop),
            ``"loop"`` (always the custom loop), or ``"fused"`` (error if impossible).

    ``layer.path`` is ``"fused"`` or ``"loop"`` (the training-time path). Under
    ``torch.autocast`` the fused path takes the autocast dtype as ``nn.LSTM`` does and the
    loop runs its recurrence in the parameters' dtype; under ``torch.compile`` the loop runs
    outside the graph; under ``torch.func`` transforms it runs in plain differentiable ops;
    double backward through the loop raises (the fused path supports it).

    Shapes: input ``(T, B, I)`` (``(B, T, I)`` with ``batch_first``); output
    ``(T, B, D*P)`` with ``P = proj_size or H``; ``h_n``: ``(num_layers*D, B, P)``,
    ``c_n``: ``(num_layers*D, B, H)``.

    Example::

        rnn = lrr.LSTM(400, 1150, 3, regularizers=[
            lrr.LockedDropout(0.4, at="input"), lrr.LockedDropout(0.3, at="between"),
            lrr.WeightDrop(0.5)])
        out, (h, c) = rnn(torch.randn(70, 20, 400))
    """

    mode = "LSTM"
    gates = 4
    _kernel = nn.LSTM

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        regularizers: Iterable[Regularizer] = (),
        path: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self._setup(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                    bidirectional, proj_size, regularizers, path, device, dtype)

    def _initial_state(
        self, hx: object, batch: int, like: Tensor, unbatched: bool
    ) -> tuple[Tensor, Tensor | None]:
        out_size = self.proj_size or self.hidden_size
        if hx is None:
            return (like.new_zeros(self._state_shape(batch, out_size)),
                    like.new_zeros(self._state_shape(batch, self.hidden_size)))
        if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise ValueError("LSTM: hx must be a tuple (h_0, c_0)")
        h0 = self._check_state("h_0", hx[0], batch, out_size, unbatched)
        c0 = self._check_state("c_0", hx[1], batch, self.hidden_size, unbatched)
        return h0, c0

    def _pack_state(self, h_n: Tensor, c_n: Tensor | None) -> tuple[Tensor, Tensor]:
        assert c_n is not None
        return h_n, c_n


class GRU(_RecurrentLayer):
    """Multi-layer GRU that takes regularizers; a drop-in for ``nn.GRU``.

    ``r, z = σ(W x_t + b_i + U h_{t-1} + b_h)``, ``n = tanh(W_n x_t + b_in + r * (U_n h_{t-1}
    + b_hn))``, ``h_t = (1 - z) * n + z * h_{t-1}`` (Cho et al. 2014, PyTorch's convention).
    Recurrent-site regularizers: ``RecurrentDropout``, ``UpdateDropout`` (on ``n``) and
    ``Zoneout(hidden=...)``; ``CellDropout`` and zoneout of a cell raise ``ValueError`` at
    construction. Arguments as :class:`LSTM`, positionally in ``nn.GRU``'s order (no
    ``proj_size``).

    Example::

        rnn = lrr.GRU(300, 256, bidirectional=True, batch_first=True,
                      regularizers=[lrr.UpdateDropout(0.25)])
        out, h = rnn(torch.randn(8, 40, 300))
    """

    mode = "GRU"
    gates = 3
    _kernel = nn.GRU

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        regularizers: Iterable[Regularizer] = (),
        path: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self._setup(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                    bidirectional, 0, regularizers, path, device, dtype)

    def _initial_state(
        self, hx: object, batch: int, like: Tensor, unbatched: bool
    ) -> tuple[Tensor, Tensor | None]:
        if hx is None:
            return like.new_zeros(self._state_shape(batch, self.hidden_size)), None
        if not isinstance(hx, Tensor):
            raise ValueError("GRU: hx must be a Tensor h_0")
        return self._check_state("h_0", hx, batch, self.hidden_size, unbatched), None
