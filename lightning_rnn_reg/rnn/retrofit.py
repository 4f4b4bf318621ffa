"""Retrofitting existing models: ``regularize`` swaps ``nn.LSTM`` / ``nn.GRU`` submodules for
``lrr.LSTM`` / ``lrr.GRU`` in place, ``to_torch`` swaps them back for deployment.

Both keep the very same ``nn.Parameter`` objects: an optimizer built before the swap keeps
updating the weights, ``state_dict`` keys and values do not change (a checkpoint of the
regularized model loads into the plain one and back; regularizers hold no state), and the
module keeps its train/eval mode. The new layer is built on the meta device, so no weights
are allocated only to be thrown away.

Which layers (``include``): every recurrent layer by default; otherwise those whose
qualified module name (as in ``model.named_modules()``, e.g. ``"encoder.rnn"``,
``"layers.0"``) matches one of the given :func:`fnmatch.fnmatchcase` patterns. An exact name
is a pattern; ``*`` matches any characters, dots included (``"encoder.*"`` is every layer
under ``encoder``). A pattern that matches no recurrent layer (``nn.LSTM``, ``nn.GRU``,
``lrr.LSTM``, ``lrr.GRU``) is a ``ValueError``. Layers that already are ``lrr.LSTM`` /
``lrr.GRU`` are left alone (so applying ``regularize`` twice changes nothing).
"""

from __future__ import annotations

import copy
import fnmatch
import inspect
from collections.abc import Sequence
from typing import Any, TypeVar, cast

from torch import nn
from torch.nn.utils import parametrize

from lightning_rnn_reg.regularizers.base import RecurrentSiteRegularizer, Regularizer
from lightning_rnn_reg.rnn.layers import GRU, LSTM

__all__ = ["regularize", "to_torch"]

M = TypeVar("M", bound=nn.Module)

#: Instance attribute set on the layers :func:`regularize` built (the ``Regularize``
#: callback tells a second ``setup`` from a model whose layers were lrr layers from the start).
RETROFIT_MARK = "_lrr_retrofitted"

_TORCH_KINDS: tuple[tuple[type[nn.RNNBase], type[LSTM] | type[GRU]], ...] = (
    (nn.LSTM, LSTM), (nn.GRU, GRU))
_LRR_KINDS = (LSTM, GRU)
_HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def regularize(
    model: M,
    regularizers: Sequence[Regularizer],
    *,
    include: str | Sequence[str] | None = None,
) -> M:
    """Replace, in place, every ``nn.LSTM`` / ``nn.GRU`` submodule of ``model`` (or those
    whose name matches ``include``) with an ``lrr.LSTM`` / ``lrr.GRU`` of the same
    configuration that runs ``regularizers``.

    Args:
        model: any ``nn.Module`` holding ``nn.LSTM`` / ``nn.GRU`` submodules. A model that
            is itself an ``nn.LSTM`` / ``nn.GRU`` cannot be replaced in place: ``TypeError``
            (build ``lrr.LSTM(...)`` directly).
        regularizers: regularizer objects; every replaced layer gets its own
            ``copy.deepcopy`` of them (so rates can be scheduled per layer, and the objects
            passed here are not used by any layer). An empty list swaps without
            regularizers (the same numbers as before).
        include: ``None`` (every recurrent layer), or a module name / ``fnmatch`` pattern, or
            a sequence of them (see the module docstring); a pattern matching no recurrent
            layer is a ``ValueError``.

    Returns:
        ``model`` itself. Each new layer holds the old layer's ``Parameter`` objects (same
        ``state_dict`` keys and values, optimizers keep working) and its train/eval mode.
        ``nn.LSTM``'s ``dropout`` and ``proj_size`` are passed on when non-zero (a
        ``ValueError`` if this version of ``lrr.LSTM`` does not take them). Subclasses of
        ``nn.LSTM`` / ``nn.GRU``, layers with forward / backward hooks and parametrized layers
        are refused with a ``ValueError``: their extra behavior would be lost.

    Raises:
        TypeError: ``model`` is not a module or is itself a recurrent layer; a regularizer is
            not a ``lightning_rnn_reg`` ``Regularizer``.
        ValueError: no recurrent layer in ``model``; a pattern matching none; a regularizer
            the layer cannot run (the layer's message, prefixed with the submodule name).
            Nothing is replaced when any layer fails.

    Example::

        model = MyTagger()                              # holds self.encoder = nn.LSTM(...)
        lrr.regularize(model, [lrr.LockedDropout(0.3, at="input"), lrr.WeightDrop(0.5)])
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)  # before or after: same
    """
    regularize_layers(model, regularizers, include)
    return model


