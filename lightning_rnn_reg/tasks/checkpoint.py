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
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import torch

__all__ = ["TASK_KEY", "CheckpointError", "check_task", "read_checkpoint", "task_name"]

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
