"""The parameter registry of a recurrent stack, and what code written for ``nn.RNNBase``
reads of it.

Names, shapes and registration order are ``nn.LSTM``'s / ``nn.GRU``'s (``weight_ih_l0``,
``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``, ``weight_hr_l0`` with ``proj_size``, then
``..._reverse``), so a seed gives the same initial weights and ``state_dict`` keys are equal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

#: The kinds of weight a direction has (``weight_hr`` only with ``proj_size``).
KINDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")


@dataclass(frozen=True)
class Direction:
    """One direction of one layer: its parameters' names by kind (``None``: absent)."""

    suffix: str
    names: dict[str, str]

    def tensors(self, module: nn.Module) -> dict[str, Tensor]:
        """``{kind: parameter}`` of this direction."""
        return {kind: getattr(module, name) for kind, name in self.names.items()}


def register_weights(module: nn.Module, gates: int, input_size: int, hidden_size: int,
                     num_layers: int, directions: int, bias: bool, proj_size: int,
                     device: torch.device | str | None, dtype: torch.dtype | None,
                     ) -> list[Direction]:
    """Register the parameters on ``module`` in ``nn.LSTM``'s order; returns the directions
    (layer-major)."""
    rows, out_size = gates * hidden_size, proj_size or hidden_size
    found = []
    for layer in range(num_layers):
        layer_input = input_size if layer == 0 else out_size * directions
        for direction in range(directions):
            suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
            shapes: dict[str, tuple[int, ...]] = {"weight_ih": (rows, layer_input),
                                                  "weight_hh": (rows, out_size)}
            if bias:
                shapes.update(bias_ih=(rows,), bias_hh=(rows,))
            if proj_size:
                shapes["weight_hr"] = (proj_size, hidden_size)
            for kind, shape in shapes.items():
                module.register_parameter(
                    kind + suffix, nn.Parameter(torch.empty(shape, device=device, dtype=dtype)))
            found.append(Direction(suffix, {kind: kind + suffix for kind in shapes}))
    return found


def reset_uniform(module: nn.Module, hidden_size: int) -> None:
    """``U(-1/sqrt(H), 1/sqrt(H))`` for every parameter, in registration order (as
    ``nn.LSTM.reset_parameters``)."""
    bound = 1.0 / math.sqrt(hidden_size)
    for weight in module.parameters(recurse=False):
        nn.init.uniform_(weight, -bound, bound)


class RNNBaseCompat:
    """What code written for ``nn.LSTM`` reads of a layer: ``flatten_parameters()`` (a no-op:
    the fused path hands the kernel its weights per call), ``all_weights``,
    ``_all_weights`` and ``_flat_weights_names``."""

    _directions: list[Direction]

    def flatten_parameters(self) -> None:
        """A no-op, for code written for ``nn.LSTM``: there is no flat buffer to compact."""

    @property
    def _all_weights(self) -> list[list[str]]:
        """Parameter names per layer and direction, as ``nn.RNNBase._all_weights``."""
        return [[d.names[k] for k in KINDS if k in d.names] for d in self._directions]

    @property
    def _flat_weights_names(self) -> list[str]:
        """Every parameter name in the kernel's order, as ``nn.RNNBase._flat_weights_names``."""
        return [name for names in self._all_weights for name in names]

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """The parameters per layer and direction, as ``nn.RNNBase.all_weights``."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]