def regularize_layers(
    model: nn.Module,
    regularizers: Sequence[Regularizer],
    include: str | Sequence[str] | None = None,
) -> list[str]:
    """:func:`regularize`, returning the names of the layers it replaced (``[]`` when every
    selected layer already was an lrr layer)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"regularize: model must be an nn.Module, got {type(model).__name__}")
    if isinstance(model, (nn.LSTM, nn.GRU, *_LRR_KINDS)):
        raise TypeError(
            f"regularize replaces submodules in place; the model is itself a "
            f"{_kind_name(model)} and cannot be replaced: build lightning_rnn_reg."
            f"{'GRU' if isinstance(model, (nn.GRU, GRU)) else 'LSTM'}(...) with the "
            "regularizers directly, or put the layer inside a container module")
    regs = check_regularizers(regularizers, "regularize")
    patterns = check_include(include, "regularize")
    names = _select(model, patterns, "regularize")
    torch_layers = dict(_named(model, (nn.LSTM, nn.GRU)))
    plan: dict[int, nn.Module] = {}
    replaced: list[str] = []
    for name in names:
        old = torch_layers.get(name)
        if old is None or id(old) in plan:  # an lrr layer (left alone), or shared: done
            continue
        plan[id(old)] = _to_lrr(name, old, regs)
        replaced.append(name)
    _swap(model, plan)
    return replaced


def to_torch(model: nn.Module) -> nn.Module:
    """Replace, in place, every ``lrr.LSTM`` / ``lrr.GRU`` of ``model`` with a plain
    ``nn.LSTM`` / ``nn.GRU`` holding the same ``Parameter`` objects: the eval-mode numbers
    without any regularizer (``nn.LSTM``'s own ``dropout`` is 0), e.g. for deployment or
    export. WeightDrop's eval weight is the raw ``U`` and every dropout's eval is the
    identity, so those convert; ``Zoneout`` with a non-zero rate is refused, since its eval
    rule ``c_t = p c_{t-1} + (1 - p) c~_t`` is no ``nn.LSTM``.

    Args:
        model: a module holding ``lrr.LSTM`` / ``lrr.GRU`` layers, or one such layer, for
            which a **new** ``nn.LSTM`` / ``nn.GRU`` is returned (a module cannot replace
            itself in place).

    Returns:
        ``model`` (or the new layer), in the mode it was in. ``model.eval()`` outputs equal
        those of the lrr model in eval mode.

    Raises:
        ValueError: no ``lrr.LSTM`` / ``lrr.GRU`` in ``model``; a layer holds a non-zero
            ``Zoneout`` (named); nothing is replaced then.

    Example::

        lrr.to_torch(model).eval()
        torch.save(model.state_dict(), "deploy.pt")   # loads into the original nn.LSTM model
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"to_torch: model must be an nn.Module, got {type(model).__name__}")
    if isinstance(model, _LRR_KINDS):
        return _to_torch_layer("the model", model)
    layers = _named(model, _LRR_KINDS)
    if not layers:
        raise ValueError(f"to_torch: {type(model).__name__} holds no lightning_rnn_reg LSTM "
                         "or GRU layer")
    plan: dict[int, nn.Module] = {}
    for name, layer in layers:
        if id(layer) not in plan:
            plan[id(layer)] = _to_torch_layer(repr(name), cast("LSTM | GRU", layer))
    _swap(model, plan)
    return model


def retrofitted(model: nn.Module, include: str | Sequence[str] | None = None) -> bool:
    """Whether a layer selected by ``include`` was built by :func:`regularize`."""
    names = set(_select(model, check_include(include, "retrofitted"), "retrofitted"))
    return any(getattr(layer, RETROFIT_MARK, False)
               for name, layer in _named(model, _LRR_KINDS) if name in names)


