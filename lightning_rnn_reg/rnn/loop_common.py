"""What the hand-written LSTM and GRU loops share (:mod:`lightning_rnn_reg.rnn.loop`): mask
checks and per-step views, the autograd context's shape, the backward scaffolding (the
gradient reaching the last state, ``dW_hh`` as one product over all steps, per-gate masked
products) and the guards that keep the loop correct in company (autocast off, ``torch.func``
detection, double backward refused)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import NamedTuple, Protocol

import torch
from torch import Tensor

from lightning_rnn_reg.loop_masks import FIELDS, LoopMasks
from lightning_rnn_reg.rnn.packed_products import pack, packed_mm

#: Raised when a loop backward is asked to build a graph (``create_graph=True``).
DOUBLE_BACKWARD_ERROR = (
    "lightning_rnn_reg: the loop path (a recurrent-site regularizer, or path='loop') has a "
    "hand-written backward that cannot be differentiated again, so create_graph=True "
    "(gradient penalties, Hessian-vector products, MAML) is refused rather than answered "
    "wrongly. Use path='fused' with no recurrent-site regularizer, or compute the higher-order "
    "derivative with torch.func (grad / jacrev / hessian), under which the loop runs in plain, "
    "differentiable ops."
)

sigmoid_backward = torch.ops.aten.sigmoid_backward.grad_input
tanh_backward = torch.ops.aten.tanh_backward.grad_input

_Steps = Sequence[Tensor]
#: ``W_hh`` packed for the per-step product: one tensor (tied or no mask: one product for
#: all gates), one per gate (per-gate masks: one product per gate), or ``None`` (plain).
Packed = Tensor | list[Tensor] | None


class _Ctx(Protocol):
    """What the autograd ``ctx`` offers these functions. torch's stubs type it as
    ``FunctionCtx``, which lacks ``saved_tensors`` / ``needs_input_grad`` and does not admit
    ``None`` in ``save_for_backward`` (which torch accepts)."""

    saved_tensors: tuple[Tensor | None, ...]
    needs_input_grad: tuple[bool, ...]

    def save_for_backward(self, *tensors: Tensor | None) -> None: ...

    def set_materialize_grads(self, value: bool) -> None: ...


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------


def _mask(name: str, mask: Tensor | None, steps: int, batch: int, hidden: int,
          like: Tensor) -> Tensor | None:
    """Checked, detached mask in ``like``'s dtype and device (``None`` stays ``None``)."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor) or mask.dim() != 3:
        raise ValueError(f"{name} must be a 3-D tensor (T|1, B|1, H|1), got {type(mask)!r}")
    size = tuple(mask.shape)
    if size[0] not in (1, steps) or size[1] not in (1, batch) or size[2] not in (1, hidden):
        raise ValueError(
            f"{name} of shape {size} does not broadcast to (T, B, H) = {(steps, batch, hidden)}")
    return mask.detach().to(dtype=like.dtype, device=like.device)


def _per_step(mask: Tensor | None, steps: int) -> _Steps | None:
    """``mask[t]`` for every step: the step's slice if per-step, else the one slice."""
    if mask is None:
        return None
    if mask.shape[0] == steps and steps > 1:
        return mask.unbind(0)
    return [mask[0]] * steps


def _cycle(buffer: Tensor, steps: int) -> _Steps:
    """``steps`` views that cycle through ``buffer``'s first dimension (one per step when it
    has ``steps`` entries, else reused buffers for the forward-only path)."""
    views = buffer.unbind(0)
    if len(views) == steps:
        return views
    return [views[k % len(views)] for k in range(steps)]


