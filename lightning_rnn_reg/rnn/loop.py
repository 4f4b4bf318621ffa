r"""Hand-written LSTM / GRU recurrences for regularizers that act inside the recurrence.

The caller computes the input projection of all steps in one product (``xw``); these functions
run only the hidden-to-hidden product and the gate math per step, cuDNN style. Each is a
:class:`torch.autograd.Function` whose forward runs under no-grad and keeps the gate
activations, and whose backward runs the recurrence backwards with one matrix product per step
(``dgates_t @ W_hh``), stores ``dgates`` of every step in one ``(T, B, G)`` buffer and forms
``dW_hh`` as a single product over all steps after the loop. Called under ``torch.no_grad()``
(or with nothing requiring grad) the forward runs alone and saves nothing.

In company: the public functions are ``torch.compiler.disable``-d (a graph break: inductor
must not re-derive the hand-written backward); they run with autocast off, in the dtype they
are given; under a ``torch.func`` transform they run
:mod:`lightning_rnn_reg.rnn.composable` (plain ops) instead; and the backward refuses
``create_graph=True`` (:data:`DOUBLE_BACKWARD_ERROR`) rather than give a first-order-only
answer.

LSTM (gate order ``i, f, g, o`` as ``nn.LSTM``), step ``t``::

    hin   = h_{t-1} * m^h_t                                  RecurrentDropout (Gal 2016)
    a     = xw_t + hin @ W_hh^T      (xw_t = x_t W_ih^T + b_ih + b_hh)
    i, f, o = sigmoid(a_i, a_f, a_o);   g = tanh(a_g)
    cnew  = (f * c_{t-1} + i * (g * m^u_t)) * m^c_t          UpdateDropout (Semeniuta 2016),
                                                              CellDropout (Moon 2015)
    hnew  = o * tanh(cnew)
    c_t   = d^c_t * c_{t-1} + (1 - d^c_t) * cnew             Zoneout (Krueger 2016)
    h_t   = d^h_t * h_{t-1} + (1 - d^h_t) * hnew

GRU (``nn.GRU``'s formulation, gate order ``r, z, n``), step ``t``::

    hin  = h_{t-1} * m^h_t;    hh = hin @ W_hh^T + b_hh      (xw_t = x_t W_ih^T + b_ih)
    r    = sigmoid(xw_r + hh_r);   z = sigmoid(xw_z + hh_z);   n = tanh(xw_n + r * hh_n)
    hnew = (1 - z) * (n * m^u_t) + z * h_{t-1}                (unmasked h_{t-1})
    h_t  = d^h_t * h_{t-1} + (1 - d^h_t) * hnew

Masks (``h_mask`` = ``m^h``, ``update_mask`` = ``m^u``, ``cell_mask`` = ``m^c``, ``zone_c`` =
``d^c``, ``zone_h`` = ``d^h``) are ``None`` (the op is skipped) or a tensor broadcastable to
``(T, B, H)`` with 3 dimensions: per step ``(T, B, H|1)``, or per sequence ``(1, B|1, H|1)``.
They never receive gradients. Zoneout weights may be any value in ``[0, 1]``.

Memory kept for backward, per step, in elements of ``xw``'s dtype (``B`` batch, ``H`` hidden):

* LSTM: ``8·B·H`` — the activations ``[i, f, sigmoid(2 a_g), o]`` (4), ``[g * m^u, c_{t-1},
  4 i m^u]`` (3), ``tanh(cnew)`` (1); plus ``B·H`` for ``hin`` when ``h_mask`` is given and
  ``W_hh`` needs a gradient (else ``hin`` is ``h_{t-1}``, i.e. the output, kept anyway).
  float32, B = 20, H = 650: 416 kB per step (35 steps: 14.6 MB).
* GRU: ``4·B·H`` — ``[r, z, hh_n]`` and ``n``; plus ``B·H`` for ``hin`` as above.

Implementation notes (all for speed in eager mode, where each op costs a few microseconds of
dispatch besides its arithmetic):

* Gate-major layout: one ``baddbmm`` computes ``xw_t + hin @ W_hh^T`` as one product per gate
  and writes the gates as ``(G, B, H)``, so every later elementwise op reads and writes
  contiguous ``(B, H)`` blocks (strided slices of a ``(B, 4H)`` row cost 2-3x more on CPU),
  and this batched product is also faster than one ``(B, H) x (H, 4H)`` product with MKL.
* LSTM: one in-place sigmoid covers all four gates, using ``tanh(x) = 2 sigmoid(2x) - 1`` for
  ``g`` (exact up to rounding); the backward forms ``dpre * [g m^u, c_{t-1}, 4 i m^u]`` with
  one broadcast product, and one ``sigmoid_backward`` gives the gradient of all four gate
  pre-activations (for ``g``: ``4 s (1 - s) = 1 - g^2`` with ``s = sigmoid(2 a_g)``), written
  straight into the ``(T, B, 4H)`` buffer that is ``d xw`` and feeds ``dgates_t @ W_hh``.
* ``sigmoid_backward`` / ``tanh_backward`` (aten) give activation derivatives in one op;
  zoneout is ``lerp``; preallocated buffers, ``out=`` / in-place ops, per-step views from one
  ``unbind`` per call, 0-dim constants (a Python scalar costs a tensor wrap per op).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import NamedTuple, Protocol, cast

import torch
from torch import Tensor

from lightning_rnn_reg.loop_masks import LoopMasks
from lightning_rnn_reg.rnn.composable import (
    gru_recurrence_composable,
    lstm_recurrence_composable,
)

__all__ = ["DOUBLE_BACKWARD_ERROR", "gru_recurrence", "lstm_recurrence"]

#: Raised when a loop backward is asked to build a graph (``create_graph=True``).
DOUBLE_BACKWARD_ERROR = (
    "lightning_rnn_reg: the loop path (a recurrent-site regularizer, or path='loop') has a "
    "hand-written backward that cannot be differentiated again, so create_graph=True "
    "(gradient penalties, Hessian-vector products, MAML) is refused rather than answered "
    "wrongly. Use path='fused' with no recurrent-site regularizer, or compute the higher-order "
    "derivative with torch.func (grad / jacrev / hessian), under which the loop runs in plain, "
    "differentiable ops."
)

_sigmoid_backward = torch.ops.aten.sigmoid_backward.grad_input
_tanh_backward = torch.ops.aten.tanh_backward.grad_input

_Steps = Sequence[Tensor]


class _Ctx(Protocol):
    """What the autograd ``ctx`` offers these functions. torch's stubs type it as
    ``FunctionCtx``, which lacks ``saved_tensors`` / ``needs_input_grad`` and does not admit
    ``None`` in ``save_for_backward`` (which torch accepts)."""

    saved_tensors: tuple[Tensor | None, ...]
    needs_input_grad: tuple[bool, ...]
    masks: LoopMasks

    def save_for_backward(self, *tensors: Tensor | None) -> None: ...

    def set_materialize_grads(self, value: bool) -> None: ...


class _LSTMSaved(NamedTuple):
    """What the LSTM forward keeps for backward (the masks travel on ``ctx.masks``)."""

    w_hh: Tensor
    h0: Tensor
    out: Tensor
    acts: Tensor  # [i, f, sigmoid(2 a_g), o] per step
    q: Tensor  # [g * m^u, c_{t-1}, 4 i m^u] per step
    tanh_c: Tensor
    hin_buf: Tensor | None  # h_{t-1} * m^h when that differs from the output


class _GRUSaved(NamedTuple):
    """What the GRU forward keeps for backward (the masks travel on ``ctx.masks``)."""

    w_hh: Tensor
    h0: Tensor
    out: Tensor
    hh: Tensor  # [r, z, hh_n] per step
    n_buf: Tensor
    hin_buf: Tensor | None


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


def _gate_masked_grad(dgates: Tensor, w_gates: Tensor, mask: Tensor, buf: Tensor,
                      out: Tensor) -> Tensor:
    """``sum_k (dgates_k @ W_k) * m_k``: the gradient reaching ``h_{t-1}`` through per-gate
    masked inputs (``dgates`` ``(G, B, H)`` gate-major, ``W_k`` ``(H, H)``)."""
    torch.bmm(dgates, w_gates, out=buf).mul_(mask)
    return torch.sum(buf, 0, out=out)


def _refuse_double_backward() -> None:
    # Autograd runs a Function's backward with grad mode on exactly when create_graph=True.
    if torch.is_grad_enabled():
        raise RuntimeError(DOUBLE_BACKWARD_ERROR)


# ----------------------------------------------------------------------------------------------
# LSTM
# ----------------------------------------------------------------------------------------------


def _lstm_forward(
    xw: Tensor, w_hh: Tensor, h0: Tensor, c0: Tensor, masks: LoopMasks, save: bool,
    save_hin: bool,
) -> tuple[Tensor, Tensor, Tensor, tuple[Tensor | None, ...]]:
    """The LSTM loop; with ``save`` the buffers backward needs are per step (else reused)."""
    hm, um, cm = masks.h_mask, masks.update_mask, masks.cell_mask
    zc, zh, gm = masks.zone_c, masks.zone_h, masks.gate_h_mask
    steps, batch, gates = xw.shape
    hidden = gates // 4
    new = xw.new_empty
    n_t = steps if save else 1
    # gate-major buffers: every gate of a step is one contiguous (B, H) block
    acts = new(n_t, 4, batch, hidden)  # [i, f, sigmoid(2 a_g), o]
    # q[t] = [g * m^u, c_{t-1}, 4 i m^u] of step t (c_T in q[T]); the third only with save
    q = new(steps + 1 if save else 2, 3, batch, hidden)
    tanh_c = new(n_t, batch, hidden)
    hin_buf = new(steps if save_hin else 1, batch, hidden) if hm is not None else None
    cnew_buf = new(batch, hidden) if zc is not None else None
    out = new(steps, batch, hidden)

    a_s = _cycle(acts, steps)
    i_s, f_s = _cycle(acts[:, 0], steps), _cycle(acts[:, 1], steps)
    g_s, o_s = _cycle(acts[:, 2], steps), _cycle(acts[:, 3], steps)
    gu_s, c_s, i4_s = (_cycle(q[:, k], steps + 1) for k in range(3))
    tc_s, out_s = _cycle(tanh_c, steps), out.unbind(0)
    xw_s = xw.view(steps, batch, 4, hidden).permute(0, 2, 1, 3).unbind(0)
    # hin of every step, expanded over the 4 gates for the batched product
    if gm is not None:  # one masked input per gate (Gal's untied variant)
        hin_buf = new(steps if save_hin else 1, 4, batch, hidden)
        hin_s, hin4_s = None, _cycle(hin_buf, steps)
    elif hin_buf is not None:
        hin_s = _cycle(hin_buf, steps)
        hin4_s = _cycle(hin_buf.unsqueeze(1).expand(-1, 4, batch, hidden), steps)
    else:
        hin_s = None
        hin4_s = [h0.expand(4, batch, hidden),
                  *out[: steps - 1].unsqueeze(1).expand(-1, 4, batch, hidden).unbind(0)]
    gm_s = _per_step(gm, steps)
    hm_s, um_s, cm_s = _per_step(hm, steps), _per_step(um, steps), _per_step(cm, steps)
    zc_s, zh_s = _per_step(zc, steps), _per_step(zh, steps)
    um4_s = _per_step(um * 4.0, steps) if save and um is not None else None
    minus_one, two, four = (xw.new_full((), v) for v in (-1.0, 2.0, 4.0))  # no per-op wrap
    # a = xw_t + hin @ W^T as 4 products (one per gate) written gate-major by one baddbmm
    w_t = w_hh.view(4, hidden, hidden).transpose(1, 2)

    c_s[0].copy_(c0)
    h_prev = h0
    for t in range(steps):
        if hm_s is not None and hin_s is not None:  # hin_s is set exactly when hm_s is
            torch.mul(h_prev, hm_s[t], out=hin_s[t])
        elif gm_s is not None:
            torch.mul(h_prev.unsqueeze(0), gm_s[t], out=hin4_s[t])
        a = torch.baddbmm(xw_s[t], hin4_s[t], w_t, out=a_s[t])
        # one sigmoid for all gates: g = tanh(a_g) = 2 sigmoid(2 a_g) - 1
        g_s[t].mul_(two)
        a.sigmoid_()
        gu = torch.add(minus_one, g_s[t], alpha=2.0, out=gu_s[t])
        if um_s is not None:
            gu.mul_(um_s[t])
        if save:
            torch.mul(i_s[t], four if um4_s is None else um4_s[t], out=i4_s[t])
        c_prev, c_next = c_s[t], c_s[t + 1]
        cnew = c_next if cnew_buf is None else cnew_buf
        torch.mul(f_s[t], c_prev, out=cnew)
        cnew.addcmul_(i_s[t], gu)
        if cm_s is not None:
            cnew.mul_(cm_s[t])
        tc = torch.tanh(cnew, out=tc_s[t])
        h = torch.mul(o_s[t], tc, out=out_s[t])
        if zc_s is not None:
            torch.lerp(cnew, c_prev, zc_s[t], out=c_next)
        if zh_s is not None:
            h.lerp_(h_prev, zh_s[t])
        h_prev = h
    saved = (acts, q, tanh_c, hin_buf) if save else ()
    return out, out[steps - 1].clone(), c_s[steps].clone(), saved


def _lstm_backward(
    ctx: _Ctx, grad_out: Tensor | None, grad_h: Tensor | None, grad_c: Tensor | None,
) -> tuple[Tensor | None, ...]:
    w_hh, h0, out, acts, q, tanh_c, hin_buf = _LSTMSaved(*cast(_LSTMSaved, ctx.saved_tensors))
    hm, cm, zc, zh = ctx.masks.h_mask, ctx.masks.cell_mask, ctx.masks.zone_c, ctx.masks.zone_h
    gm_s = _per_step(ctx.masks.gate_h_mask, out.shape[0])
    need_xw, need_w, need_h0, need_c0 = ctx.needs_input_grad[:4]
    steps, batch, hidden = out.shape
    gates = 4 * hidden
    new = out.new_empty

    dgates = new(steps, batch, gates)
    dg_s = dgates.unbind(0)
    dg4_s = dgates.view(steps, batch, 4, hidden).permute(0, 2, 1, 3).unbind(0)
    a_s, f_s, o_s = acts.unbind(0), acts[:, 1].unbind(0), acts[:, 3].unbind(0)
    q_s, tc_s = q.unbind(0), tanh_c.unbind(0)
    gout_s = grad_out.unbind(0) if grad_out is not None else None
    hm_s, cm_s = _per_step(hm, steps), _per_step(cm, steps)
    zc_s, zh_s = _per_step(zc, steps), _per_step(zh, steps)
    ozc_s = _per_step(1.0 - zc, steps) if zc is not None else None
    ozh_s = _per_step(1.0 - zh, steps) if zh is not None else None

    # s = [dpre * g m^u, dpre * c_{t-1}, dpre * 4 i m^u, dhnew * tanh(cnew)]: one
    # sigmoid_backward against [i, f, sigmoid(2 a_g), o] gives all four gate gradients
    s = new(4, batch, hidden)
    s_q, s_o = s[0:3], s[3]
    tmp, dhn_buf, dcn_buf, dpre_buf = (new(batch, hidden) for _ in range(4))
    dh = _initial_grad(grad_out, grad_h, new(batch, hidden))
    dc = _initial_grad(None, grad_c, new(batch, hidden))
    w4, gate_buf = w_hh.view(4, hidden, hidden), new(4, batch, hidden)
    dh_other, dc_other = new(batch, hidden), new(batch, hidden)

    for t in range(steps - 1, -1, -1):
        # gradient of hnew, cnew
        dhn = dh if ozh_s is None else torch.mul(dh, ozh_s[t], out=dhn_buf)
        torch.mul(dhn, o_s[t], out=tmp)
        _tanh_backward(tmp, tc_s[t], grad_input=tmp)
        # dcnew = dc * (1 - d^c) + dhnew * o * (1 - tanh(cnew)^2)
        dcn = dc.add_(tmp) if ozc_s is None else torch.addcmul(tmp, dc, ozc_s[t], out=dcn_buf)
        dpre = dcn if cm_s is None else torch.mul(dcn, cm_s[t], out=dpre_buf)
        # gate pre-activations
        torch.mul(dpre, q_s[t], out=s_q)
        torch.mul(dhn, tc_s[t], out=s_o)
        _sigmoid_backward(s, a_s[t], grad_input=dg4_s[t])  # gate-major in, row layout out
        dg = dg_s[t]
        # c_{t-1}
        if zc_s is None:
            if cm_s is None:
                dc.mul_(f_s[t])
            else:
                torch.mul(dpre, f_s[t], out=dc)
        else:
            torch.mul(dpre, f_s[t], out=dc_other).addcmul_(dc, zc_s[t])
            dc, dc_other = dc_other, dc
        # h_{t-1}: (dgates @ W_hh) * m^h + dh * d^h + grad_out[t-1]
        base = gout_s[t - 1] if t > 0 and gout_s is not None else None
        if zh_s is not None:
            if base is None:
                base = torch.mul(dh, zh_s[t], out=dh_other)
            else:
                base = torch.addcmul(base, dh, zh_s[t], out=dh_other)
        if gm_s is not None:
            dhin = _gate_masked_grad(dg4_s[t], w4, gm_s[t], gate_buf, tmp)
            if base is None:
                dh_other.copy_(dhin)
            else:
                torch.add(base, dhin, out=dh_other)
        elif hm_s is None:
            if base is None:
                torch.mm(dg, w_hh, out=dh_other)
            else:
                torch.addmm(base, dg, w_hh, out=dh_other)
        else:
            dhin = torch.mm(dg, w_hh, out=tmp)
            if base is None:
                torch.mul(dhin, hm_s[t], out=dh_other)
            else:
                torch.addcmul(base, dhin, hm_s[t], out=dh_other)
        dh, dh_other = dh_other, dh

    d_w = _recurrent_weight_grad(dgates, hin_buf, h0, out) if need_w else None
    return (dgates if need_xw else None, d_w, dh if need_h0 else None,
            dc if need_c0 else None, None)


class _LSTMRecurrence(torch.autograd.Function):
    """Autograd wrapper of the LSTM loop (see the module docstring)."""

    @staticmethod
    def forward(
        ctx: _Ctx, xw: Tensor, w_hh: Tensor, h0: Tensor, c0: Tensor, masks: LoopMasks,
    ) -> tuple[Tensor, Tensor, Tensor]:
        ctx.set_materialize_grads(False)
        save_hin = bool(ctx.needs_input_grad[1])
        out, h_n, c_n, saved = _lstm_forward(xw, w_hh, h0, c0, masks, True, save_hin)
        acts, q, tanh_c, hin_buf = saved
        ctx.masks = masks  # constants: no gradient, nothing for autograd to track
        ctx.save_for_backward(*_LSTMSaved(w_hh, h0, out, cast(Tensor, acts), cast(Tensor, q),
                                          cast(Tensor, tanh_c), hin_buf if save_hin else None))
        return out, h_n, c_n

    @staticmethod
    def backward(
        ctx: _Ctx, grad_out: Tensor | None, grad_h: Tensor | None,
        grad_c: Tensor | None,
    ) -> tuple[Tensor | None, ...]:
        _refuse_double_backward()
        with _full_precision(cast(Tensor, ctx.saved_tensors[0])), torch.no_grad():
            return _lstm_backward(ctx, grad_out, grad_h, grad_c)


@torch.compiler.disable
def lstm_recurrence(
    xw: Tensor,
    w_hh: Tensor,
    h0: Tensor,
    c0: Tensor,
    *,
    masks: LoopMasks | None = None,
    h_mask: Tensor | None = None,
    gate_h_mask: Tensor | None = None,
    update_mask: Tensor | None = None,
    cell_mask: Tensor | None = None,
    zone_c: Tensor | None = None,
    zone_h: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """LSTM recurrence over precomputed input projections (equations in the module docstring).

    Args:
        xw: ``(T, B, 4H)`` = ``x_t W_ih^T + b_ih + b_hh``, gate order ``i, f, g, o``.
        w_hh: ``(4H, H)`` recurrent weights.
        h0, c0: ``(B, H)`` initial state (may be expanded / non-contiguous).
        masks: the masks as one :class:`~lightning_rnn_reg.loop_masks.LoopMasks` (what the
            layers pass); the keyword masks below are the same fields, added to it.
        h_mask: RecurrentDropout mask on ``h_{t-1}`` before the recurrent product.
        gate_h_mask: per-gate masks ``(T|1, G, B|1, H|1)`` on ``h_{t-1}``, one for each
            gate's product (Gal 2016's untied variant); not together with ``h_mask``.
        update_mask: UpdateDropout mask on ``g``.
        cell_mask: CellDropout mask on the new cell.
        zone_c, zone_h: Zoneout weights of the previous cell / hidden state.

    Masks are ``None`` or ``(T|1, B|1, H|1)`` tensors; they get no gradient.

    Returns:
        ``(out, h_T, c_T)``: ``out`` ``(T, B, H)`` holds ``h_1 .. h_T``.
    """
    hidden = _check_common(xw, w_hh, h0, 4, "lstm_recurrence")
    if tuple(c0.shape) != tuple(h0.shape) or c0.dtype != xw.dtype:
        raise ValueError("lstm_recurrence: c0 must match h0's shape and dtype")
    given = {"h_mask": h_mask, "gate_h_mask": gate_h_mask, "update_mask": update_mask,
             "cell_mask": cell_mask, "zone_c": zone_c, "zone_h": zone_h}
    checked = _checked_masks(masks, given, _LSTM_FIELDS, xw.shape[0], xw.shape[1], hidden, xw,
                             "lstm_recurrence")
    if _transforms_active():
        return lstm_recurrence_composable(xw, w_hh, h0, c0, checked)
    with _full_precision(xw):
        if _needs_graph(xw, w_hh, h0, c0):
            return cast("tuple[Tensor, Tensor, Tensor]",
                        _LSTMRecurrence.apply(xw, w_hh, h0, c0, checked))
        out, h_n, c_n, _ = _lstm_forward(xw, w_hh, h0, c0, checked, save=False, save_hin=False)
    return out, h_n, c_n


# ----------------------------------------------------------------------------------------------
# GRU
# ----------------------------------------------------------------------------------------------


def _gru_forward(
    xw: Tensor, w_hh: Tensor, b_hh: Tensor, h0: Tensor, masks: LoopMasks, save: bool,
    save_hin: bool,
) -> tuple[Tensor, Tensor, tuple[Tensor | None, ...]]:
    """The GRU loop; with ``save`` the buffers backward needs are per step (else reused)."""
    hm, um, zh, gm = masks.h_mask, masks.update_mask, masks.zone_h, masks.gate_h_mask
    steps, batch, gates = xw.shape
    hidden = gates // 3
    new = xw.new_empty
    n_t = steps if save else 1
    hh = new(n_t, 3, batch, hidden)  # gate-major [r, z, hh_n]
    n_buf = new(n_t, batch, hidden)
    hin_buf = new(steps if save_hin else 1, batch, hidden) if hm is not None else None
    nu_buf = new(batch, hidden) if um is not None else None
    out = new(steps, batch, hidden)

    hh_s, rz_s = _cycle(hh, steps), _cycle(hh[:, 0:2], steps)
    r_s, z_s, hhn_s = (_cycle(hh[:, k], steps) for k in range(3))
    n_s, out_s = _cycle(n_buf, steps), out.unbind(0)
    xw3 = xw.view(steps, batch, 3, hidden).permute(0, 2, 1, 3)
    xwrz_s, xwn_s = xw3[:, 0:2].unbind(0), xw3[:, 2].unbind(0)
    if gm is not None:  # one masked input per gate (Gal's untied variant)
        hin_buf = new(steps if save_hin else 1, 3, batch, hidden)
        hin_s, hin3_s = None, _cycle(hin_buf, steps)
    elif hin_buf is not None:
        hin_s = _cycle(hin_buf, steps)
        hin3_s = _cycle(hin_buf.unsqueeze(1).expand(-1, 3, batch, hidden), steps)
    else:
        hin_s = None
        hin3_s = [h0.expand(3, batch, hidden),
                  *out[: steps - 1].unsqueeze(1).expand(-1, 3, batch, hidden).unbind(0)]
    hm_s, um_s, zh_s = _per_step(hm, steps), _per_step(um, steps), _per_step(zh, steps)
    gm_s = _per_step(gm, steps)
    bias = b_hh.view(3, 1, hidden)
    w_t = w_hh.view(3, hidden, hidden).transpose(1, 2)

    h_prev = h0
    for t in range(steps):
        if hm_s is not None and hin_s is not None:  # hin_s is set exactly when hm_s is
            torch.mul(h_prev, hm_s[t], out=hin_s[t])
        elif gm_s is not None:
            torch.mul(h_prev.unsqueeze(0), gm_s[t], out=hin3_s[t])
        torch.baddbmm(bias, hin3_s[t], w_t, out=hh_s[t])
        rz_s[t].add_(xwrz_s[t]).sigmoid_()
        n = torch.mul(r_s[t], hhn_s[t], out=n_s[t])
        n.add_(xwn_s[t]).tanh_()
        if um_s is not None:
            n = torch.mul(n, um_s[t], out=nu_buf)
        h = torch.lerp(n, h_prev, z_s[t], out=out_s[t])
        if zh_s is not None:
            h.lerp_(h_prev, zh_s[t])
        h_prev = h
    saved = (hh, n_buf, hin_buf) if save else ()
    return out, out[steps - 1].clone(), saved


def _gru_backward(
    ctx: _Ctx, grad_out: Tensor | None, grad_h: Tensor | None,
) -> tuple[Tensor | None, ...]:
    w_hh, h0, out, hh, n_buf, hin_buf = _GRUSaved(*cast(_GRUSaved, ctx.saved_tensors))
    hm, um, zh = ctx.masks.h_mask, ctx.masks.update_mask, ctx.masks.zone_h
    gm_s = _per_step(ctx.masks.gate_h_mask, out.shape[0])
    need_xw, need_w, need_b, need_h0 = ctx.needs_input_grad[:4]
    steps, batch, hidden = out.shape
    gates = 3 * hidden
    new = out.new_empty

    dxw = new(steps, batch, gates)  # d(xw): [drz, dn_pre]
    dhh = new(steps, batch, gates)  # d(hh): [drz, dn_pre * r]
    dhh_s, dhhrz_s = dhh.unbind(0), dhh[:, :, : 2 * hidden].unbind(0)
    dhhn_s = dhh[:, :, 2 * hidden:].unbind(0)
    dxrz_s, dxn_s = dxw[:, :, : 2 * hidden].unbind(0), dxw[:, :, 2 * hidden:].unbind(0)
    dhhrz4_s = dhh.view(steps, batch, 3, hidden)[:, :, 0:2].permute(0, 2, 1, 3).unbind(0)
    dhh3_s = dhh.view(steps, batch, 3, hidden).permute(0, 2, 1, 3).unbind(0)
    w3, gate_buf = w_hh.view(3, hidden, hidden), new(3, batch, hidden)
    rz_s = hh[:, 0:2].unbind(0)
    r_s, z_s, hhn_s = (hh[:, k].unbind(0) for k in range(3))
    n_s, out_s = n_buf.unbind(0), out.unbind(0)
    gout_s = grad_out.unbind(0) if grad_out is not None else None
    hm_s, um_s, zh_s = _per_step(hm, steps), _per_step(um, steps), _per_step(zh, steps)
    ozh_s = _per_step(1.0 - zh, steps) if zh is not None else None

    s = new(2, batch, hidden)  # [dr, dz] before the sigmoid derivative
    s_r, s_z = s[0], s[1]
    tmp, dhn_buf, direct = new(batch, hidden), new(batch, hidden), new(batch, hidden)
    dh, dh_other = _initial_grad(grad_out, grad_h, new(batch, hidden)), new(batch, hidden)

    for t in range(steps - 1, -1, -1):
        h_prev = out_s[t - 1] if t > 0 else h0
        dhn = dh if ozh_s is None else torch.mul(dh, ozh_s[t], out=dhn_buf)
        torch.mul(dhn, z_s[t], out=direct)
        torch.sub(dhn, direct, out=tmp)  # d(n * m^u) = dhnew * (1 - z)
        if um_s is not None:
            tmp.mul_(um_s[t])
        dxn = _tanh_backward(tmp, n_s[t], grad_input=dxn_s[t])
        torch.mul(dxn, r_s[t], out=dhhn_s[t])
        torch.mul(dxn, hhn_s[t], out=s_r)
        if um_s is not None:
            torch.sub(h_prev, torch.mul(n_s[t], um_s[t], out=tmp), out=s_z)
        else:
            torch.sub(h_prev, n_s[t], out=s_z)
        s_z.mul_(dhn)
        _sigmoid_backward(s, rz_s[t], grad_input=dhhrz4_s[t])  # gate-major in, rows out
        dxrz_s[t].copy_(dhhrz_s[t])
        # h_{t-1}: (dhh @ W_hh) * m^h + dhnew * z + dh * d^h + grad_out[t-1]
        if t > 0 and gout_s is not None:
            direct.add_(gout_s[t - 1])
        if zh_s is not None:
            direct.addcmul_(dh, zh_s[t])
        if gm_s is not None:
            torch.add(direct, _gate_masked_grad(dhh3_s[t], w3, gm_s[t], gate_buf, tmp),
                      out=dh_other)
        elif hm_s is None:
            torch.addmm(direct, dhh_s[t], w_hh, out=dh_other)
        else:
            torch.mm(dhh_s[t], w_hh, out=dh_other).mul_(hm_s[t]).add_(direct)
        dh, dh_other = dh_other, dh

    d_w = _recurrent_weight_grad(dhh, hin_buf, h0, out) if need_w else None
    d_b = dhh.view(steps * batch, gates).sum(0) if need_b else None
    return (dxw if need_xw else None, d_w, d_b, dh if need_h0 else None, None)


class _GRURecurrence(torch.autograd.Function):
    """Autograd wrapper of the GRU loop (see the module docstring)."""

    @staticmethod
    def forward(
        ctx: _Ctx, xw: Tensor, w_hh: Tensor, b_hh: Tensor, h0: Tensor, masks: LoopMasks,
    ) -> tuple[Tensor, Tensor]:
        ctx.set_materialize_grads(False)
        save_hin = bool(ctx.needs_input_grad[1])
        out, h_n, saved = _gru_forward(xw, w_hh, b_hh, h0, masks, True, save_hin)
        hh, n_buf, hin_buf = saved
        ctx.masks = masks
        ctx.save_for_backward(*_GRUSaved(w_hh, h0, out, cast(Tensor, hh), cast(Tensor, n_buf),
                                         hin_buf if save_hin else None))
        return out, h_n

    @staticmethod
    def backward(
        ctx: _Ctx, grad_out: Tensor | None, grad_h: Tensor | None,
    ) -> tuple[Tensor | None, ...]:
        _refuse_double_backward()
        with _full_precision(cast(Tensor, ctx.saved_tensors[0])), torch.no_grad():
            return _gru_backward(ctx, grad_out, grad_h)


@torch.compiler.disable
def gru_recurrence(
    xw: Tensor,
    w_hh: Tensor,
    b_hh: Tensor,
    h0: Tensor,
    *,
    masks: LoopMasks | None = None,
    h_mask: Tensor | None = None,
    gate_h_mask: Tensor | None = None,
    update_mask: Tensor | None = None,
    zone_h: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """GRU recurrence over precomputed input projections (equations in the module docstring).

    Args:
        xw: ``(T, B, 3H)`` = ``x_t W_ih^T + b_ih``, gate order ``r, z, n``.
        w_hh: ``(3H, H)`` recurrent weights; b_hh: ``(3H,)`` recurrent bias.
        h0: ``(B, H)`` initial state (may be expanded / non-contiguous).
        h_mask: RecurrentDropout mask on ``h_{t-1}`` before the recurrent product.
        gate_h_mask: per-gate masks ``(T|1, G, B|1, H|1)`` on ``h_{t-1}``, one for each
            gate's product (Gal 2016's untied variant); not together with ``h_mask``.
        update_mask: UpdateDropout mask on ``n``.
        zone_h: Zoneout weights of the previous hidden state.

    Masks are ``None`` or ``(T|1, B|1, H|1)`` tensors; they get no gradient.

    Returns:
        ``(out, h_T)``: ``out`` ``(T, B, H)`` holds ``h_1 .. h_T``.
    """
    hidden = _check_common(xw, w_hh, h0, 3, "gru_recurrence")
    if tuple(b_hh.shape) != (3 * hidden,) or b_hh.dtype != xw.dtype:
        raise ValueError(f"gru_recurrence: b_hh must be (3H,) = ({3 * hidden},) of xw's dtype")
    given = {"h_mask": h_mask, "gate_h_mask": gate_h_mask, "update_mask": update_mask,
             "zone_h": zone_h}
    checked = _checked_masks(masks, given, _GRU_FIELDS, xw.shape[0], xw.shape[1], hidden, xw,
                             "gru_recurrence")
    if _transforms_active():
        return gru_recurrence_composable(xw, w_hh, b_hh, h0, checked)
    with _full_precision(xw):
        if _needs_graph(xw, w_hh, b_hh, h0):
            return cast("tuple[Tensor, Tensor]",
                        _GRURecurrence.apply(xw, w_hh, b_hh, h0, checked))
        out, h_n, _ = _gru_forward(xw, w_hh, b_hh, h0, checked, save=False, save_hin=False)
    return out, h_n