# ------------------------------------------------------------------------------ checks
def check_regularizers(regularizers: Sequence[Regularizer], who: str) -> list[Regularizer]:
    """``regularizers`` as a list, or ``TypeError`` (a single object, a non-Regularizer)."""
    if isinstance(regularizers, (Regularizer, str, bytes)) or not isinstance(
            regularizers, (Sequence, nn.ModuleList)):
        raise TypeError(f"{who}: regularizers must be a list of lightning_rnn_reg Regularizer "
                        f"objects, got {type(regularizers).__name__}")
    regs = list(regularizers)
    for index, reg in enumerate(regs):
        if not isinstance(reg, Regularizer):
            raise TypeError(f"{who}: regularizers[{index}] must be a lightning_rnn_reg "
                            f"Regularizer (e.g. lrr.LockedDropout(0.3)), got "
                            f"{type(reg).__name__}")
    return regs


def check_include(include: str | Sequence[str] | None, who: str) -> list[str] | None:
    """``include`` as a list of patterns (``None``: every layer), or ``TypeError`` /
    ``ValueError``."""
    if include is None:
        return None
    patterns = [include] if isinstance(include, str) else include
    if not isinstance(patterns, Sequence) or isinstance(patterns, bytes):
        raise TypeError(f"{who}: include must be a module name or pattern, a list of them, "
                        f"or None; got {type(include).__name__}")
    patterns = list(patterns)
    if not patterns:
        raise ValueError(f"{who}: include is empty; give None for every recurrent layer")
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            raise TypeError(f"{who}: include patterns must be non-empty strings, got "
                            f"{pattern!r}")
    return patterns


