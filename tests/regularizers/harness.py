"""The regularizer registry and the one table the contract harnesses run from.

**Registry.** :func:`discover` walks ``lrr.Regularizer.__subclasses__()`` recursively (after
``import lightning_rnn_reg``) and keeps the *concrete* regularizers: the classes exported
from ``lightning_rnn_reg.__all__`` under their own name whose name does not start with
``_``. Everything else is a base (``ActivationDropoutBase``, ``RecurrentSiteRegularizer``,
``RecurrentRegularizer``, ...) or a test's own subclass (``tests/rnn`` defines some), and is
skipped. ``test_registry.py`` checks that a class the package defines but does not export is
a base of an exported one, so forgetting the export cannot hide a regularizer.

**Table.** :data:`CASES` holds, for every discovered class, how to build it with a rate and
how to call it (:class:`Case`). ``test_registry.py`` fails when a discovered class has no
entry (or an entry names no discovered class); ``test_base.py`` and ``test_contract.py`` run
every harness over every entry. Adding a regularizer means adding one entry here.

Recurrent-site regularizers are called through ``lrr.LSTM(..., regularizers=[reg])``; their
masks are read through :func:`recurrent_masks`, the one place that knows the name of the
method the layer asks them with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import lightning_rnn_reg as lrr

Inputs = tuple[Any, ...]

#: Layer sizes of the recurrent cases: input features, hidden units, steps, batch.
I, H, T, B = 4, 6, 5, 3
#: Elements of the large draw the mask statistics are measured on (per mask).
DRAW = 100_000


# --------------------------------------------------------------------------- registry
def _walk(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found.append(sub)
        found.extend(_walk(sub))
    return found


def all_subclasses() -> list[type[lrr.Regularizer]]:
    """Every subclass of ``lrr.Regularizer`` imported so far, bases and tests' own included."""
    return list(dict.fromkeys(_walk(lrr.Regularizer)))


def is_concrete(cls: type) -> bool:
    """The registry's rule: exported from ``lightning_rnn_reg.__all__`` under its own name,
    and not private."""
    name = cls.__name__
    return (not name.startswith("_") and name in lrr.__all__
            and getattr(lrr, name, None) is cls)


def discover() -> list[type[lrr.Regularizer]]:
    """The concrete regularizer classes, sorted by name."""
    return sorted((cls for cls in all_subclasses() if is_concrete(cls)),
                  key=lambda cls: cls.__name__)


def covered() -> list[type[lrr.Regularizer]]:
    """The discovered classes that have an entry in :data:`CASES` (the harnesses run on
    these; ``test_registry.py`` fails for the others, so none is skipped silently)."""
    return [cls for cls in discover() if cls.__name__ in CASES]


# ------------------------------------------------------------------------------ calls
def recurrent_masks(reg: lrr.Regularizer, steps: int, batch: int, hidden: int,
                    like: Tensor) -> dict[str, Tensor]:
    """The masks a recurrent-site regularizer hands the loop for one direction of one layer,
    as a plain dict of the fields it set (the one place that names the layer's method)."""
    return dict(reg.loop_masks(steps, batch, hidden, like))  # type: ignore[operator]


def _like() -> Tensor:
    return torch.empty(0, dtype=torch.float64)


def _sequence() -> Tensor:
    return torch.randn(T, B, I, dtype=torch.float64)


def _through_lstm(reg: lrr.Regularizer) -> Inputs:
    """A one-layer ``lrr.LSTM`` holding ``reg`` (in ``reg``'s mode), and an input."""
    layer = lrr.LSTM(I, H, regularizers=[reg]).double()
    layer.train(reg.training)
    return layer, _sequence()


def _run_layer(reg: lrr.Regularizer, inputs: Inputs) -> Tensor:
    layer, x = inputs
    return layer(x)[0]


