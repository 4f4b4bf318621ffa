"""What a recurrent layer checks, as a mixin of :class:`~lightning_rnn_reg.rnn.layers.LSTM`
/ :class:`~lightning_rnn_reg.rnn.layers.GRU`: its regularizers (from their declared contract:
site, cells, loop-mask fields, weights; two regularizers may not fill one thing) and its
inputs (shape, dtype, lengths, initial states), each with an error that names the layer."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor

from lightning_rnn_reg.regularizers.base import (
    ActivationDropoutBase,
    RecurrentSiteRegularizer,
    Regularizer,
    WeightsSiteRegularizer,
)

#: The weight kinds a weights-site regularizer may declare.
WEIGHT_KINDS = ("weight_ih", "weight_hh")


class LayerChecks:
    """Validation shared by the layers (``mode``, sizes and options come from the layer)."""

    mode: ClassVar[str]
    input_size: int
    hidden_size: int
    num_layers: int
    num_directions: int
    proj_size: int
    batch_first: bool
    weight_ih_l0: Tensor

    def _check_regularizers(self, regs: list[Regularizer], path: str) -> list[Regularizer]:
        """Validate ``regs`` from their declarations: site, cells, mask fields, weights."""
        if self.proj_size and path == "loop":
            raise ValueError(
                f"{self.mode}: proj_size > 0 runs on the fused path only (nn.LSTM's kernel); "
                "path='loop' does not implement projections")
        claimed: dict[str, str] = {}
        for reg in regs:
            if not isinstance(reg, Regularizer):
                raise TypeError(
                    f"{self.mode}: regularizers must be lightning_rnn_reg Regularizer objects, "
                    f"got {type(reg).__name__}"
                )
            self._check_site(reg)
            for claim in self._claims(reg, path):
                if claim in claimed:
                    raise ValueError(f"{self.mode}: {type(reg).__name__} and {claimed[claim]} "
                                     f"both set the {claim}; give one")
                claimed[claim] = type(reg).__name__
        return regs

    def _claims(self, reg: Regularizer, path: str) -> list[str]:
        """What ``reg`` fills in this layer (two regularizers may not fill one thing)."""
        if isinstance(reg, RecurrentSiteRegularizer):
            self._check_recurrent(reg, path)
            return [f"loop mask {field!r}" for field in reg.mask_fields]
        if isinstance(reg, WeightsSiteRegularizer):
            unknown = [kind for kind in reg.weights if kind not in WEIGHT_KINDS]
            if unknown:
                raise ValueError(f"{self.mode}: {type(reg).__name__} acts on {unknown}; a "
                                 f"layer has {list(WEIGHT_KINDS)}")
            return [f"weight {kind!r}" for kind in reg.weights]
        return []

    def _check_site(self, reg: Regularizer) -> None:
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
        contract = {"recurrent": RecurrentSiteRegularizer, "weights": WeightsSiteRegularizer,
                    "input": ActivationDropoutBase, "between": ActivationDropoutBase,
                    "output": ActivationDropoutBase}.get(reg.site)
        if contract is None or not isinstance(reg, contract):
            expected = contract.__name__ if contract is not None else "a known site"
            raise ValueError(f"{self.mode}: {name} at site {reg.site!r} does not follow the "
                             f"contract of that site ({expected})")

    def _check_recurrent(self, reg: RecurrentSiteRegularizer, path: str) -> None:
        name = type(reg).__name__
        reg.check_cell(self.mode)
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
