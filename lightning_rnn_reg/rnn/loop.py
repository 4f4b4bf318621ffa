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

from lightning_rnn_reg.rnn.loop_common import DOUBLE_BACKWARD_ERROR
from lightning_rnn_reg.rnn.loop_gru import gru_recurrence
from lightning_rnn_reg.rnn.loop_lstm import lstm_recurrence

__all__ = ["DOUBLE_BACKWARD_ERROR", "gru_recurrence", "lstm_recurrence"]
