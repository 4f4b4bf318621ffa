"""Per-rank randomness and state: mask seeds that differ across ranks, and the state each
rank needs to resume exactly (its RNG state, a carried hidden state) in checkpoints.

Masks come from torch's default generator. Lightning's ``seed_everything`` gives every rank
the same seed, so without care every rank would draw the same masks and data-parallel
training would see the same noise ``W`` times. At the start of fit, rank ``r`` of a
multi-process run reseeds the generator with

    ``seed_r = (seed * 1_000_003 + r) mod 2**63``, ``seed`` = the global seed

(``PL_GLOBAL_SEED``, set by ``seed_everything``, else ``torch.initial_seed()``): different
on every rank, reproducible from the seed. A single process keeps its generator untouched.

A checkpoint is written by rank 0 only, so per-rank state is gathered from every rank
(:func:`gather_per_rank`) and each rank takes back its own entry on resume.

:class:`RankRNG` is the task modules' mixin doing all of it: rank seeds at fit start,
evaluation that leaves the generator as it found it, every rank's generator state in
``checkpoint["lrr"]["rng"]``, restored when a fit resumes.
"""

from __future__ import annotations

import os
from typing import Any

import lightning as L
import torch
from torch import Tensor

__all__ = ["RankRNG", "gather_per_rank", "get_rng_state", "global_seed", "rank_seed",
           "set_rng_state"]


def global_seed() -> int:
    """The run's seed: ``PL_GLOBAL_SEED`` (``seed_everything``), else torch's initial seed."""
    seed = os.environ.get("PL_GLOBAL_SEED")
    return int(seed) if seed is not None else torch.initial_seed()


def rank_seed(seed: int, rank: int) -> int:
    """The mask seed of ``rank``: ``(seed * 1_000_003 + rank) mod 2**63``."""
    return (seed * 1_000_003 + rank) % 2**63


def get_rng_state(device: torch.device) -> dict[str, Tensor]:
    """The generator states masks come from: CPU, and the CUDA device's if on one."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Tensor], device: torch.device) -> None:
    """Restore :func:`get_rng_state`'s result."""
    torch.set_rng_state(state["cpu"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def gather_per_rank(module: Any, tensors: dict[str, Tensor]) -> list[dict[str, Tensor]]:
    """Every rank's ``tensors`` (same keys and shapes on all ranks), as one dict per rank,
    on the CPU. A collective call under DDP: every rank must make it (Lightning dumps a
    checkpoint on every rank, then rank 0 writes it)."""
    trainer = getattr(module, "_trainer", None)
    world_size = trainer.world_size if trainer is not None else 1
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    if world_size == 1 or not distributed:  # e.g. the launching process after ddp_spawn
        return [{key: value.detach().cpu().clone() for key, value in tensors.items()}]
    gathered = {key: module.all_gather(value.detach().to(module.device)).cpu()
                for key, value in tensors.items()}
    return [{key: value[rank] for key, value in gathered.items()} for rank in range(world_size)]


def resumed_entry(module: Any, states: list[Any] | None) -> Any:
    """This rank's entry of per-rank ``states`` read from the checkpoint a fit resumes from;
    ``None`` when the fit does not resume or the checkpoint has another number of ranks."""
    trainer = module.trainer
    if states is None or trainer.ckpt_path is None or len(states) != trainer.world_size:
        return None
    return states[trainer.global_rank]


class RankRNG(L.LightningModule):
    """Mixin: per-rank mask seeds, evaluation that leaves the generator untouched, and every
    rank's generator state in checkpoints (restored when a fit resumes). Subclasses that
    override these hooks call ``super()``."""

    def __init__(self) -> None:
        super().__init__()
        self._resume_rng: list[dict[str, Tensor]] | None = None
        self._rng_before_eval: dict[str, Tensor] | None = None

    def on_fit_start(self) -> None:
        """Resume this rank's generator from the checkpoint being resumed, else give each
        rank of a multi-process run its own mask seed (a single process is left alone)."""
        super().on_fit_start()
        state = resumed_entry(self, self._resume_rng)
        self._resume_rng = None
        if state is not None:
            set_rng_state(state, self.device)
        elif self.trainer.world_size > 1:
            torch.manual_seed(rank_seed(global_seed(), self.trainer.global_rank))

    def on_validation_start(self) -> None:
        super().on_validation_start()
        self._rng_before_eval = get_rng_state(self.device)

    def on_validation_end(self) -> None:
        super().on_validation_end()
        if self._rng_before_eval is not None:
            set_rng_state(self._rng_before_eval, self.device)
            self._rng_before_eval = None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Every rank's generator state in ``checkpoint["lrr"]["rng"]`` (a collective call
        under DDP)."""
        super().on_save_checkpoint(checkpoint)
        state = self._rng_before_eval or get_rng_state(self.device)
        checkpoint.setdefault("lrr", {})["rng"] = gather_per_rank(self, state)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep the generator states for :meth:`on_fit_start` of a resumed fit."""
        super().on_load_checkpoint(checkpoint)
        self._resume_rng = checkpoint.get("lrr", {}).get("rng")
