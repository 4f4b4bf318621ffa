"""The hand-written LSTM loop: forward (gates kept for backward), backward (one
``dgates_t @ W_hh`` per step, ``dW_hh`` as one product after the loop) and the autograd
Function; equations and implementation notes in :mod:`lightning_rnn_reg.rnn.loop`."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, cast

import torch
from torch import Tensor

from lightning_rnn_reg.loop_masks import LoopMasks
from lightning_rnn_reg.rnn.composable import lstm_recurrence_composable
from lightning_rnn_reg.rnn.loop_common import (
    _LSTM_FIELDS,
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


class _LSTMSaved(NamedTuple):
    """What the LSTM forward keeps for backward (the masks travel on ``ctx.masks``)."""

    w_hh: Tensor
    h0: Tensor
    out: Tensor
    acts: Tensor  # [i, f, sigmoid(2 a_g), o] per step
    q: Tensor  # [g * m^u, c_{t-1}, 4 i m^u] per step
    tanh_c: Tensor
    hin_buf: Tensor | None  # h_{t-1} * m^h when that differs from the output



# ----------------------------------------------------------------------------------------------
# LSTM
# ----------------------------------------------------------------------------------------------


def _lstm_buffers(new: Callable[..., Tensor], steps: int, batch: int, hidden: int,
                  save: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Gate-major buffers (every gate of a step one contiguous ``(B, H)`` block): ``acts[t]``
    = ``[i, f, sigmoid(2 a_g), o]``; ``q[t]`` = ``[g * m^u, c_{t-1}, 4 i m^u]`` (``c_T`` in
    ``q[T]``; the third only with ``save``); ``tanh(c_t)``. Per step with ``save``, else
    reused."""
    n_t = steps if save else 1
    return (new(n_t, 4, batch, hidden), new(steps + 1 if save else 2, 3, batch, hidden),
            new(n_t, batch, hidden))


def _previous_cell_grad(dc: Tensor, dc_other: Tensor, dpre: Tensor, f: Tensor,
                        zone: Tensor | None, cell_masked: bool) -> tuple[Tensor, Tensor]:
    """``dc_{t-1} = dpre * f + dc * d^c`` (``dpre``: the gradient of the pre-mask cell);
    returns the buffers ``(dc, spare)`` swapped as needed."""
    if zone is not None:
        torch.mul(dpre, f, out=dc_other).addcmul_(dc, zone)
        return dc_other, dc
    if cell_masked:
        torch.mul(dpre, f, out=dc)
    else:
        dc.mul_(f)  # dc already holds dcnew = dpre
    return dc, dc_other


