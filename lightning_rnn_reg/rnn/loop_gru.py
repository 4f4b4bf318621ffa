"""The hand-written GRU loop: forward (gates kept for backward), backward (one
``dgates_t @ W_hh`` per step, ``dW_hh`` as one product after the loop) and the autograd
Function; equations and implementation notes in :mod:`lightning_rnn_reg.rnn.loop`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, cast

import torch
from torch import Tensor

from lightning_rnn_reg.loop_masks import LoopMasks
from lightning_rnn_reg.rnn.composable import gru_recurrence_composable
from lightning_rnn_reg.rnn.loop_common import (
    _GRU_FIELDS,
    BackwardWeight,
    _check_common,
    _checked_masks,
    _Ctx,
    _cycle,
    _full_precision,
    _grad_into_previous_state,
    _hin_views,
    _initial_grad,
    _needs_graph,
    _per_step,
    _recurrent_weight_grad,
    _refuse_double_backward,
    _save,
    _saved,
    _transforms_active,
    forward_weight,
    gate_product,
    sigmoid_backward,
    tanh_backward,
)


class _GRUSaved(NamedTuple):
    """What the GRU forward keeps for backward (the masks travel on ``ctx.masks``)."""

    w_hh: Tensor
    h0: Tensor
    out: Tensor
    hh: Tensor  # [r, z, hh_n] per step
    n_buf: Tensor
    hin_buf: Tensor | None



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
    nu_buf = new(batch, hidden) if um is not None else None
    out = new(steps, batch, hidden)

    hh_s, rz_s = _cycle(hh, steps), _cycle(hh[:, 0:2], steps)
    r_s, z_s, hhn_s = (_cycle(hh[:, k], steps) for k in range(3))
    n_s, out_s = _cycle(n_buf, steps), out.unbind(0)
    xw3 = xw.view(steps, batch, 3, hidden).permute(0, 2, 1, 3)
    xwrz_s, xwn_s = xw3[:, 0:2].unbind(0), xw3[:, 2].unbind(0)
    hin_buf, hin_s, hin3_s = _hin_views(new, h0, out, masks, 3, save_hin)
    hm_s, um_s, zh_s, gm_s = (_per_step(m, steps) for m in (hm, um, zh, gm))
    bias = b_hh.view(3, 1, hidden)
    w_t, packed = forward_weight(w_hh, 3, batch, gm is not None)

    h_prev = h0.contiguous() if packed is not None else h0
    for t in range(steps):
        if hm_s is not None and hin_s is not None:  # hin_s is set exactly when hm_s is
            torch.mul(h_prev, hm_s[t], out=hin_s[t])
        elif gm_s is not None:
            torch.mul(h_prev.unsqueeze(0), gm_s[t], out=hin3_s[t])
        gate_product(bias, hin3_s[t], w_t, hin_s[t] if hin_s is not None else h_prev, packed,
                     hh_s[t])
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


def _grad_views(dhh: Tensor, hidden: int) -> tuple[Sequence[Tensor], ...]:
    """Per-step views of ``d(hh)`` = ``[drz, dn_pre * r]`` (rows ``(T, B, 3H)``): the rows,
    the ``rz`` and ``n`` columns, and gate-major ``(2|3, B, H)`` views."""
    steps, batch = dhh.shape[:2]
    gate_major = dhh.view(steps, batch, 3, hidden).permute(0, 2, 1, 3)
    return (dhh.unbind(0), dhh[:, :, : 2 * hidden].unbind(0),
            dhh[:, :, 2 * hidden:].unbind(0), gate_major[:, 0:2].unbind(0),
            gate_major.unbind(0))


def _gru_backward(
    ctx: _Ctx, grad_out: Tensor | None, grad_h: Tensor | None,
) -> tuple[Tensor | None, ...]:
    buffers, masks = _saved(ctx, len(_GRUSaved._fields))
    w_hh, h0, out, hh, n_buf, hin_buf = _GRUSaved(*cast(_GRUSaved, buffers))
    hm, um, zh = masks.h_mask, masks.update_mask, masks.zone_h
    need_xw, need_w, need_b, need_h0 = ctx.needs_input_grad[:4]
    steps, batch, hidden = out.shape
    gates = 3 * hidden
    new = out.new_empty

    dxw, dhh = new(steps, batch, gates), new(steps, batch, gates)
    dhh_s, dhhrz_s, dhhn_s, dhhrz4_s, dhh3_s = _grad_views(dhh, hidden)
    dxrz_s, dxn_s = dxw[:, :, : 2 * hidden].unbind(0), dxw[:, :, 2 * hidden:].unbind(0)
    weight = BackwardWeight.of(w_hh, 3, batch, masks.gate_h_mask is not None)
    gate_buf = new(3, batch, hidden)
    rz_s = hh[:, 0:2].unbind(0)
    r_s, z_s, hhn_s = (hh[:, k].unbind(0) for k in range(3))
    n_s, out_s = n_buf.unbind(0), out.unbind(0)
    gout_s = grad_out.unbind(0) if grad_out is not None else None
    hm_s, um_s, zh_s, gm_s = (_per_step(m, steps) for m in (hm, um, zh, masks.gate_h_mask))
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
        dxn = tanh_backward(tmp, n_s[t], grad_input=dxn_s[t])
        torch.mul(dxn, r_s[t], out=dhhn_s[t])
        torch.mul(dxn, hhn_s[t], out=s_r)
        if um_s is not None:
            torch.sub(h_prev, torch.mul(n_s[t], um_s[t], out=tmp), out=s_z)
        else:
            torch.sub(h_prev, n_s[t], out=s_z)
        s_z.mul_(dhn)
        sigmoid_backward(s, rz_s[t], grad_input=dhhrz4_s[t])  # gate-major in, rows out
        dxrz_s[t].copy_(dhhrz_s[t])
        # h_{t-1}: (dhh @ W_hh) * m^h + dhnew * z + dh * d^h + grad_out[t-1]
        if t > 0 and gout_s is not None:
            direct.add_(gout_s[t - 1])
        if zh_s is not None:
            direct.addcmul_(dh, zh_s[t])
        _grad_into_previous_state(dhh_s[t], dhh3_s[t], weight, direct,
                                  hm_s[t] if hm_s else None, gm_s[t] if gm_s else None,
                                  gate_buf, tmp, dh_other)
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
        buffers = _GRUSaved(w_hh, h0, out, cast(Tensor, hh), cast(Tensor, n_buf),
                            hin_buf if save_hin else None)
        _save(ctx, buffers, masks)
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
