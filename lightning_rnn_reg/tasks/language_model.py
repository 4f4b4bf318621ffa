"""LanguageModel: embedding -> regularized LSTM stack -> decoder, trained with truncated BPTT.

Next-token cross-entropy ``-(1/N) sum_t log p(w_{t+1} | w_{<=t})``; perplexity ``exp`` of it
(word level) or bits per character ``/ ln 2`` (char level). The hidden state is carried
across BPTT windows and detached (the module owns truncated BPTT: Lightning 2 has none),
one state per split, reset at the start of every epoch of that split.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_rnn_reg.metrics import BitsPerCharacter, Perplexity
from lightning_rnn_reg.mode import mc_dropout
from lightning_rnn_reg.rnn import LSTM
from lightning_rnn_reg.tasks.base import RecurrentTask, RegularizerArg
from lightning_rnn_reg.tasks.optim import OPTIMIZERS as BASE_OPTIMIZERS
from lightning_rnn_reg.tasks.optim import (
    check_optimization,
    make_optimizer,
    with_schedule,
)
from lightning_rnn_reg.tasks.rank_state import gather_per_rank

OPTIMIZERS = (*BASE_OPTIMIZERS, "nt_asgd")
LEVELS = ("word", "char")

State = Any  # per layer: (h, c) for LSTM, h for GRU


def detach_state(state: State) -> State:
    """Detach a (nested) hidden state from the graph (truncated BPTT)."""
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, (list, tuple)):
        return type(state)(detach_state(s) for s in state)
    return state


def flatten_state(state: State) -> dict[str, Tensor]:
    """A per-layer state ``[h_0 or (h_0, c_0), ...]`` as ``{"<layer>.<part>": tensor}``."""
    return {f"{layer}.{part}": tensor for layer, layer_state in enumerate(state)
            for part, tensor in enumerate(layer_state if isinstance(layer_state, (tuple, list))
                                          else (layer_state,))}


def unflatten_state(flat: dict[str, Tensor]) -> list[Any]:
    """The inverse of :func:`flatten_state` (two parts per layer: an ``(h, c)`` tuple)."""
    layers: dict[int, dict[int, Tensor]] = {}
    for key, tensor in flat.items():
        layer, part = (int(x) for x in key.split("."))
        layers.setdefault(layer, {})[part] = tensor
    parts = [[layers[layer][p] for p in sorted(layers[layer])] for layer in sorted(layers)]
    return [tuple(p) if len(p) > 1 else p[0] for p in parts]


def _batch_size(state: State) -> int:
    while not isinstance(state, Tensor):
        state = state[0]
    return state.shape[-2]


class LanguageModel(RecurrentTask):
    """Regularized LSTM language model (Zaremba 2014; Gal 2016; Merity 2017 AWD-LSTM).

    ``tokens (L, B) -> Embedding(V, E) [+EmbeddingDropout] -> input dropouts -> num_layers
    lrr.LSTM layers (between-layer dropouts; recurrent and weight regularizers inside) ->
    output dropouts -> Linear(., V)``. With ``tie_weights`` (Inan et al. 2017; Press & Wolf
    2017) the decoder reuses the embedding matrix and, when ``embedding_dim != hidden_size``,
    the last layer has ``embedding_dim`` units, as AWD-LSTM does.

    Loss: mean next-token cross-entropy, plus AR (on the dropped last-layer output), TAR (on
    the undropped one) and fraternal dropout (two passes) when given as regularizers.

    Optimizers: ``"sgd"``, ``"adam"``, ``"nt_asgd"`` (AWD-LSTM: SGD until the validation loss
    is worse than the best of more than ``nonmono`` evaluations ago, then averaged SGD;
    evaluation uses the averaged weights). Schedules: ``"zaremba"`` (divide by ``lr_decay``
    every epoch after ``lr_decay_start`` epochs), ``"plateau"`` (Semeniuta 2016: divide by
    ``lr_decay`` when the validation loss does not improve). Gradient clipping is the
    Trainer's ``gradient_clip_val``.

    Override points for subclasses: :meth:`make_layer` (the recurrent layer), :meth:`encode`,
    :meth:`head`, :meth:`compute_loss`.

    Example::

        model = LanguageModel(vocab_size=10000, embedding_dim=200, hidden_size=200,
                              num_layers=2, regularizers=[lrr.Dropout(0.5, at="output")])
        logits, state = model(torch.randint(0, 10000, (35, 20)))
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 400,
        hidden_size: int = 1150,
        num_layers: int = 3,
        tie_weights: bool = True,
        regularizers: Sequence[RegularizerArg] | None = None,
        level: str = "word",
        optimizer: str = "sgd",
        lr: float = 30.0,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        lr_schedule: str = "none",
        lr_decay: float = 1.0,
        lr_decay_start: int = 0,
        nonmono: int = 5,
        init_range: float | None = None,
        bptt: int | None = None,
        mc_samples: int = 0,
    ) -> None:
        super().__init__(regularizers)
        if level not in LEVELS:
            raise ValueError(f"LanguageModel: level must be one of {LEVELS}, got {level!r}")
        check_optimization("LanguageModel", optimizer, lr_schedule, lr, lr_decay, OPTIMIZERS)
        for name, value in (("vocab_size", vocab_size), ("embedding_dim", embedding_dim),
                            ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if value < 1:
                raise ValueError(f"LanguageModel: {name} must be >= 1, got {value}")
        if mc_samples < 0:
            raise ValueError(f"LanguageModel: mc_samples must be >= 0, got {mc_samples}")
        if nonmono < 1:
            raise ValueError(f"LanguageModel: nonmono must be >= 1, got {nonmono}")
        if optimizer == "nt_asgd" and lr_schedule != "none":
            raise ValueError("LanguageModel: optimizer='nt_asgd' takes no lr_schedule (the "
                             "switch to averaged SGD replaces the optimizer; AWD-LSTM uses a "
                             f"constant lr), got lr_schedule={lr_schedule!r}")
        self.save_task_hyperparameters()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        sizes = [hidden_size] * num_layers
        if tie_weights:
            sizes[-1] = embedding_dim
        inputs = [embedding_dim, *sizes[:-1]]
        self.rnns = nn.ModuleList(
            self.make_layer(i, h, self.layer_regularizers()) for i, h in zip(inputs, sizes,
                                                                             strict=True)
        )
        self.decoder = nn.Linear(sizes[-1], vocab_size)
        if tie_weights:
            self.decoder.weight = self.embedding.weight
        self._init_weights(init_range)
        metric = Perplexity if level == "word" else BitsPerCharacter
        self.val_metric = metric()
        self.test_metric = metric()
        self.metric_name = "ppl" if level == "word" else "bpc"
        self._states: dict[str, State] = {}
        self._resume_train_state: list[dict[str, Tensor]] | None = None
        self._val_losses: list[float] = []
        self._loaded_averages: dict[str, Tensor] = {}
        self.vocabulary_state: dict[str, Any] | None = None
        self.check_regularizers_apply(num_layers)

    # ---------------------------------------------------------------- override points
    def make_layer(self, input_size: int, hidden_size: int, regularizers: list) -> nn.Module:
        """One recurrent layer; override to use e.g. ``lrr.GRU``. Must return
        ``(output (L, B, H), state)`` and accept ``(input, state)``."""
        return LSTM(input_size, hidden_size, regularizers=regularizers)

    def encode(self, tokens: Tensor, state: State | None = None) -> tuple[Tensor, Tensor, State]:
        """``tokens (L, B)`` -> ``(raw last-layer output, dropped output, new state)``."""
        x = self.drop_input(self.embed(self.embedding, tokens))
        new_state = []
        for index, rnn in enumerate(self.rnns):
            if index > 0:
                x = self.drop_between(x)
            x, layer_state = rnn(x, None if state is None else state[index])
            new_state.append(layer_state)
        return x, self.drop_output(x), new_state

    def head(self, features: Tensor) -> Tensor:
        """Dropped features ``(L, B, H)`` -> logits ``(L, B, V)``."""
        return self.decoder(features)

    def forward(self, tokens: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """``tokens (L, B)`` -> ``(logits (L, B, V), new state)``."""
        _, dropped, new_state = self.encode(tokens, state)
        return self.head(dropped), new_state

    def compute_loss(self, tokens: Tensor, targets: Tensor, state: State | None
                     ) -> tuple[Tensor, dict[str, Tensor], State]:
        """Training objective on one window: ``(loss, logged terms, new state)``."""
        raw, dropped, new_state = self.encode(tokens, state)
        logits = self.head(dropped)
        terms = self.prediction_terms(logits, lambda: self.head(self.encode(tokens, state)[1]),
                                      lambda z: self._ce(z, targets))
        if self.activation_regularization is not None:
            terms["ar"] = self.activation_regularization(dropped)
        if self.temporal_activation_regularization is not None:
            terms["tar"] = self.temporal_activation_regularization(raw)
        loss = cast(Tensor, sum(terms.values()))  # never empty: 'ce' is in it
        return loss, terms, new_state

    # ------------------------------------------------------------------------ helpers
    def _init_weights(self, init_range: float | None) -> None:
        if init_range is not None:
            for weight in self.parameters():
                nn.init.uniform_(weight, -init_range, init_range)
            return
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)

    def _ce(self, logits: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    def _carried(self, split: str, batch: int) -> State | None:
        state = self._states.get(split)
        if state is not None and _batch_size(state) != batch:
            return None
        return state

    @staticmethod
    def _unpack(batch: Any) -> tuple[Tensor, Tensor]:
        if isinstance(batch, dict):
            return batch["inputs"], batch["targets"]
        if hasattr(batch, "inputs"):
            return batch.inputs, batch.targets
        return batch[0], batch[1]

    # ----------------------------------------------------------------------- training
    def setup(self, stage: str) -> None:
        """Check a loaded model's vocabulary against the data module's."""
        super().setup(stage)
        self.check_data_vocabulary(self.vocabulary_state)

    def on_fit_start(self) -> None:
        """Resume the carried training state of a checkpoint (mid-epoch resume continues
        the streams exactly), seed or resume the masks, adopt the data's vocabulary."""
        super().on_fit_start()
        states, self._resume_train_state = self._resume_train_state, None
        if states is not None and self.trainer.ckpt_path is not None and (
                len(states) == self.trainer.world_size):
            self._states["train"] = unflatten_state(
                {key: value.to(self.device) for key, value in
                 states[self.trainer.global_rank].items()})
        datamodule = getattr(self.trainer, "datamodule", None)
        vocab = getattr(datamodule, "vocab", None)
        if vocab is not None and hasattr(vocab, "to_state"):
            if len(vocab) != self.hparams["vocab_size"]:
                raise ValueError(
                    f"LanguageModel: vocab_size={self.hparams['vocab_size']} but the data's "
                    f"vocabulary has {len(vocab)} entries"
                )
            self.check_data_vocabulary(self.vocabulary_state)
            self.vocabulary_state = vocab.to_state()

    def on_train_epoch_start(self) -> None:
        self._states.pop("train", None)

    def on_validation_epoch_start(self) -> None:
        self._states.pop("val", None)
        self._swap_averaged_weights()

    def on_test_epoch_start(self) -> None:
        self._states.pop("test", None)
        self._swap_averaged_weights()

    def on_test_epoch_end(self) -> None:
        self._swap_averaged_weights()

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        tokens, targets = self._unpack(batch)
        state = self._carried("train", tokens.shape[1])
        loss, terms, new_state = self.compute_loss(tokens, targets, state)
        self._states["train"] = detach_state(new_state)
        self._scale_lr_for_window(tokens.shape[0])
        self.log("train/loss", loss, prog_bar=True)
        for name, value in terms.items():
            self.log(f"train/{name}", value)
        ce = terms["ce"].detach()
        value = ce.exp() if self.metric_name == "ppl" else ce / math.log(2.0)
        self.log(f"train/{self.metric_name}", value)
        self.log("lr", self._base_lr(), on_step=True, on_epoch=False)
        self.log_regularizer_rates()
        return loss

    def _eval_step(self, batch: Any, split: str) -> Tensor:
        tokens, targets = self._unpack(batch)
        state = self._carried(split, tokens.shape[1])
        samples = self.hparams["mc_samples"]
        if samples > 0:
            with mc_dropout():
                probs = None
                for sample in range(samples):
                    logits, sample_state = self(tokens, state)
                    p = logits.float().softmax(-1)
                    probs = p if probs is None else probs + p
                    if sample == 0:
                        new_state = sample_state
            log_probs = (probs / samples).clamp_min(1e-30).log()
            nll = F.nll_loss(log_probs.reshape(-1, log_probs.shape[-1]), targets.reshape(-1),
                             reduction="sum")
        else:
            logits, new_state = self(tokens, state)
            nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                  targets.reshape(-1), reduction="sum")
        self._states[split] = detach_state(new_state)
        metric = self.val_metric if split == "val" else self.test_metric
        metric.update(nll, targets.numel())
        self.log(f"{split}/loss", nll / targets.numel(), sync_dist=True,
                 batch_size=targets.numel())
        self.log(f"{split}/{self.metric_name}", metric, prog_bar=split == "val")
        return nll

    def validation_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._eval_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> Tensor:
        return self._eval_step(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor:
        """Next-token log-probabilities ``(L, B, V)`` with the carried state."""
        tokens, _ = self._unpack(batch) if not isinstance(batch, Tensor) else (batch, None)
        logits, new_state = self(tokens, self._carried("predict", tokens.shape[1]))
        self._states["predict"] = detach_state(new_state)
        return logits.log_softmax(-1)

    # --------------------------------------------------------------------- optimizers
    def configure_optimizers(self) -> Any:
        hp = self.hparams
        if hp["optimizer"] == "nt_asgd" and getattr(self, "_averaging", False):
            optimizer = self._asgd()
        else:
            name = "sgd" if hp["optimizer"] == "nt_asgd" else hp["optimizer"]
            optimizer = make_optimizer(self.parameters(), name, hp["lr"], hp["momentum"],
                                       hp["weight_decay"])
        return with_schedule(optimizer, hp["lr_schedule"], hp["lr_decay"], hp["lr_decay_start"])

    def _asgd(self) -> torch.optim.Optimizer:
        hp = self.hparams
        return torch.optim.ASGD(self.parameters(), lr=hp["lr"], t0=0, lambd=0.0,
                                weight_decay=hp["weight_decay"])

    def _torch_optimizer(self) -> torch.optim.Optimizer:
        """The torch optimizer (unwrapped from its ``LightningOptimizer``); this task has
        exactly one."""
        optimizer = self.optimizers()
        return cast(torch.optim.Optimizer, getattr(optimizer, "optimizer", optimizer))

    def _base_lr(self) -> float:
        optimizer = self._torch_optimizer()
        return float(getattr(self, "_window_base_lr", None) or optimizer.param_groups[0]["lr"])

    def _scale_lr_for_window(self, length: int) -> None:
        """Variable BPTT (Merity 2017): the step's lr is scaled by ``seq_len / bptt``."""
        bptt = self.hparams["bptt"]
        if not bptt:
            return
        optimizer = self._torch_optimizer()
        base = getattr(self, "_window_base_lr", None)
        if base is None:
            base = optimizer.param_groups[0]["lr"]
        self._window_base_lr = base
        for group in optimizer.param_groups:
            group["lr"] = base * length / bptt

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        base = getattr(self, "_window_base_lr", None)
        if base is not None:
            optimizer = self._torch_optimizer()
            for group in optimizer.param_groups:
                group["lr"] = base
            self._window_base_lr = None

    def on_validation_epoch_end(self) -> None:
        self._swap_averaged_weights()
        if (self.trainer.sanity_checking or self.trainer.state.fn != "fit"
                or self.hparams["optimizer"] != "nt_asgd"):
            return  # the non-monotone trigger watches the validations of fit only
        logged = self.trainer.callback_metrics.get("val/loss")
        if logged is None:
            return
        loss = float(logged)
        nonmono = self.hparams["nonmono"]
        history = self._val_losses
        if (not getattr(self, "_averaging", False) and len(history) > nonmono
                and loss > min(history[:-nonmono])):
            self._averaging = True
            self.trainer.strategy.optimizers = [self._asgd()]
            self.print(f"NT-ASGD: switching to averaged SGD at epoch {self.current_epoch}")
        history.append(loss)

    def _averages(self) -> dict[str, Tensor]:
        """NT-ASGD's running averages by parameter name: the optimizer's ``ax`` while it has
        them (fit), else the ones read from a checkpoint (evaluating a loaded model)."""
        trainer = self._trainer
        optimizers = trainer.optimizers if trainer is not None else []
        if optimizers:
            state = optimizers[0].state
            averages = {name: state[param]["ax"] for name, param in self.named_parameters()
                        if "ax" in state.get(param, {})}
            if averages:
                return averages
        return self._loaded_averages

    def _swap_averaged_weights(self) -> None:
        """With NT-ASGD averaging, exchange the live weights and their running average
        (called at the start and the end of evaluation)."""
        if not getattr(self, "_averaging", False) or self._trainer is None:
            return
        averages = self._averages()
        with torch.no_grad():
            for name, param in self.named_parameters():
                average = averages.get(name)
                if average is not None:
                    tmp = param.detach().clone()
                    param.copy_(average)
                    average.copy_(tmp)

    # -------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        carried = self._states.get("train")
        checkpoint["lrr"].update({
            "train_state": gather_per_rank(self, flatten_state(carried))
            if carried is not None else None,
            "vocabulary": self.vocabulary_state,
            "averaging": bool(getattr(self, "_averaging", False)),
            "val_losses": list(self._val_losses),
            "averaged_weights": {name: average.detach().cpu().clone()
                                 for name, average in self._averages().items()}
            if getattr(self, "_averaging", False) else {},
        })

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        extra = checkpoint.get("lrr", {})
        self._resume_train_state = extra.get("train_state")
        if not self.data_adopts_checkpoint(checkpoint):
            self.check_data_vocabulary(extra.get("vocabulary"))
        self.vocabulary_state = extra.get("vocabulary")
        self._averaging = extra.get("averaging", False)
        self._val_losses = list(extra.get("val_losses", []))
        self._loaded_averages = dict(extra.get("averaged_weights", {}))
