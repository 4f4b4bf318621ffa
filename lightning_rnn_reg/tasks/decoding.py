"""Constrained decoding of per-token tag scores: the best path that is valid in a tag scheme.

Given per-token log-probabilities ``s_t(k)`` (the tagger's ``log_softmax``; no CRF, nothing
trained), Viterbi finds ``argmax_y sum_t s_t(y_t)`` over the sequences ``y`` whose first tag
may start a sentence, every pair ``(y_{t-1}, y_t)`` is an allowed transition, and whose last
tag may end one (:func:`~lightning_rnn_reg.tag_schemes.allowed_transitions`). Forbidden
moves score ``-inf``; ``O`` is always allowed, so a finite path always exists. Ties go to the
lower tag id. Cost ``O(T K^2)`` per sentence, vectorised over the batch.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["viterbi_decode"]


def _penalty(allowed: Tensor, like: Tensor) -> Tensor:
    """``0`` where allowed, ``-inf`` where not, on ``like``'s device and dtype."""
    allowed = allowed.to(like.device)
    return torch.zeros(allowed.shape, dtype=like.dtype, device=like.device).masked_fill(
        ~allowed, float("-inf"))


def viterbi_decode(scores: Tensor, lengths: Tensor, start: Tensor, transitions: Tensor,
                   end: Tensor, pad_value: int = -100) -> Tensor:
    """Best allowed tag path of every sentence of a padded batch.

    Args:
        scores: ``(B, T, K)`` per-token scores (log-probabilities), ``batch_first``.
        lengths: ``(B,)`` valid lengths, each in ``[1, T]``.
        start, transitions, end: boolean ``(K,)``, ``(K, K)`` (``[previous, next]``),
            ``(K,)`` masks of the allowed moves.
        pad_value: written at the positions beyond each length.

    Returns:
        ``(B, T)`` long tensor of tag ids.

    Example:
        >>> start, trans, end = (torch.tensor([True, False]), torch.ones(2, 2, dtype=torch.bool),
        ...                      torch.ones(2, dtype=torch.bool))
        >>> viterbi_decode(torch.tensor([[[0.0, 1.0], [0.0, 1.0]]]), torch.tensor([2]),
        ...                start, trans, end).tolist()
        [[0, 1]]
    """
    batch, steps, _ = scores.shape
    lengths = lengths.to(scores.device)
    trans = _penalty(transitions, scores)
    delta = scores[:, 0] + _penalty(start, scores)
    stay = torch.arange(scores.shape[2], device=scores.device).expand(batch, -1)
    pointers = []
    for t in range(1, steps):
        best, previous = (delta.unsqueeze(2) + trans).max(dim=1)
        active = (t < lengths).unsqueeze(1)
        delta = torch.where(active, best + scores[:, t], delta)
        pointers.append(torch.where(active, previous, stay))  # finished: point to itself
    last = (delta + _penalty(end, scores)).argmax(dim=1)
    path = [last]
    for pointer in reversed(pointers):
        last = pointer.gather(1, last.unsqueeze(1)).squeeze(1)
        path.append(last)
    tags = torch.stack(path[::-1], dim=1)
    valid = torch.arange(steps, device=scores.device).unsqueeze(0) < lengths.unsqueeze(1)
    return tags.masked_fill(~valid, pad_value)
