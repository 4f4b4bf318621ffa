"""LanguageModel: embedding -> regularized LSTM stack -> decoder, trained with truncated BPTT.

Next-token cross-entropy ``-(1/N) sum_t log p(w_{t+1} | w_{<=t})``; perplexity ``exp`` of it
(word level) or bits per character ``/ ln 2`` (char level). The hidden state is carried
across BPTT windows and detached (the module owns truncated BPTT: Lightning 2 has none),
one state per split, reset at the start of every epoch of that split.

A trained model works on raw text with no data module (its vocabulary is saved with it):
:meth:`LanguageModel.perplexity` scores text, :meth:`LanguageModel.generate` continues a
prompt; both read text as the corpus reader does
(:func:`~lightning_rnn_reg.data.language_modeling.text_to_tokens`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_rnn_reg.data.language_modeling import (
    WORD_BOUNDARY,
    text_to_tokens,
    tokens_to_text,
)
from lightning_rnn_reg.data.vocab import EOS, Vocabulary
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
#: Tokens per forward pass when :meth:`LanguageModel.perplexity` reads a long text (the state
#: is carried from one window to the next, so the result does not depend on it).
TEXT_WINDOW = 256

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


def _draw(logits: Tensor, temperature: float, top_k: int | None,
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

    On text (no data module needed once trained or loaded): :attr:`vocabulary`,
    :meth:`perplexity`, :meth:`generate`; ``Trainer.predict`` on batches of strings scores
    them (:meth:`predict_step`).

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
        self._using_average = False  # the averaged NT-ASGD weights are in place
        self.vocabulary_state: dict[str, Any] | None = None
        self._vocabulary_cache: tuple[dict[str, Any], Vocabulary] | None = None
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

    # ----------------------------------------------------------------------- on text
    @property
    def vocabulary(self) -> Vocabulary:
        """The training data's vocabulary, saved with the model (``vocabulary_state`` in the
        checkpoint): taken from the data module at the start of a fit (or of any
        ``Trainer`` run if the model has none yet), or set here.

        Raises:
            RuntimeError: the model has none yet (never trained nor loaded, nor set).

        Example::

            model = LanguageModel.load_from_checkpoint("lm.ckpt")
            model.vocabulary.itos[:3]                     # ('<unk>', '<eos>', 'the')
            model.vocabulary = Vocabulary.build(lines)    # len() must equal vocab_size
        """
        state = self.vocabulary_state
        if state is None:
            raise RuntimeError(f"{type(self).__name__} has no vocabulary: train it with a data "
                               "module that has one (e.g. TextCorpus), load it from a "
                               "checkpoint, or set model.vocabulary = Vocabulary(...)")
        cached = self._vocabulary_cache
        if cached is None or cached[0] is not state:  # built once per state, not per text
            cached = self._vocabulary_cache = (state, Vocabulary.from_state(state))
        return cached[1]

    @vocabulary.setter
    def vocabulary(self, vocab: Vocabulary) -> None:
        if not isinstance(vocab, Vocabulary):
            raise TypeError(f"{type(self).__name__}.vocabulary must be a Vocabulary, got "
                            f"{type(vocab).__name__}")
        if len(vocab) != self.hparams["vocab_size"]:
            raise ValueError(f"{type(self).__name__}: vocab_size={self.hparams['vocab_size']} "
                             f"but the vocabulary has {len(vocab)} entries")
        self.vocabulary_state = vocab.to_state()

    def perplexity(self, texts: str | Sequence[str]) -> float:
        """Perplexity (word level) or bits per character (char level) of raw text: the
        model's validation metric (``metric_name``, ``"ppl"`` or ``"bpc"``) on that text.

        The text is read as a corpus file holding it would be
        (:func:`~lightning_rnn_reg.data.language_modeling.text_to_tokens`: each line ends
        with ``<eos>``; words split on whitespace, or characters with ``_`` between words;
        unknown tokens become ``<unk>``); the texts of a list are read one after another,
        as the lines of one file. The token
        stream ``w_1 .. w_N`` follows one ``<eos>`` (``w_0``, the end of a previous line), so
        every token is predicted once, with the state carried across the whole text::

            CE = -(1/N) sum_{t=1..N} log p(w_t | w_0 .. w_{t-1})
            ppl = exp(CE)          bpc = CE / ln 2

        Runs in eval mode (dropout off; ``mc_samples`` is not used), without gradients, with
        NT-ASGD's averaged weights when the model has them (as evaluation does), and then
        restores the train / eval mode.

        Raises:
            RuntimeError: the model has no :attr:`vocabulary`.
            ValueError: an empty list, or a vocabulary without ``<eos>``.
            TypeError: a text that is not a ``str``.

        Example::

            model = LanguageModel.load_from_checkpoint("lm.ckpt")
            model.perplexity("the cat sat on the mat")          # one text, one line
            model.perplexity(["first line", "second line"])   # one score for both
        """
        items = [texts] if isinstance(texts, str) else list(texts)
        if not items:
            raise ValueError(f"{type(self).__name__}.perplexity: no text given")
        for index, text in enumerate(items):
            if not isinstance(text, str):
                raise TypeError(f"{type(self).__name__}.perplexity takes a str or a sequence "
                                f"of str; item {index} is a {type(text).__name__}")
        vocab, eos = self._text_vocabulary()
        tokens = [EOS] + [token for text in items for token in self._tokens(text, vocab)]
        ids = vocab.encode(tokens).to(self.device)
        nll, state = 0.0, None
        with self._text_mode():
            for start in range(0, ids.numel() - 1, TEXT_WINDOW):
                targets = ids[start + 1 : start + 1 + TEXT_WINDOW]
                inputs = ids[start : start + targets.numel()]
                logits, state = self(inputs.unsqueeze(1), state)
                nll += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(),
                                             targets, reduction="sum"))
        mean = nll / (ids.numel() - 1)
        return math.exp(mean) if self.metric_name == "ppl" else mean / math.log(2.0)

    def generate(
        self,
        prompt: str,
        max_tokens: int = 50,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
        stop_at_eos: bool = True,
    ) -> str:
        """Sample a continuation of ``prompt``, token by token, and return it as raw text.

        The prompt is read as :meth:`perplexity` reads text (after one ``<eos>``; its lines
        ending with ``<eos>`` but the last, which the model continues; ``""`` starts a new
        line). Each next token is drawn from ``softmax(z / temperature)`` over the logits
        ``z``, restricted to the ``top_k`` largest when given (``top_k=1`` is greedy);
        ``temperature=0`` is greedy decoding (``argmax z``, no randomness). Draws come from a
        local ``torch.Generator`` seeded with ``seed`` (``None``: a fresh random seed), never
        from torch's global generator: the same seed gives the same text. Eval mode, no
        gradients, averaged NT-ASGD weights, mode restored, as in :meth:`perplexity`.

        The continuation is at most ``max_tokens`` tokens; with ``stop_at_eos`` it ends
        before the first ``<eos>`` drawn (so it is one line), else an ``<eos>`` is written as
        a newline. Words are joined by spaces (word level), characters concatenated with
        ``_`` read as a space (char level); ``<unk>`` may be drawn and is written as is.

        Raises:
            RuntimeError: the model has no :attr:`vocabulary`.
            ValueError: ``max_tokens < 0``, ``temperature < 0`` (or not finite), ``top_k < 1``.

        Example::

            model = LanguageModel.load_from_checkpoint("lm.ckpt")
            model.generate("the cat", max_tokens=20, temperature=0.8, top_k=40, seed=0)
            model.generate("the cat", temperature=0)          # greedy
        """
        name = f"{type(self).__name__}.generate"
        if not isinstance(prompt, str):
            raise TypeError(f"{name}: prompt must be a str, got {type(prompt).__name__}")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0:
            raise ValueError(f"{name}: max_tokens must be an integer >= 0, got {max_tokens!r}")
        if (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                or not math.isfinite(temperature) or temperature < 0):
            raise ValueError(f"{name}: temperature must be a finite number >= 0 (0: greedy), "
                             f"got {temperature!r}")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                                  or top_k < 1):
            raise ValueError(f"{name}: top_k must be an integer >= 1 or None, got {top_k!r}")
        vocab, eos = self._text_vocabulary()
        ids = vocab.encode([EOS, *self._tokens(prompt, vocab)[:-1]]).to(self.device)
        generator = torch.Generator()
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        drawn: list[int] = []
        with self._text_mode():
            logits, state = self(ids.unsqueeze(1))
            while len(drawn) < max_tokens:
                token = _draw(logits[-1, 0], temperature, top_k, generator)
                if stop_at_eos and token == eos:
                    break
                drawn.append(token)
                if len(drawn) < max_tokens:
                    logits, state = self(torch.tensor([[token]], device=self.device), state)
        return tokens_to_text(vocab.decode(drawn), self.hparams["level"],
                              word_boundary=self._boundary(vocab))

    def _text_vocabulary(self) -> tuple[Vocabulary, int]:
        """The vocabulary and its ``<eos>`` id (text is read with ``<eos>`` line ends)."""
        vocab = self.vocabulary
        if EOS not in vocab:
            raise ValueError(f"{type(self).__name__}: the vocabulary has no {EOS!r} token, "
                             "which ends every line of the text it reads")
        return vocab, vocab.stoi[EOS]

    @staticmethod
    def _boundary(vocab: Vocabulary) -> str | None:
        """The char-level word boundary: PTB-char's ``_`` if the vocabulary has it."""
        return WORD_BOUNDARY if WORD_BOUNDARY in vocab else None

    def _tokens(self, text: str, vocab: Vocabulary) -> list[str]:
        return text_to_tokens(text, self.hparams["level"], word_boundary=self._boundary(vocab))

    @contextmanager
    def _text_mode(self) -> Iterator[None]:
        """Eval mode, no gradients, averaged NT-ASGD weights; the mode restored after."""
        was_training = self.training
        self.eval()
        swapped = self._use_average(True)
        try:
            with torch.no_grad():
                yield
        finally:
            if swapped:
                self._use_average(False)
            self.train(was_training)

    def _use_average(self, on: bool) -> bool:
        """Put the averaged NT-ASGD weights in place (``on``) or the live ones back; whether
        it swapped (nothing to do without averages, or if they already are in place)."""
        if (not getattr(self, "_averaging", False) or self._using_average == on
                or not self._averages()):
            return False
        averages = self._averages()
        with torch.no_grad():
            for name, param in self.named_parameters():
                average = averages.get(name)
                if average is not None:
                    tmp = param.detach().clone()
                    param.copy_(average)
                    average.copy_(tmp)
        self._using_average = on
        return True

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
        """Check a loaded model's vocabulary against the data module's; a model without one
        takes the data module's (if its size is ``vocab_size``)."""
        super().setup(stage)
        self.check_data_vocabulary(self.vocabulary_state)
        vocab = getattr(self._datamodule(), "vocab", None)
        if (self.vocabulary_state is None and isinstance(vocab, Vocabulary)
                and len(vocab) == self.hparams["vocab_size"]):
            self.vocabulary_state = vocab.to_state()

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
        self._swap_averaged_weights(True)

    def on_test_epoch_start(self) -> None:
        self._states.pop("test", None)
        self._swap_averaged_weights(True)

    def on_test_epoch_end(self) -> None:
        self._swap_averaged_weights(False)

    def on_predict_epoch_start(self) -> None:
        self._states.pop("predict", None)
        self._swap_averaged_weights(True)

    def on_predict_epoch_end(self) -> None:
        self._swap_averaged_weights(False)

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

    def predict_step(self, batch: Any, batch_idx: int) -> Tensor | list[float]:
        """Raw texts (a ``str`` or a list of them, as :meth:`TextCorpus.predict_dataloader
        <lightning_rnn_reg.data.TextCorpus.predict_dataloader>` gives): the
        :meth:`perplexity` (bits per character at char level) of each text on its own, one
        float per text. Token windows (an :class:`~lightning_rnn_reg.data.LMBatch`, a tensor
        ``(L, B)``): next-token log-probabilities ``(L, B, V)`` with the carried state."""
        if isinstance(batch, str):
            batch = [batch]
        if isinstance(batch, (list, tuple)) and batch and all(isinstance(t, str) for t in batch):
            return [self.perplexity(text) for text in batch]
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
        self._swap_averaged_weights(False)
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

    def _swap_averaged_weights(self, on: bool) -> None:
        """With NT-ASGD averaging, put the running average of the weights in place (``on``,
        at the start of evaluation) or the live weights back (``on=False``, at its end)."""
        if self._trainer is not None:
            self._use_average(on)

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
