"""Sampling in a language model: Monte-Carlo dropout evaluation (the mean of ``S`` sampled
models' next-token probabilities, Gal & Ghahramani 2016), and drawing tokens for
:meth:`LanguageModel.generate
<lightning_rnn_reg.tasks.language_model.LanguageModel.generate>`: greedy, or from
``softmax(logits / temperature)`` over the ``top_k`` largest logits, from a local generator."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from lightning_rnn_reg.mode import mc_dropout

__all__ = ["check_sampling", "draw_token", "make_generator", "mc_nll"]


def mc_nll(model: Callable[..., tuple[Tensor, Any]], tokens: Tensor, targets: Tensor,
           state: Any, samples: int) -> tuple[Tensor, Any]:
    """``(summed NLL of targets, state)`` under ``p = (1/S) sum_s softmax(z_s)``, the mean of
    ``samples`` forward passes with fresh dropout masks; the state is the first sample's."""
    with mc_dropout():
        probs = None
        for sample in range(samples):
            logits, sample_state = model(tokens, state)
            p = logits.float().softmax(-1)
            probs = p if probs is None else probs + p
            if sample == 0:
                new_state = sample_state
    log_probs = (cast(Tensor, probs) / samples).clamp_min(1e-30).log()
    return F.nll_loss(log_probs.reshape(-1, log_probs.shape[-1]), targets.reshape(-1),
                      reduction="sum"), new_state


def check_sampling(where: str, prompt: Any, max_tokens: Any, temperature: Any,
                   top_k: Any) -> None:
    """Raise ``TypeError`` for a prompt that is not a ``str`` and ``ValueError`` for
    ``max_tokens < 0``, a temperature that is not a finite number ``>= 0`` or ``top_k < 1``."""
    if not isinstance(prompt, str):
        raise TypeError(f"{where}: prompt must be a str, got {type(prompt).__name__}")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0:
        raise ValueError(f"{where}: max_tokens must be an integer >= 0, got {max_tokens!r}")
    if (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
            or not math.isfinite(temperature) or temperature < 0):
        raise ValueError(f"{where}: temperature must be a finite number >= 0 (0: greedy), "
                         f"got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                              or top_k < 1):
        raise ValueError(f"{where}: top_k must be an integer >= 1 or None, got {top_k!r}")


def make_generator(seed: int | None) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (``None``: a fresh random seed)."""
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def draw_token(logits: Tensor, temperature: float, top_k: int | None,
               generator: torch.Generator) -> int:
    """One token id from next-token ``logits (V,)``: ``argmax`` at ``temperature == 0``, else
    a draw (from ``generator``, on the CPU) from ``softmax(logits / temperature)`` over the
    ``top_k`` largest logits (all without ``top_k``)."""
    logits = logits.detach().float().cpu()
    if temperature == 0:
        return int(logits.argmax())
    candidates = torch.arange(logits.numel())
    if top_k is not None and top_k < logits.numel():
        logits, candidates = logits.topk(top_k)
    probs = ((logits - logits.max()) / temperature).softmax(-1)  # no overflow at small T
    return int(candidates[torch.multinomial(probs, 1, generator=generator)])