def _named(model: nn.Module, kinds: tuple[type[nn.Module], ...]
           ) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` for every module of ``kinds``, shared modules under every name."""
    return [(name, module) for name, module in model.named_modules(remove_duplicate=False)
            if isinstance(module, kinds) and module is not model]


def _select(model: nn.Module, patterns: list[str] | None, who: str) -> list[str]:
    recurrent = [name for name, _ in _named(model, (nn.LSTM, nn.GRU, *_LRR_KINDS))]
    if not recurrent:
        raise ValueError(f"{who}: {type(model).__name__} holds no nn.LSTM or nn.GRU "
                         "submodule")
    if patterns is None:
        return recurrent
    chosen: list[str] = []
    for pattern in patterns:
        matched = [name for name in recurrent if fnmatch.fnmatchcase(name, pattern)]
        if not matched:
            raise ValueError(f"{who}: include pattern {pattern!r} matches no recurrent layer "
                             f"of {type(model).__name__}; its recurrent layers: {recurrent}")
        chosen += [name for name in matched if name not in chosen]
    return chosen


def _kind_name(module: nn.Module) -> str:
    if isinstance(module, _LRR_KINDS):
        return f"lightning_rnn_reg.{type(module).__name__}"
    cls = type(module)
    return "nn." + cls.__name__ if cls.__module__.startswith("torch.") else cls.__qualname__


# ------------------------------------------------------------------------- the swaps
def _to_lrr(name: str, old: nn.Module, regs: list[Regularizer]) -> nn.Module:
    torch_kind, lrr_kind = next(pair for pair in _TORCH_KINDS if isinstance(old, pair[0]))
    if type(old) is not torch_kind:
        raise ValueError(
            f"regularize: {name!r} is a {type(old).__qualname__}, a subclass of "
            f"nn.{torch_kind.__name__}; only nn.LSTM / nn.GRU themselves are replaced (a "
            "subclass's own behavior would be lost); leave it out with include=")
    _check_plain(repr(name), old, "regularize")
    rnn = old  # an nn.LSTM / nn.GRU now
    kwargs: dict[str, Any] = {}
    accepted = inspect.signature(lrr_kind).parameters
    extras: list[tuple[str, float]] = [("dropout", float(rnn.dropout))]
    if torch_kind is nn.LSTM:
        extras.append(("proj_size", int(rnn.proj_size)))
    for option, value in extras:
        if not value:
            continue
        if option not in accepted:
            hint = (f"build it with dropout=0 and pass lrr.Dropout({value}, at='between') "
                    "among the regularizers instead" if option == "dropout" else
                    "leave it out with include=")
            raise ValueError(
                f"regularize: {name!r} is an nn.{torch_kind.__name__} with {option}={value}, "
                f"which this version of lightning_rnn_reg.{lrr_kind.__name__} does not take; "
                f"{hint}")
        kwargs[option] = value
    weight = next(rnn.parameters())  # weight_ih_l0: the dtype and device of the layer
    try:
        new = lrr_kind(
            rnn.input_size, rnn.hidden_size, rnn.num_layers, bias=rnn.bias,
            batch_first=rnn.batch_first, bidirectional=rnn.bidirectional,
            regularizers=[copy.deepcopy(reg) for reg in regs], device="meta",
            dtype=weight.dtype, **kwargs)
    except (ValueError, TypeError) as error:
        raise type(error)(f"regularize: {name!r}: {error}") from error
    _adopt_parameters(repr(name), new, rnn)
    new.regularizers.to(weight.device)  # regularizers hold no tensors today; cheap if so
    new.train(rnn.training)
    setattr(new, RETROFIT_MARK, True)
    return new


def _to_torch_layer(name: str, layer: LSTM | GRU) -> nn.RNNBase:
    for reg in layer.regularizers:
        if isinstance(reg, RecurrentSiteRegularizer) and not reg.eval_is_plain:
            raise ValueError(
                f"to_torch: {name} ({_kind_name(layer)}) holds {reg!r}: its eval rule "
                "(Zoneout: c_t = p c_{t-1} + (1 - p) c~_t, the same for h) has no nn.LSTM / "
                "nn.GRU equivalent; keep the lightning_rnn_reg layer for inference")
    _check_plain(name, layer, "to_torch")
    torch_kind = nn.LSTM if isinstance(layer, LSTM) else nn.GRU
    kwargs: dict[str, Any] = {}
    proj_size = int(getattr(layer, "proj_size", 0) or 0)
    if proj_size:
        kwargs["proj_size"] = proj_size
    weight = next(layer.parameters())  # weight_ih_l0
    new = torch_kind(layer.input_size, layer.hidden_size, layer.num_layers, bias=layer.bias,
                     batch_first=layer.batch_first, dropout=0.0,
                     bidirectional=layer.bidirectional, device="meta", dtype=weight.dtype,
                     **kwargs)
    _adopt_parameters(name, new, layer)
    new._init_flat_weights()  # the kernel's weight list (and its weak references) anew
    new.flatten_parameters()  # a no-op but on CUDA, where cuDNN wants one weight buffer
    new.train(layer.training)
    return new


def _check_plain(name: str, layer: nn.Module, who: str) -> None:
    if parametrize.is_parametrized(layer):
        raise ValueError(f"{who}: {name} has parametrizations (torch.nn.utils.parametrize), "
                         "which the replacement would not carry; remove them first")
    if any(getattr(layer, hooks, None) for hooks in _HOOKS):
        raise ValueError(f"{who}: {name} has forward or backward hooks, which the "
                         "replacement would not carry; remove them first (and register "
                         "them again on the new layer)")


def _adopt_parameters(name: str, new: nn.Module, old: nn.Module) -> None:
    """Give ``new`` (built on the meta device) the ``Parameter`` objects of ``old``."""
    old_params = dict(old.named_parameters(recurse=False))
    new_names = [key for key, _ in new.named_parameters(recurse=False)]
    if sorted(new_names) != sorted(old_params):
        raise ValueError(f"{name}: the replacement's parameters {new_names} differ from the "
                         f"layer's {list(old_params)}")
    for key in new_names:
        param = old_params[key]
        if tuple(param.shape) != tuple(getattr(new, key).shape):
            raise ValueError(f"{name}: parameter {key} has shape {tuple(param.shape)}, the "
                             f"replacement expects {tuple(getattr(new, key).shape)}")
        setattr(new, key, param)  # nn.RNNBase.__setattr__ also updates its _flat_weights


def _swap(model: nn.Module, plan: dict[int, nn.Module]) -> None:
    """Put ``plan[id(old)]`` wherever ``old`` is a child (every place of a shared layer)."""
    places = [name for name, module in model.named_modules(remove_duplicate=False)
              if id(module) in plan and module is not model]
    for name in places:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        current = getattr(parent, attr)
        if id(current) in plan:  # not yet replaced through another name of a shared parent
            setattr(parent, attr, plan[id(current)])
