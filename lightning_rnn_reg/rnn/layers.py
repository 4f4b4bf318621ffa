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

import math
import warnings
from collections.abc import Iterable
from typing import Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from lightning_rnn_reg.regularizers.base import ActivationDropoutBase, Regularizer
from lightning_rnn_reg.regularizers.dropout import Dropout
from lightning_rnn_reg.regularizers.recurrent import CellDropout, RecurrentRegularizer
from lightning_rnn_reg.regularizers.weight_drop import WeightDrop
from lightning_rnn_reg.regularizers.zoneout import Zoneout

PATHS = ("auto", "fused", "loop")

#: One direction of one layer: ``(weight_ih, weight_hh, bias_ih, bias_hh)`` (biases ``None``
#: without ``bias``).
_Weights = tuple[Tensor, Tensor, Tensor | None, Tensor | None]
#: What acts at the ``recurrent`` site: both kinds have ``is_identity`` and ``loop_masks``.
_RecurrentReg = RecurrentRegularizer | Zoneout


class _RecurrentLayer(nn.Module):
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
        self._register_weights(device, dtype)
        self.reset_parameters()
        regs = list(regularizers)
        if self.dropout > 0.0 and num_layers > 1:
            regs.insert(0, Dropout(self.dropout, at="between"))
        self.regularizers = nn.ModuleList(self._check_regularizers(regs, path))
        self.path = "loop" if path == "loop" or self._recurrent_regs() else "fused"
        self._forced_loop = path == "loop"
        self._shells = self._make_shells()

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

    def _register_weights(
        self, device: torch.device | str | None, dtype: torch.dtype | None
    ) -> None:
        """Parameters with ``nn.LSTM``'s names, shapes and order (``weight_ih_l0``, ...)."""
        self._weight_names: list[tuple[str, str, str | None, str | None, str | None]] = []
        rows = self.gates * self.hidden_size
        out_size = self.proj_size or self.hidden_size
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else out_size * self.num_directions
            for direction in range(self.num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes: dict[str, tuple[int, ...]] = {
                    f"weight_ih{suffix}": (rows, layer_input),
                    f"weight_hh{suffix}": (rows, out_size),
                }
                if self.bias:
                    shapes[f"bias_ih{suffix}"] = (rows,)
                    shapes[f"bias_hh{suffix}"] = (rows,)
                if self.proj_size:
                    shapes[f"weight_hr{suffix}"] = (self.proj_size, self.hidden_size)
                for name, shape in shapes.items():
                    self.register_parameter(
                        name, nn.Parameter(torch.empty(shape, device=device, dtype=dtype)))
                self._weight_names.append((
                    f"weight_ih{suffix}", f"weight_hh{suffix}",
                    f"bias_ih{suffix}" if self.bias else None,
                    f"bias_hh{suffix}" if self.bias else None,
                    f"weight_hr{suffix}" if self.proj_size else None,
                ))

    # ----------------------------------------------------------------------------- set-up
    def reset_parameters(self) -> None:
        """``U(-1/sqrt(H), 1/sqrt(H))`` for every parameter, in ``nn.LSTM``'s order (so a seed
        gives the same weights as ``nn.LSTM`` / ``nn.GRU``)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    # ------------------------------------------------------- nn.RNNBase compatibility
    def flatten_parameters(self) -> None:
        """A no-op, for code written for ``nn.LSTM``: the fused path hands the kernel its
        weights per call, so there is no flat buffer to compact."""

    @property
    def _all_weights(self) -> list[list[str]]:
        """Parameter names per layer and direction, as ``nn.RNNBase._all_weights``."""
        return [[name for name in names if name is not None] for names in self._weight_names]

    @property
    def _flat_weights_names(self) -> list[str]:
        """Every parameter name in the kernel's order, as ``nn.RNNBase._flat_weights_names``."""
        return [name for names in self._all_weights for name in names]

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """The parameters per layer and direction, as ``nn.RNNBase.all_weights``."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def _check_regularizers(self, regs: list[Regularizer], path: str) -> list[Regularizer]:
        keys: dict[str, str] = {}
        if self.proj_size and path == "loop":
            raise ValueError(
                f"{self.mode}: proj_size > 0 runs on the fused path only (nn.LSTM's kernel); "
                "path='loop' does not implement projections")
        for reg in regs:
            if not isinstance(reg, Regularizer):
                raise TypeError(
                    f"{self.mode}: regularizers must be lightning_rnn_reg Regularizer objects, "
                    f"got {type(reg).__name__}"
                )
            name = type(reg).__name__
            if reg.site in ("embedding", "loss"):
                raise ValueError(
                    f"{self.mode}: {name} acts at site {reg.site!r}, which a recurrent layer "
                    "cannot serve; pass it to a task module (e.g. LanguageModel) or call it "
                    "yourself"
                )
            if reg.site == "between" and self.num_layers < 2:
                raise ValueError(
                    f"{self.mode}: {name}(at='between') needs num_layers >= 2, "
                    f"got num_layers={self.num_layers}"
                )
            if reg.site == "recurrent":
                if self.mode == "GRU" and isinstance(reg, CellDropout):
                    raise ValueError("GRU: CellDropout acts on an LSTM cell state; GRU has none")
                if self.mode == "GRU" and isinstance(reg, Zoneout) and reg.cell > 0.0:
                    raise ValueError(
                        "GRU: Zoneout(cell=...) zones out an LSTM cell state; GRU has none "
                        "(use Zoneout(hidden=...))")
                if self.proj_size:
                    raise ValueError(
                        f"{self.mode}: proj_size > 0 runs on the fused path only (nn.LSTM's "
                        f"kernel); {name} acts inside the recurrence, which needs the loop "
                        "path, and the loop does not implement projections")
                if path == "fused":
                    raise ValueError(
                        f"{self.mode}: path='fused' cannot run {name}, which acts inside the "
                        "recurrence; use path='auto' or 'loop'"
                    )
                for key in _loop_keys(reg):
                    if key in keys:
                        raise ValueError(
                            f"{self.mode}: {name} and {keys[key]} both set {key!r}; give one"
                        )
                    keys[key] = name
            if isinstance(reg, WeightDrop):
                if "weights" in keys:
                    raise ValueError(f"{self.mode}: give at most one WeightDrop")
                keys["weights"] = name
        return regs

    def _make_shells(self) -> tuple[nn.RNNBase, ...]:
        """Parameter-free ``nn.LSTM`` / ``nn.GRU`` on the meta device: the entry point to the
        fused kernel. Real tensors are swapped in per call with ``functional_call``. Kept in
        a tuple so they are not submodules (no state, nothing in ``state_dict``)."""
        options: dict[str, Any] = {"bias": self.bias, "bidirectional": self.bidirectional,
                                   "device": "meta"}
        if self.proj_size:
            options["proj_size"] = self.proj_size
        out_size = (self.proj_size or self.hidden_size) * self.num_directions
        stack = self._kernel(self.input_size, self.hidden_size, self.num_layers, **options)
        first = self._kernel(self.input_size, self.hidden_size, 1, **options)
        rest = self._kernel(out_size, self.hidden_size, 1, **options)
        return (stack, first, rest)

    def __getstate__(self) -> dict[str, Any]:
        # The meta-device shells hold no state and are rebuilt on unpickling: older torch
        # (2.4) cannot share meta storages with a spawned process (ddp_spawn pickles the
        # model), and a shell is cheaper to rebuild than to carry.
        return {key: value for key, value in self.__dict__.items() if key != "_shells"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._shells = self._make_shells()

    def _regs(self) -> Iterable[Regularizer]:
        # nn.ModuleList iterates as Module; it holds only what _check_regularizers accepted.
        return cast("Iterable[Regularizer]", self.regularizers)

    def _recurrent_regs(self) -> list[_RecurrentReg]:
        # A recurrent-site regularizer is a RecurrentRegularizer or a Zoneout.
        return [cast(_RecurrentReg, reg) for reg in self._regs() if reg.site == "recurrent"]

    def _site_regs(self, site: str) -> list[ActivationDropoutBase]:
        # Only activation dropouts act at 'input' / 'between' / 'output'.
        return [cast(ActivationDropoutBase, reg) for reg in self._regs() if reg.site == site]

    def _weight_drop(self) -> WeightDrop | None:
        for reg in self._regs():
            if isinstance(reg, WeightDrop):
                return reg
        return None

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

    def _check_input(self, input: Tensor) -> tuple[Tensor, bool]:
        if not isinstance(input, Tensor):
            raise TypeError(f"{self.mode}: input must be a Tensor or PackedSequence")
        if input.dim() not in (2, 3):
            raise ValueError(
                f"{self.mode}: expected input of rank 3 ((T, B, F), or (B, T, F) with "
                f"batch_first) or rank 2 (unbatched (T, F)), got shape {tuple(input.shape)}"
            )
        if input.shape[-1] != self.input_size:
            raise ValueError(
                f"{self.mode}: input.size(-1) must equal input_size={self.input_size}, "
                f"got {input.shape[-1]}"
            )
        weight = self.weight_ih_l0
        # as nn.LSTM: under autocast the kernel takes the autocast dtype (layer 2 gets bf16)
        if input.dtype != weight.dtype and not torch.is_autocast_enabled(input.device.type):
            raise ValueError(
                f"{self.mode}: input dtype {input.dtype} differs from the parameters' "
                f"{weight.dtype}"
            )
        unbatched = input.dim() == 2
        if unbatched:
            return input.unsqueeze(1), True
        if input.shape[0] == 0 or input.shape[1] == 0:
            raise ValueError(f"{self.mode}: empty input of shape {tuple(input.shape)}")
        return (input.transpose(0, 1) if self.batch_first else input), False

    def _check_lengths(self, lengths: Tensor, steps: int, batch: int) -> Tensor:
        if not isinstance(lengths, Tensor):
            lengths = torch.as_tensor(lengths)
        if lengths.dim() != 1 or lengths.numel() != batch:
            raise ValueError(
                f"{self.mode}: lengths must have shape ({batch},), got {tuple(lengths.shape)}"
            )
        if lengths.is_floating_point() or lengths.dtype == torch.bool:
            raise ValueError(f"{self.mode}: lengths must be integers, got {lengths.dtype}")
        low, high = int(lengths.min()), int(lengths.max())
        if low < 1 or high > steps:
            raise ValueError(
                f"{self.mode}: lengths must lie in [1, {steps}] (the sequence length), "
                f"got min {low}, max {high}"
            )
        return lengths.to(torch.int64)

    def _state_shape(self, batch: int, size: int) -> tuple[int, int, int]:
        return (self.num_layers * self.num_directions, batch, size)

    def _check_state(
        self, name: str, state: Tensor, batch: int, size: int, unbatched: bool
    ) -> Tensor:
        if not isinstance(state, Tensor):
            raise TypeError(f"{self.mode}: {name} must be a Tensor, got {type(state).__name__}")
        if unbatched:
            if state.dim() != 2:
                raise ValueError(f"{self.mode}: for unbatched input {name} must be 2-D")
            state = state.unsqueeze(1)
        expected = self._state_shape(batch, size)
        if tuple(state.shape) != expected:
            raise ValueError(
                f"{self.mode}: expected {name} of shape {expected}, got {tuple(state.shape)}"
            )
        return state

    def _initial_state(
        self, hx: object, batch: int, like: Tensor, unbatched: bool
    ) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError

    # ------------------------------------------------------------------------ the stack
    def _layer_weights(self, layer: int, direction: int) -> _Weights:
        w_ih, w_hh, b_ih, b_hh, _ = self._weight_names[layer * self.num_directions + direction]
        return (
            getattr(self, w_ih),
            getattr(self, w_hh),
            getattr(self, b_ih) if b_ih is not None else None,
            getattr(self, b_hh) if b_hh is not None else None,
        )

    def _run(
        self, x: Tensor, h0: Tensor, c0: Tensor | None, lengths: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        for reg in self._site_regs("input"):
            x = reg.drop(x, False)
        use_loop = self._uses_loop_now()
        weight_drop = self._weight_drop()
        between = self._site_regs("between")
        if not use_loop and not between:
            weights = self._stack_weights(weight_drop)
            out, h_n, c_n = self._fused(self._shells[0], weights, x, h0, c0, lengths)
        else:
            out, h_n, c_n = self._run_layers(x, h0, c0, lengths, use_loop, weight_drop, between)
        for reg in self._site_regs("output"):
            out = reg.drop(out, False)
        return out, h_n, c_n

    def _stack_weights(self, weight_drop: WeightDrop | None) -> dict[str, Tensor]:
        weights: dict[str, Tensor] = dict(self.named_parameters(recurse=False))
        if weight_drop is not None and not weight_drop.is_identity():
            for names in self._weight_names:
                weights[names[1]] = weight_drop(weights[names[1]])
        return weights

    def _run_layers(
        self,
        x: Tensor,
        h0: Tensor,
        c0: Tensor | None,
        lengths: Tensor | None,
        use_loop: bool,
        weight_drop: WeightDrop | None,
        between: list[ActivationDropoutBase],
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        drop = weight_drop if weight_drop is not None and not weight_drop.is_identity() else None
        valid = None
        if use_loop and lengths is not None:
            steps = torch.arange(x.shape[0], device=x.device).unsqueeze(1)
            valid = (steps < lengths.to(x.device).unsqueeze(0)).unsqueeze(-1)
        h_list, c_list = [], []
        for layer in range(self.num_layers):
            if layer > 0:
                for reg in between:
                    x = reg.drop(x, False)
            first = layer * self.num_directions
            state = slice(first, first + self.num_directions)
            per_direction: list[_Weights] = []
            for direction in range(self.num_directions):
                w_ih, w_hh, b_ih, b_hh = self._layer_weights(layer, direction)
                if drop is not None:
                    w_hh = drop(w_hh)
                per_direction.append((w_ih, w_hh, b_ih, b_hh))
            if use_loop:
                x, h, c = self._loop_layer(x, per_direction, h0[state],
                                           c0[state] if c0 is not None else None, lengths, valid)
            else:
                shell = self._shells[1 if layer == 0 else 2]
                weights = _shell_weights(per_direction)
                for direction in range(self.num_directions):
                    w_hr = self._weight_names[first + direction][4]
                    if w_hr is not None:
                        weights["weight_hr_l0" + ("_reverse" if direction else "")] = \
                            getattr(self, w_hr)
                x, h, c = self._fused(shell, weights, x, h0[state],
                                      c0[state] if c0 is not None else None, lengths)
            h_list.append(h)
            if c is not None:
                c_list.append(c)
        return x, torch.cat(h_list), torch.cat(c_list) if c_list else None

    def _fused(
        self,
        shell: nn.RNNBase,
        weights: dict[str, Tensor],
        x: Tensor,
        h0: Tensor,
        c0: Tensor | None,
        lengths: Tensor | None,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        steps = x.shape[0]
        inp: Tensor | PackedSequence = x
        if lengths is not None:
            inp = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
        state = (h0, c0) if c0 is not None else h0
        out, new_state = functional_call(shell, weights, (inp, state))
        if lengths is not None:
            out, _ = pad_packed_sequence(out, total_length=steps)
        if isinstance(new_state, tuple):
            return out, new_state[0], new_state[1]
        return out, new_state, None

    def _loop_layer(
        self,
        x: Tensor,
        per_direction: list[_Weights],
        h0: Tensor,
        c0: Tensor | None,
        lengths: Tensor | None,
        valid: Tensor | None,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        steps, batch = x.shape[0], x.shape[1]
        if valid is not None:
            # padding never reaches a state or a gradient, even a nan or inf there: the padded
            # inputs become zeros (gradient 0) and the padded steps keep the state exactly
            x = torch.where(valid, x, x.new_zeros(()))
        outs, hs, cs = [], [], []
        for direction, weights in enumerate(per_direction):
            inp = x
            reverse_index = None
            if direction == 1:
                reverse_index = _reverse_index(steps, batch, lengths, x.device)
                inp = _gather_time(x, reverse_index)
            masks: dict[str, Tensor] = {}
            for reg in self._recurrent_regs():
                masks.update(reg.loop_masks(steps, batch, self.hidden_size, x))
            if valid is not None:
                masks = _freeze_padding(masks, valid.to(x.dtype), self.mode == "LSTM")
            c0_d = c0[direction] if c0 is not None else None
            out, h, c = self._recurrence(inp, weights, h0[direction], c0_d, masks)
            if reverse_index is not None:
                out = _gather_time(out, reverse_index)
            if valid is not None:
                out = torch.where(valid, out, out.new_zeros(()))
            outs.append(out)
            hs.append(h)
            if c is not None:
                cs.append(c)
        output = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)
        return output, torch.stack(hs), torch.stack(cs) if cs else None

    def _recurrence(
        self,
        x: Tensor,
        weights: _Weights,
        h0: Tensor,
        c0: Tensor | None,
        masks: dict[str, Tensor],
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        raise NotImplementedError


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

    def _recurrence(
        self,
        x: Tensor,
        weights: _Weights,
        h0: Tensor,
        c0: Tensor | None,
        masks: dict[str, Tensor],
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        from lightning_rnn_reg.rnn.loop import lstm_recurrence  # imported on first use

        assert c0 is not None  # LSTM._initial_state always gives c_0
        w_ih, w_hh, b_ih, b_hh = weights
        bias = b_ih + b_hh if b_ih is not None and b_hh is not None else None
        # under autocast the projection comes out in the low dtype; the recurrence runs in the
        # parameters' dtype (see docs: as accurate as nn.LSTM's AMP kernel, or better)
        xw = F.linear(x, w_ih, bias).to(w_hh.dtype)
        return lstm_recurrence(xw, w_hh, h0.to(w_hh.dtype), c0.to(w_hh.dtype), **masks)


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

    def _recurrence(
        self,
        x: Tensor,
        weights: _Weights,
        h0: Tensor,
        c0: Tensor | None,
        masks: dict[str, Tensor],
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        from lightning_rnn_reg.rnn.loop import gru_recurrence  # imported on first use

        w_ih, w_hh, b_ih, b_hh = weights
        xw = F.linear(x, w_ih, b_ih).to(w_hh.dtype)  # autocast: recurrence in w_hh's dtype
        if b_hh is None:
            b_hh = w_hh.new_zeros(w_hh.shape[0])
        out, h = gru_recurrence(xw, w_hh, b_hh, h0.to(w_hh.dtype), **masks)
        return out, h, None


def _loop_keys(reg: Regularizer) -> tuple[str, ...]:
    if isinstance(reg, Zoneout):
        return ("zone_c", "zone_h")
    # Any other recurrent-site regularizer is a RecurrentRegularizer.
    return (cast(RecurrentRegularizer, reg).mask_key,)


def _shell_weights(per_direction: list[_Weights]) -> dict[str, Tensor]:
    weights: dict[str, Tensor] = {}
    for direction, tensors in enumerate(per_direction):
        suffix = "_l0" + ("_reverse" if direction == 1 else "")
        kinds = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        for kind, tensor in zip(kinds, tensors, strict=True):
            if tensor is not None:
                weights[kind + suffix] = tensor
    return weights


def _reverse_index(steps: int, batch: int, lengths: Tensor | None, device: torch.device) -> Tensor:
    """``(T, B)`` time index that reverses each sequence within its length (an involution)."""
    t = torch.arange(steps, device=device).unsqueeze(1).expand(steps, batch)
    if lengths is None:
        return steps - 1 - t
    length = lengths.to(device).unsqueeze(0)
    return torch.where(t < length, length - 1 - t, t)


def _gather_time(x: Tensor, index: Tensor) -> Tensor:
    return x.gather(0, index.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def _freeze_padding(masks: dict[str, Tensor], valid: Tensor, has_cell: bool) -> dict[str, Tensor]:
    """Fold padding into the zoneout weights: at a padded step ``d = 1`` keeps the state
    (``lerp`` with weight 1 returns the previous state exactly)."""
    frozen = dict(masks)
    keys = ("zone_c", "zone_h") if has_cell else ("zone_h",)
    for key in keys:
        if key in frozen:
            frozen[key] = 1.0 - (1.0 - frozen[key]) * valid
        else:
            frozen[key] = 1.0 - valid
    return frozen