def _plain_lstm(reg: lrr.Regularizer, inputs: Inputs) -> Tensor:
    """``nn.LSTM`` with the layer's weights: the eval rule of the dropouts in the recurrence."""
    layer, x = inputs
    plain = nn.LSTM(I, H).double()
    plain.load_state_dict(layer.state_dict())
    with torch.no_grad():
        return plain(x)[0]


def _zoneout_expectation(reg: lrr.Regularizer, inputs: Inputs) -> Tensor:
    """Krueger 2016's test time: ``c_t = z_c c_{t-1} + (1 - z_c) c~_t``, likewise ``h``, with
    ``h~_t = o * tanh(c~_t)`` (written out step by step, nn.LSTM's gate order)."""
    layer, x = inputs
    zc, zh = reg.rates["cell"], reg.rates["hidden"]
    bias = layer.bias_ih_l0 + layer.bias_hh_l0
    h = c = x.new_zeros(x.shape[1], H)
    outputs = []
    with torch.no_grad():
        for x_t in x:
            i, f, g, o = (x_t @ layer.weight_ih_l0.T + h @ layer.weight_hh_l0.T + bias).chunk(4, -1)
            c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h_new = torch.sigmoid(o) * torch.tanh(c_new)
            c, h = zc * c + (1 - zc) * c_new, zh * h + (1 - zh) * h_new
            outputs.append(h)
    return torch.stack(outputs)


