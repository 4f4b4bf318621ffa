"""The fused runner: ``nn.LSTM`` / ``nn.GRU``'s kernel (oneDNN on CPU, cuDNN on GPU) with
the layer's own tensors swapped in per call (``torch.func.functional_call``), so weights
changed by a weights-site regularizer (WeightDrop's ``U * M / (1 - p)``) reach the kernel and
gradients reach the raw parameters. Padded batches go through ``pack_padded_sequence``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

#: ``(output, h_n, c_n)``; ``c_n`` is ``None`` for a GRU.
Result = tuple[Tensor, Tensor, Tensor | None]


class FusedKernels:
    """Parameter-free ``nn.LSTM`` / ``nn.GRU`` modules on the meta device, the entry points
    to the fused kernel: the whole stack, a first layer and a later layer. They hold no state
    (nothing in ``state_dict``) and are rebuilt on unpickling (older torch cannot share meta
    storages with a spawned process, as ``ddp_spawn`` needs)."""

    def __init__(self, kernel: type[nn.LSTM] | type[nn.GRU], input_size: int,
                 hidden_size: int, num_layers: int, bias: bool, bidirectional: bool,
                 proj_size: int) -> None:
        self._config = (kernel, input_size, hidden_size, num_layers, bias, bidirectional,
                        proj_size)
        self._build()

    def _build(self) -> None:
        kernel, input_size, hidden_size, num_layers, bias, bidirectional, proj = self._config
        options: dict[str, Any] = {"bias": bias, "bidirectional": bidirectional,
                                   "device": "meta"}
        if proj:
            options["proj_size"] = proj
        later_input = (proj or hidden_size) * (2 if bidirectional else 1)
        self.stack = kernel(input_size, hidden_size, num_layers, **options)
        self.first = kernel(input_size, hidden_size, 1, **options)
        self.later = kernel(later_input, hidden_size, 1, **options)

    def __getstate__(self) -> dict[str, Any]:
        return {"_config": self._config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._config = state["_config"]
        self._build()

    def run_stack(self, weights: dict[str, Tensor], x: Tensor, h0: Tensor, c0: Tensor | None,
                  lengths: Tensor | None) -> Result:
        """Every layer in one kernel call (no between-layer regularizer)."""
        return run_kernel(self.stack, weights, x, h0, c0, lengths)

    def run_layer(self, layer: int, directions: list[dict[str, Tensor]], x: Tensor,
                  h0: Tensor, c0: Tensor | None, lengths: Tensor | None) -> Result:
        """Layer ``layer`` alone; ``directions`` hold ``{kind: tensor}`` per direction."""
        weights = {f"{kind}_l0" + ("_reverse" if d else ""): tensor
                   for d, tensors in enumerate(directions) for kind, tensor in tensors.items()}
        return run_kernel(self.first if layer == 0 else self.later, weights, x, h0, c0, lengths)


def run_kernel(shell: nn.Module, weights: dict[str, Tensor], x: Tensor, h0: Tensor,
               c0: Tensor | None, lengths: Tensor | None) -> Result:
    """One call of ``shell`` with ``weights``; padded steps are packed away."""
    steps = x.shape[0]
    x, h0, c0 = _autocast_lstm_inputs(shell, x, h0, c0, lengths)
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


def _autocast_lstm_inputs(shell: nn.Module, x: Tensor, h0: Tensor, c0: Tensor | None,
                          lengths: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
    """Under CPU autocast, hand an unprojected LSTM that torch sends to oneDNN its input and
    state already in the autocast dtype.

    With float32 input, ``nn.LSTM`` under CPU autocast runs oneDNN's RNN primitive on
    operands that autocast casts to bfloat16 / float16; on CPUs without AVX-512 BF16 torch
    cannot build that primitive and raises ("could not create a primitive descriptor").
    Casting ``x``, ``h_0`` and ``c_0`` first is what autocast does to them anyway: where the
    primitive exists torch then runs the same oneDNN kernel on the same operands; where it
    does not, torch's native LSTM runs with autocast's lower-precision products. Either way
    the outputs come back in the autocast dtype, as nn.LSTM's do where it runs. torch sends
    a packed batch to oneDNN only when every sequence has the same length (a packed batch
    of unequal lengths runs torch's native LSTM and stays float32, as here).
    """
    if (c0 is None or x.device.type != "cpu" or x.dtype != torch.float32
            or not torch.is_autocast_enabled("cpu")
            or not isinstance(shell, nn.LSTM) or shell.proj_size > 0):
        return x, h0, c0
    low = torch.get_autocast_dtype("cpu")
    if low not in (torch.bfloat16, torch.float16):
        return x, h0, c0
    if lengths is not None and bool(lengths.min() != lengths.max()):
        return x, h0, c0
    return x.to(low), h0.to(low), c0.to(low)
