"""The hidden state a language model carries across truncated-BPTT windows: detached between
windows, flattened to named tensors for checkpoints (one entry per rank)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

__all__ = ["State", "batch_size_of", "detach_state", "flatten_state", "unflatten_state"]

State = Any  # per layer: (h, c) for LSTM, h for GRU


def detach_state(state: State) -> State:
    """Detach a (nested) hidden state from the graph (truncated BPTT)."""
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, (list, tuple)):
        return type(state)(detach_state(s) for s in state)
    return state


def flatten_state(state: State) -> dict[str, Tensor]:
    """A per-layer state ``[h_0 or (h_0, c_0), ...]`` as ``{"<layer>.<part>": tensor}``."""
    return {f"{layer}.{part}": tensor for layer, layer_state in enumerate(state)
            for part, tensor in enumerate(layer_state if isinstance(layer_state, (tuple, list))
                                          else (layer_state,))}


def unflatten_state(flat: dict[str, Tensor]) -> list[Any]:
    """The inverse of :func:`flatten_state` (two parts per layer: an ``(h, c)`` tuple)."""
    layers: dict[int, dict[int, Tensor]] = {}
    for key, tensor in flat.items():
        layer, part = (int(x) for x in key.split("."))
        layers.setdefault(layer, {})[part] = tensor
    parts = [[layers[layer][p] for p in sorted(layers[layer])] for layer in sorted(layers)]
    return [tuple(p) if len(p) > 1 else p[0] for p in parts]


def batch_size_of(state: State) -> int:
    """The batch size ``B`` of a carried state (tensors ``(..., B, H)``)."""
    while not isinstance(state, Tensor):
        state = state[0]
    return state.shape[-2]