def _recurrent_draw(reg: lrr.Regularizer) -> list[Tensor]:
    return list(recurrent_masks(reg, 1, 400, DRAW // 400, _like()).values())


def _zoneout_draw(reg: lrr.Regularizer) -> list[Tensor]:
    # d = 1 keeps the previous value: the new value's weight 1 - d is kept w.p. 1 - rate
    return [1.0 - d for d in _recurrent_draw(reg)]


def _embedding_inputs(reg: lrr.Regularizer) -> Inputs:
    return nn.Embedding(20, 4).double(), torch.randint(0, 20, (T, B))


def _embedding_draw(reg: lrr.Regularizer) -> list[Tensor]:
    vocab = 1000  # every sequence holds every word once: one independent draw per position
    embedding = nn.Embedding(vocab, 1).double()
    nn.init.ones_(embedding.weight)
    ids = torch.stack([torch.randperm(vocab) for _ in range(DRAW // vocab)], dim=1)
    return [reg(embedding, ids)[..., 0]]


def _fraternal_inputs(reg: lrr.Regularizer) -> Inputs:
    z1, z2 = torch.randn(2, T, B, 5, dtype=torch.float64)
    return z1, z2, torch.randint(0, 5, (T, B))


def _mean_ce(z1: Tensor, z2: Tensor, y: Tensor) -> Tensor:
    return 0.5 * (F.cross_entropy(z1.reshape(-1, 5), y.reshape(-1))
                  + F.cross_entropy(z2.reshape(-1, 5), y.reshape(-1)))


def _zero(reg: lrr.Regularizer, inputs: Inputs) -> Tensor:
    return torch.zeros((), dtype=torch.float64)


def _first_input(reg: lrr.Regularizer, inputs: Inputs) -> Tensor:
    return inputs[0]


def _tensor(shape: tuple[int, ...]) -> Callable[[lrr.Regularizer], Inputs]:
    return lambda reg: (torch.randn(shape, dtype=torch.float64),)


def _direct(reg: lrr.Regularizer, inputs: Inputs) -> Tensor:
    return reg(*inputs)


# ------------------------------------------------------------------------------ table
@dataclass(frozen=True)
class Case:
    """How the harnesses build and call one regularizer class.

    ``build(rate)`` returns an instance with every rate set to ``rate`` (other options at
    their defaults); ``inputs(reg)`` makes fresh inputs for it (a layer holding ``reg`` for
    the recurrent site), ``call(reg, inputs)`` is one use of it, a tensor. ``eval_rule`` and
    ``zero_rate`` are the values that call must give in eval mode and in train mode at rate 0.
    ``draw(reg)``, for classes that draw masks, gives large masks in the form of a dropout's
    multiplier (0 where dropped), each kept with probability ``1 - rate``, kept entries
    ``1 / (1 - rate)`` when ``scaled`` (inverted dropout) and ``1`` otherwise (zoneout).
    """

    build: Callable[[float], lrr.Regularizer]
    site: str
    inputs: Callable[[lrr.Regularizer], Inputs]
    eval_rule: Callable[[lrr.Regularizer, Inputs], Tensor]
    zero_rate: Callable[[lrr.Regularizer, Inputs], Tensor]
    call: Callable[[lrr.Regularizer, Inputs], Tensor] = _direct
    draw: Callable[[lrr.Regularizer], list[Tensor]] | None = None
    scaled: bool = True


def _loop_dropout(cls: Callable[[float], lrr.Regularizer]) -> Case:
    """A dropout inside the recurrence: eval and rate 0 are the plain LSTM."""
    return Case(build=cls, site="recurrent", inputs=_through_lstm, call=_run_layer,
                eval_rule=_plain_lstm, zero_rate=_plain_lstm, draw=_recurrent_draw)


CASES: dict[str, Case] = {
    "Dropout": Case(
        build=lambda p: lrr.Dropout(p), site="input", inputs=_tensor((T, B, I)),
        eval_rule=_first_input, zero_rate=_first_input,
        draw=lambda reg: [reg(torch.ones(2, 500, DRAW // 1000, dtype=torch.float64))]),
    "LockedDropout": Case(
        build=lambda p: lrr.LockedDropout(p), site="input", inputs=_tensor((T, B, I)),
        eval_rule=_first_input, zero_rate=_first_input,
        draw=lambda reg: [reg(torch.ones(3, 500, DRAW // 500, dtype=torch.float64))[0]]),
    "EmbeddingDropout": Case(
        build=lambda p: lrr.EmbeddingDropout(p), site="embedding", inputs=_embedding_inputs,
        eval_rule=lambda reg, inputs: inputs[0](inputs[1]),
        zero_rate=lambda reg, inputs: inputs[0](inputs[1]), draw=_embedding_draw),
    "WeightDrop": Case(
        build=lambda p: lrr.WeightDrop(p), site="weights", inputs=_tensor((4 * H, H)),
        eval_rule=_first_input, zero_rate=_first_input,
        draw=lambda reg: [reg(torch.ones(400, DRAW // 400, dtype=torch.float64))]),
    "RecurrentDropout": _loop_dropout(lambda p: lrr.RecurrentDropout(p)),
    "CellDropout": _loop_dropout(lambda p: lrr.CellDropout(p)),
    "UpdateDropout": _loop_dropout(lambda p: lrr.UpdateDropout(p)),
    "Zoneout": Case(
        build=lambda rate: lrr.Zoneout(cell=rate, hidden=rate), site="recurrent",
        inputs=_through_lstm, call=_run_layer, eval_rule=_zoneout_expectation,
        zero_rate=_plain_lstm, draw=_zoneout_draw, scaled=False),
    "ActivationRegularization": Case(
        build=lambda alpha: lrr.ActivationRegularization(alpha), site="loss",
        inputs=_tensor((T, B, H)), eval_rule=_zero, zero_rate=_zero),
    "TemporalActivationRegularization": Case(
        build=lambda beta: lrr.TemporalActivationRegularization(beta), site="loss",
        inputs=_tensor((T, B, H)), eval_rule=_zero, zero_rate=_zero),
    # The module has no eval switch: a task runs one pass at eval (tests/tasks); the objective
    # itself is the same in both modes.
    "FraternalDropout": Case(
        build=lambda kappa: lrr.FraternalDropout(kappa), site="loss", inputs=_fraternal_inputs,
        eval_rule=lambda reg, inputs: _mean_ce(*inputs) + reg.rates["kappa"] * (
            inputs[0] - inputs[1]).pow(2).mean(),
        zero_rate=lambda reg, inputs: _mean_ce(*inputs)),
}
