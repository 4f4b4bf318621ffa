"""Safe checkpoints: plain data in, plain data out, and a clear error for every wrong file.

A task checkpoint holds only tensors and plain containers (dict, list, str, int, float, bool,
None): regularizers as ``class_path`` specs, vocabularies as lists. It is therefore read with
``torch.load(weights_only=True)``, which refuses to unpickle anything else, so loading an
untrusted file cannot run code. The task class that wrote it is recorded under
:data:`TASK_KEY` (a name, never imported), and a task refuses a checkpoint written by a
class it is not (itself or a subclass of it).

Errors (:class:`CheckpointError`, a ``ValueError``) say which file and what is wrong: a
truncated or corrupted file, a file that is not a checkpoint, pickled objects, a checkpoint of
another task.

:class:`SafeCheckpoint` is the task modules' mixin: ``load_from_checkpoint`` reads plain data
only and checks the file first; checkpoints record the task class and refuse another's.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, cast

import lightning as L
import torch

__all__ = ["TASK_KEY", "CheckpointError", "SafeCheckpoint", "check_task", "read_checkpoint",
           "task_name"]

#: Checkpoint key holding the qualified name of the task class that saved it.
TASK_KEY = "lrr_task"


class CheckpointError(ValueError):
    """A file that cannot be loaded as a checkpoint of the requested task."""


def task_name(cls: type) -> str:
    """``"module.QualName"`` of a class, as stored under :data:`TASK_KEY`."""
    return f"{cls.__module__}.{cls.__qualname__}"


def _describe(source: str | os.PathLike | IO[bytes]) -> str:
    return repr(str(source)) if isinstance(source, (str, os.PathLike)) else "the checkpoint"


def _where(source: Any) -> str:
    return "" if source is None else f" {_describe(source)}"


def read_checkpoint(source: str | os.PathLike | IO[bytes], map_location: Any = None,
                    ) -> dict[str, Any]:
    """``torch.load(source, weights_only=True)`` of a Lightning checkpoint, with clear errors.

    Raises ``FileNotFoundError`` for a missing file and :class:`CheckpointError` for a
    truncated or corrupted file, a file that is not a ``torch.save`` archive, a file holding
    pickled objects other than tensors and plain containers, or one that is not a Lightning
    checkpoint (a dict with ``state_dict``).

    Example::

        checkpoint = read_checkpoint("model.ckpt")
        checkpoint["hyper_parameters"]["vocab_size"]
    """
    name = _describe(source)
    is_path = isinstance(source, (str, os.PathLike))
    if isinstance(source, (str, os.PathLike)) and not Path(source).is_file():
        raise FileNotFoundError(f"no checkpoint file at {name}")
    try:  # a torch.save zip archive is memory-mapped: tensors are read only where used
        mmap = is_path and zipfile.is_zipfile(source)
        checkpoint = torch.load(source, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL (\S+)", str(error))
        if found is None:
            raise CheckpointError(f"{name} is not a checkpoint: neither a torch.save archive "
                                  "nor a pickle of tensors and plain data") from error
        raise CheckpointError(
            f"{name} holds a pickled {found.group(1)}, not only tensors and plain data; it is "
            "refused because unpickling it could run code (torch.load(weights_only=True)). "
            "Load it only if you trust it, then re-save it without such objects.") from error
    except Exception as error:  # torch reports a damaged file as anything from EOF to KeyError
        raise CheckpointError(f"{name} is truncated, corrupted or not a checkpoint "
                              f"({type(error).__name__}: {error})") from error
    if not isinstance(checkpoint, Mapping) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{name} is not a Lightning checkpoint: it holds "
                              f"{type(checkpoint).__name__} without a 'state_dict'")
    return dict(checkpoint)


def check_task(checkpoint: Mapping[str, Any], cls: type, source: Any = None) -> None:
    """Raise :class:`CheckpointError` unless ``checkpoint`` was saved by ``cls`` or one of its
    base classes (a subclass may load its parent's checkpoint, not the other way round).

    The saved class is compared by name only: nothing named in the file is imported.
    Checkpoints from before the class was recorded are checked by the class name the CLI
    stored, if any.
    """
    saved = checkpoint.get(TASK_KEY)
    if saved is not None:
        fits = saved in {task_name(base) for base in cls.__mro__}
    else:  # older checkpoints: the CLI's class_path (a public alias such as lrr.LanguageModel)
        hparams = checkpoint.get("hyper_parameters")
        saved = hparams.get("_class_path") if isinstance(hparams, Mapping) else None
        if saved is None:
            if "lrr" in checkpoint:
                return  # saved by a task before the class was recorded
            raise CheckpointError(f"the checkpoint{_where(source)} was not saved by a "
                                  f"lightning-rnn-reg task, so {cls.__name__} cannot load it")
        fits = str(saved).rpartition(".")[2] in {base.__qualname__ for base in cls.__mro__}
    if fits:
        return
    raise CheckpointError(f"the checkpoint{_where(source)} was saved by {saved}, not by "
                          f"{cls.__name__}: load it with that class")


class SafeCheckpoint(L.LightningModule):
    """Mixin: safe ``load_from_checkpoint``, and the task class recorded in and checked
    against every checkpoint. Subclasses that override the checkpoint hooks call
    ``super()``."""

    @classmethod
    def load_from_checkpoint(  # type: ignore[override]
        cls,
        checkpoint_path: str | os.PathLike | IO[bytes],
        map_location: Any = None,
        hparams_file: str | os.PathLike | None = None,
        strict: bool | None = None,
        weights_only: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Lightning's ``load_from_checkpoint``, reading plain data only
        (``torch.load(weights_only=True)``, so an untrusted file cannot run code) and first
        checking the file: a missing file is ``FileNotFoundError``; a corrupted or truncated
        file, one that is not a checkpoint, one with pickled objects, or a checkpoint of
        another task class is :class:`CheckpointError`.

        Example::

            model = lrr.LanguageModel.load_from_checkpoint("lm.ckpt", map_location="cpu")
        """
        if weights_only:
            position = checkpoint_path.tell() if hasattr(checkpoint_path, "tell") else None
            check_task(read_checkpoint(checkpoint_path, map_location="cpu"), cls,
                       checkpoint_path)
            if position is not None:  # it has tell(): a file object
                cast(IO[bytes], checkpoint_path).seek(position)
        # Lightning annotates paths as str | Path, but takes any os.PathLike (it opens them
        # with fsspec / torch.load)
        return super().load_from_checkpoint(
            checkpoint_path, map_location, hparams_file,  # type: ignore[arg-type]
            strict, weights_only=weights_only, **kwargs)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record the task class (by name) that saved the checkpoint."""
        super().on_save_checkpoint(checkpoint)
        checkpoint[TASK_KEY] = task_name(type(self))

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Refuse a checkpoint of another task class (e.g. ``Trainer.test(ckpt_path=...)`` of
        a tagger's checkpoint with a language model)."""
        check_task(checkpoint, type(self))
        super().on_load_checkpoint(checkpoint)