def _lstm_forward(
    xw: Tensor, w_hh: Tensor, h0: Tensor, c0: Tensor, masks: LoopMasks, save: bool,
    save_hin: bool,
) -> tuple[Tensor, Tensor, Tensor, tuple[Tensor | None, ...]]:
    """The LSTM loop; with ``save`` the buffers backward needs are per step (else reused)."""
    hm, um, cm, zc, zh, gm = (masks.h_mask, masks.update_mask, masks.cell_mask, masks.zone_c,
                              masks.zone_h, masks.gate_h_mask)
    steps, batch, gates = xw.shape
    hidden = gates // 4
    new = xw.new_empty
    acts, q, tanh_c = _lstm_buffers(new, steps, batch, hidden, save)
    cnew_buf = new(batch, hidden) if zc is not None else None
    out = new(steps, batch, hidden)

    a_s = _cycle(acts, steps)
    i_s, f_s, g_s, o_s = (_cycle(acts[:, k], steps) for k in range(4))
    gu_s, c_s, i4_s = (_cycle(q[:, k], steps + 1) for k in range(3))
    tc_s, out_s = _cycle(tanh_c, steps), out.unbind(0)
    xw_s = xw.view(steps, batch, 4, hidden).permute(0, 2, 1, 3).unbind(0)
    hin_buf, hin_s, hin4_s = _hin_views(new, h0, out, masks, 4, save_hin)
    hm_s, um_s, cm_s, zc_s, zh_s, gm_s = (_per_step(m, steps) for m in (hm, um, cm, zc, zh, gm))
    um4_s = _per_step(um * 4.0, steps) if save and um is not None else None
    minus_one, two, four = (xw.new_full((), v) for v in (-1.0, 2.0, 4.0))  # no per-op wrap
    # a = xw_t + hin @ W^T as 4 products (one per gate) written gate-major
    w_t, packed = forward_weight(w_hh, 4, batch, gm is not None)

    c_s[0].copy_(c0)
    h_prev = h0.contiguous() if packed is not None else h0
    for t in range(steps):
        if hm_s is not None and hin_s is not None:  # hin_s is set exactly when hm_s is
            torch.mul(h_prev, hm_s[t], out=hin_s[t])
        elif gm_s is not None:
            torch.mul(h_prev.unsqueeze(0), gm_s[t], out=hin4_s[t])
        a = gate_product(xw_s[t], hin4_s[t], w_t, hin_s[t] if hin_s is not None else h_prev,
                         packed, a_s[t])
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
    buffers, masks = _saved(ctx, len(_LSTMSaved._fields))
    w_hh, h0, out, acts, q, tanh_c, hin_buf = _LSTMSaved(*cast(_LSTMSaved, buffers))
    hm, cm, zc, zh = masks.h_mask, masks.cell_mask, masks.zone_c, masks.zone_h
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
    hm_s, cm_s, zc_s, zh_s, gm_s = (_per_step(m, steps) for m in (
        hm, cm, zc, zh, masks.gate_h_mask))
    ozc_s, ozh_s = (_per_step(1.0 - z, steps) if z is not None else None for z in (zc, zh))

    # s = [dpre * g m^u, dpre * c_{t-1}, dpre * 4 i m^u, dhnew * tanh(cnew)]: one
    # sigmoid_backward against [i, f, sigmoid(2 a_g), o] gives all four gate gradients
    s = new(4, batch, hidden)
    s_q, s_o = s[0:3], s[3]
    tmp, dhn_buf, dcn_buf, dpre_buf = (new(batch, hidden) for _ in range(4))
    dh = _initial_grad(grad_out, grad_h, new(batch, hidden))
    dc = _initial_grad(None, grad_c, new(batch, hidden))
    weight, gate_buf = BackwardWeight.of(w_hh, 4, batch, gm_s is not None), new(4, batch, hidden)
    dh_other, dc_other = new(batch, hidden), new(batch, hidden)

    for t in range(steps - 1, -1, -1):
        # gradient of hnew, cnew
        dhn = dh if ozh_s is None else torch.mul(dh, ozh_s[t], out=dhn_buf)
        torch.mul(dhn, o_s[t], out=tmp)
        tanh_backward(tmp, tc_s[t], grad_input=tmp)
        # dcnew = dc * (1 - d^c) + dhnew * o * (1 - tanh(cnew)^2)
        dcn = dc.add_(tmp) if ozc_s is None else torch.addcmul(tmp, dc, ozc_s[t], out=dcn_buf)
        dpre = dcn if cm_s is None else torch.mul(dcn, cm_s[t], out=dpre_buf)
        # gate pre-activations
        torch.mul(dpre, q_s[t], out=s_q)
        torch.mul(dhn, tc_s[t], out=s_o)
        sigmoid_backward(s, a_s[t], grad_input=dg4_s[t])  # gate-major in, row layout out
        dg = dg_s[t]
        # c_{t-1}
        dc, dc_other = _previous_cell_grad(dc, dc_other, dpre, f_s[t],
                                           zc_s[t] if zc_s else None, cm_s is not None)
        # h_{t-1}: (dgates @ W_hh) * m^h + dh * d^h + grad_out[t-1]
        base = gout_s[t - 1] if t > 0 and gout_s is not None else None
        if zh_s is not None:  # + dh * d^h
            base = torch.mul(dh, zh_s[t], out=dh_other) if base is None else torch.addcmul(
                base, dh, zh_s[t], out=dh_other)
        _grad_into_previous_state(dg, dg4_s[t], weight, base, hm_s[t] if hm_s else None,
                                  gm_s[t] if gm_s else None, gate_buf, tmp, dh_other)
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
        buffers = _LSTMSaved(w_hh, h0, out, cast(Tensor, acts), cast(Tensor, q),
                             cast(Tensor, tanh_c), hin_buf if save_hin else None)
        _save(ctx, buffers, masks)
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