def _check_common(xw: Tensor, w_hh: Tensor, h0: Tensor, gates: int, kind: str) -> int:
    if xw.dim() != 3 or xw.shape[0] == 0:
        raise ValueError(f"{kind}: xw must be (T, B, {gates}H) with T >= 1, got {tuple(xw.shape)}")
    hidden = w_hh.shape[-1]
    if w_hh.dim() != 2 or w_hh.shape[0] != gates * hidden or xw.shape[2] != gates * hidden:
        raise ValueError(f"{kind}: w_hh must be ({gates}H, H) and xw (T, B, {gates}H), got "
                         f"{tuple(w_hh.shape)} and {tuple(xw.shape)}")
    if tuple(h0.shape) != (xw.shape[1], hidden):
        raise ValueError(f"{kind}: h0 must be (B, H) = {(xw.shape[1], hidden)}, got "
                         f"{tuple(h0.shape)}")
    if w_hh.dtype != xw.dtype or h0.dtype != xw.dtype:
        raise ValueError(f"{kind}: xw, w_hh and h0 must share a dtype")
    return hidden


def _needs_graph(*tensors: Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _transforms_active() -> bool:
    """Whether a ``torch.func`` transform (grad, vjp, jacrev, vmap, ...) is running."""
    return bool(torch._C._are_functorch_transforms_active())


def _full_precision(like: Tensor) -> AbstractContextManager[None]:
    """Autocast off: the loop's products and gate math run in the dtype they are given."""
    return torch.autocast(device_type=like.device.type, enabled=False)


#: The mask fields each cell's loop implements.
_LSTM_FIELDS = ("h_mask", "gate_h_mask", "update_mask", "cell_mask", "zone_c", "zone_h")
_GRU_FIELDS = ("h_mask", "gate_h_mask", "update_mask", "zone_h")


def _gate_mask(mask: Tensor | None, steps: int, gates: int, batch: int, hidden: int,
               like: Tensor) -> Tensor | None:
    """A checked, detached per-gate mask ``(T|1, G, B|1, H|1)``."""
    if mask is None:
        return None
    size = tuple(mask.shape) if isinstance(mask, Tensor) else ()
    if len(size) != 4 or size[0] not in (1, steps) or size[1] != gates \
            or size[2] not in (1, batch) or size[3] not in (1, hidden):
        raise ValueError(f"gate_h_mask must be (T|1, G, B|1, H|1) = ({steps}|1, {gates}, "
                         f"{batch}|1, {hidden}|1), got {size}")
    return mask.detach().to(dtype=like.dtype, device=like.device)


def _checked_masks(masks: LoopMasks | None, given: dict[str, Tensor | None],
                   supported: Sequence[str], steps: int, batch: int, hidden: int,
                   like: Tensor, kind: str) -> LoopMasks:
    """``masks`` plus the keyword masks, each checked, detached, in ``like``'s dtype."""
    merged = (masks if masks is not None else LoopMasks()).merge(
        {name: value for name, value in given.items() if value is not None})
    unknown = [name for name in merged if name not in supported]
    if unknown:
        raise ValueError(f"{kind}: this cell has no {unknown} (it takes {list(supported)})")
    if "h_mask" in merged and "gate_h_mask" in merged:
        raise ValueError(f"{kind}: give h_mask (one mask for all gates) or gate_h_mask (one "
                         "per gate), not both")
    gates = like.shape[-1] // hidden
    return LoopMasks(**{name: _gate_mask(merged[name], steps, gates, batch, hidden, like)
                        if name == "gate_h_mask" else
                        _mask(name, merged[name], steps, batch, hidden, like)
                        for name in merged})


def _initial_grad(grad_out: Tensor | None, grad_last: Tensor | None, dh: Tensor) -> Tensor:
    """``dh`` set to the gradient reaching the last state: ``grad_out[T-1] + grad_h``."""
    if grad_out is not None:
        dh.copy_(grad_out[-1])
        if grad_last is not None:
            dh.add_(grad_last)
    elif grad_last is not None:
        dh.copy_(grad_last)
    else:
        dh.zero_()
    return dh


def _recurrent_weight_grad(dgates: Tensor, hin_buf: Tensor | None, h0: Tensor,
                           out: Tensor) -> Tensor:
    """``dW_hh = sum_t dgates_t^T hin_t`` as one product over all steps (``hin_t`` is
    ``hin_buf[t]``, or ``h_{t-1}``: ``h0`` then the outputs); with a per-gate ``hin_buf``
    ``(T, G, B, H)``, one product per gate: ``dW_k = sum_t dgates_{k,t}^T hin_{k,t}``."""
    steps, batch, gates = dgates.shape
    hidden = out.shape[-1]
    flat = dgates.view(steps * batch, gates)
    if hin_buf is not None and hin_buf.dim() == 4:
        count = gates // hidden
        per_gate = flat.view(steps * batch, count, hidden).permute(1, 2, 0)  # (G, H, T*B)
        hin = hin_buf.permute(1, 0, 2, 3).reshape(count, steps * batch, hidden)
        return torch.bmm(per_gate, hin).view(gates, hidden)
    if hin_buf is not None:
        return torch.mm(flat.t(), hin_buf.view(steps * batch, hidden))
    d_w = torch.mm(flat[:batch].t(), h0)
    if steps > 1:
        d_w.addmm_(flat[batch:].t(), out[: steps - 1].reshape(-1, hidden))
    return d_w


def _gate_masked_grad(dgates: Tensor, weight: BackwardWeight, mask: Tensor, buf: Tensor,
                      out: Tensor) -> Tensor:
    """``sum_k (dgates_k @ W_k) * m_k``: the gradient reaching ``h_{t-1}`` through per-gate
    masked inputs (``dgates`` ``(G, B, H)`` gate-major, ``W_k`` ``(H, H)``): one ``bmm`` over
    the gates, or one packed product per gate."""
    if isinstance(weight.packed_t, list):
        for k, packed in enumerate(weight.packed_t):
            torch.mul(packed_mm(dgates[k].contiguous(), packed), mask[k], out=buf[k])
    else:
        torch.bmm(dgates, weight.gates, out=buf).mul_(mask)
    return torch.sum(buf, 0, out=out)


def _refuse_double_backward() -> None:
    # Autograd runs a Function's backward with grad mode on exactly when create_graph=True.
    if torch.is_grad_enabled():
        raise RuntimeError(DOUBLE_BACKWARD_ERROR)


def _hin_views(new: Callable[..., Tensor], h0: Tensor, out: Tensor, masks: LoopMasks,
               gates: int, save_hin: bool) -> tuple[Tensor | None, _Steps | None, _Steps]:
    """``(hin_buf, hin_s, hinG_s)``: the recurrent input of every step, ``(G, B, H)`` per
    step for the batched gate-major product. Tied ``h_mask``: ``hin_s[t]`` is written by the
    loop and ``hinG_s[t]`` expands it; ``gate_h_mask``: the loop writes ``hinG_s[t]`` itself;
    no mask: ``h_{t-1}`` (``h0``, then the outputs) expanded, nothing extra kept."""
    steps, batch, hidden = out.shape
    kept = steps if save_hin else 1
    if masks.gate_h_mask is not None:  # one masked input per gate (Gal's untied variant)
        hin_buf = new(kept, gates, batch, hidden)
        return hin_buf, None, _cycle(hin_buf, steps)
    if masks.h_mask is not None:
        hin_buf = new(kept, batch, hidden)
        return hin_buf, _cycle(hin_buf, steps), _cycle(
            hin_buf.unsqueeze(1).expand(-1, gates, batch, hidden), steps)
    return None, None, [h0.expand(gates, batch, hidden), *out[: steps - 1].unsqueeze(1).expand(
        -1, gates, batch, hidden).unbind(0)]


class BackwardWeight(NamedTuple):
    """``W_hh`` as the backward's products take it: rows ``(G*H, H)``, per gate ``(G, H, H)``
    and, when packing is chosen (:mod:`~lightning_rnn_reg.rnn.packed_products`), packed once
    for the whole backward: ``W_hh^T`` whole, or each ``W_k^T`` for per-gate masks (whose
    gradient takes one product per gate: :func:`_gate_masked_grad`)."""

    rows: Tensor
    gates: Tensor
    packed_t: Packed

    @classmethod
    def of(cls, w_hh: Tensor, count: int, batch: int, per_gate: bool) -> BackwardWeight:
        hidden = w_hh.shape[-1]
        gates = w_hh.view(count, hidden, hidden)
        packed_t = (_pack_gates(gates.transpose(1, 2), batch) if per_gate
                    else pack(w_hh.t(), hidden, batch))
        return cls(w_hh, gates, packed_t)


def _pack_gates(weights: Tensor, batch: int) -> list[Tensor] | None:
    """Each gate's ``(H, H)`` block of ``weights`` ``(G, H, H)`` packed, or ``None`` where
    packing is not chosen (the same rule for every block)."""
    hidden = weights.shape[-1]
    packs = [pack(weight, hidden, batch) for weight in weights.unbind(0)]
    kept = [packed for packed in packs if packed is not None]
    return kept if kept and len(kept) == len(packs) else None


def forward_weight(w_hh: Tensor, count: int, batch: int, per_gate: bool
                   ) -> tuple[Tensor, Packed]:
    """``(W_k^T per gate (G, H, H), packed weight or None)`` for :func:`gate_product`:
    ``W_hh`` packed whole, or each ``W_k`` for per-gate inputs (Gal's untied masks), which
    take one product per gate."""
    hidden = w_hh.shape[-1]
    gates = w_hh.view(count, hidden, hidden)
    packed = _pack_gates(gates, batch) if per_gate else pack(w_hh, hidden, batch)
    return gates.transpose(1, 2), packed


def gate_product(add: Tensor, hin_gates: Tensor, w_t: Tensor, hin: Tensor,
                 packed: Packed, out: Tensor) -> Tensor:
    """``out`` ``(G, B, H)`` = ``add + hin_k @ W_k^T`` for every gate ``k``, gate-major: one
    ``baddbmm`` over the gates, or one product with the packed weight and one add (per gate
    for per-gate inputs)."""
    if packed is None:
        return torch.baddbmm(add, hin_gates, w_t, out=out)
    if isinstance(packed, list):
        for k, weight in enumerate(packed):
            torch.add(add[k], packed_mm(hin_gates[k].contiguous(), weight), out=out[k])
        return out
    count, batch, hidden = out.shape
    product = packed_mm(hin, packed).view(batch, count, hidden).transpose(0, 1)
    return torch.add(add, product, out=out)


def _grad_into_previous_state(dg_rows: Tensor, dg_gates: Tensor, weight: BackwardWeight,
                              base: Tensor | None, hmask: Tensor | None,
                              gmask: Tensor | None, gate_buf: Tensor, tmp: Tensor,
                              out: Tensor) -> Tensor:
    """``out = base + (dgates @ W_hh) * m^h`` (``m^h`` absent: no product; per-gate masks:
    ``sum_k (dgates_k @ W_k) * m_k``); ``base`` ``None`` adds nothing."""
    if gmask is not None:
        dhin = _gate_masked_grad(dg_gates, weight, gmask, gate_buf, tmp)
    elif isinstance(weight.packed_t, Tensor):
        dhin = packed_mm(dg_rows, weight.packed_t)
    elif hmask is None:
        if base is None:
            return torch.mm(dg_rows, weight.rows, out=out)
        return torch.addmm(base, dg_rows, weight.rows, out=out)
    else:
        dhin = torch.mm(dg_rows, weight.rows, out=tmp)
    if hmask is not None and gmask is None:
        if base is None:
            return torch.mul(dhin, hmask, out=out)
        return torch.addcmul(base, dhin, hmask, out=out)
    return out.copy_(dhin) if base is None else torch.add(base, dhin, out=out)


def _save(ctx: _Ctx, saved: Sequence[Tensor | None], masks: LoopMasks) -> None:
    """Save the loop's buffers and its masks for backward, all through autograd (so saved-
    tensor hooks, e.g. offloading or memory accounting, see the masks too)."""
    ctx.save_for_backward(*saved, *(getattr(masks, name) for name in FIELDS))


def _saved(ctx: _Ctx, count: int) -> tuple[tuple[Tensor | None, ...], LoopMasks]:
    """What :func:`_save` kept: the first ``count`` buffers and the masks."""
    tensors = ctx.saved_tensors
    return tensors[:count], LoopMasks(*tensors[count:])
