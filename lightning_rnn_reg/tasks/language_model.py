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
from collections.abc import Sequence
from typing import Any, cast

import lightning as L
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_rnn_reg.callbacks.nt_asgd import NTASGD
from lightning_rnn_reg.callbacks.variable_bptt import ScaleLRByWindow
from lightning_rnn_reg.data.language_modeling import (
    WORD_BOUNDARY,
    text_to_tokens,
    tokens_to_text,
)
from lightning_rnn_reg.data.vocab import EOS, Vocabulary
from lightning_rnn_reg.metrics import BitsPerCharacter, Perplexity
from lightning_rnn_reg.rnn import LSTM
from lightning_rnn_reg.tasks.base import RegularizerArg
from lightning_rnn_reg.tasks.lm_state import (
    State,
    batch_size_of,
    detach_state,
    flatten_state,
    unflatten_state,
)
from lightning_rnn_reg.tasks.optim import OPTIMIZERS as BASE_OPTIMIZERS
from lightning_rnn_reg.tasks.optim import check_optimization
from lightning_rnn_reg.tasks.rank_state import gather_per_rank, resumed_entry
from lightning_rnn_reg.tasks.sampling import check_sampling, draw_token, make_generator, mc_nll
from lightning_rnn_reg.tasks.vocabulary import VocabularyTask
from lightning_rnn_reg.validation import check_positive_int

__all__ = ["LEVELS", "OPTIMIZERS", "TEXT_WINDOW", "LanguageModel", "State", "detach_state",
           "flatten_state", "unflatten_state"]

OPTIMIZERS = (*BASE_OPTIMIZERS, "nt_asgd")
LEVELS = ("word", "char")
#: Tokens per forward pass when :meth:`LanguageModel.perplexity` reads a long text (the state
#: is carried from one window to the next, so the result does not depend on it).
TEXT_WINDOW = 256
#: The fields of a language-model batch (an LMBatch, a dict or an (inputs, targets) pair).
FIELDS = ("inputs", "targets")


class LanguageModel(VocabularyTask):
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
    evaluation uses the averaged weights: the model attaches a
    :class:`~lightning_rnn_reg.callbacks.NTASGD` callback, which can be given to the Trainer
    instead, with ``optimizer="sgd"``). ``bptt`` (variable-length BPTT) scales each step's
    lr by ``window length / bptt`` (it attaches a
    :class:`~lightning_rnn_reg.callbacks.ScaleLRByWindow`). Schedules: ``"zaremba"``
    (divide by ``lr_decay`` every epoch after ``lr_decay_start`` epochs), ``"plateau"``
    (Semeniuta 2016: divide by ``lr_decay`` when the validation loss does not improve).
    Gradient clipping is the Trainer's ``gradient_clip_val``.

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
        nonfinite_guard: bool = True,
    ) -> None:
        super().__init__(regularizers, nonfinite_guard)
        self.save_task_hyperparameters()
        self._check_hyperparameters()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        sizes = [hidden_size] * num_layers
        if tie_weights:
            sizes[-1] = embedding_dim
        inputs = [embedding_dim, *sizes[:-1]]
        self.rnns = nn.ModuleList(self.make_layer(i, h, self.layer_regularizers())
                                  for i, h in zip(inputs, sizes, strict=True))
        self.decoder = nn.Linear(sizes[-1], vocab_size)
        if tie_weights:
            self.decoder.weight = self.embedding.weight
        self.init_weights(init_range, self.embedding, self.decoder)
        metric = Perplexity if level == "word" else BitsPerCharacter
        self.val_metric = metric()
        self.test_metric = metric()
        self.metric_name = "ppl" if level == "word" else "bpc"
        self._states: dict[str, State] = {}
        self._resume_train_state: list[dict[str, Tensor]] | None = None
        self.check_regularizers_apply(num_layers)

    def _check_hyperparameters(self) -> None:
        hp = self.hparams
        if hp["level"] not in LEVELS:
            raise ValueError(f"LanguageModel: level must be one of {LEVELS}, got {hp['level']!r}")
        check_optimization("LanguageModel", hp["optimizer"], hp["lr_schedule"], hp["lr"],
                           hp["lr_decay"], OPTIMIZERS)
        self.check_sizes(**{name: hp[name] for name in ("vocab_size", "embedding_dim",
                                                        "hidden_size", "num_layers")})
        if hp["mc_samples"] < 0:
            raise ValueError(f"LanguageModel: mc_samples must be >= 0, got {hp['mc_samples']}")
        self.check_sizes(nonmono=hp["nonmono"])
        check_positive_int("LanguageModel", "bptt", hp["bptt"], allow_none=True)
        if hp["optimizer"] == "nt_asgd" and hp["lr_schedule"] != "none":
            raise ValueError("LanguageModel: optimizer='nt_asgd' takes no lr_schedule (the "
                             "switch to averaged SGD replaces the optimizer; AWD-LSTM uses a "
                             f"constant lr), got lr_schedule={hp['lr_schedule']!r}")

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
        with self.evaluating():
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
        check_sampling(name, prompt, max_tokens, temperature, top_k)
        vocab, eos = self._text_vocabulary()
        ids = vocab.encode([EOS, *self._tokens(prompt, vocab)[:-1]]).to(self.device)
        generator = make_generator(seed)
        drawn: list[int] = []
        with self.evaluating():
            logits, state = self(ids.unsqueeze(1))
            while len(drawn) < max_tokens:
                token = draw_token(logits[-1, 0], temperature, top_k, generator)
                if stop_at_eos and token == eos:
                    break
                drawn.append(token)
                if len(drawn) < max_tokens:
                    logits, state = self(ids.new_tensor([[token]]), state)
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

    # ----------------------------------------------------------------------- training
    def _ce(self, logits: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    def _carried(self, split: str, batch: int) -> State | None:
        state = self._states.get(split)
        if state is not None and batch_size_of(state) != batch:
            return None
        return state

    def default_callbacks(self) -> list[L.Callback]:
        """Besides the base's: :class:`~lightning_rnn_reg.callbacks.NTASGD` with
        ``optimizer="nt_asgd"``, :class:`~lightning_rnn_reg.callbacks.ScaleLRByWindow` with
        ``bptt``."""
        callbacks = super().default_callbacks()
        if self.hparams["optimizer"] == "nt_asgd":
            callbacks.append(NTASGD(self.hparams["nonmono"]))
        if self.hparams["bptt"]:
            callbacks.append(ScaleLRByWindow(self.hparams["bptt"]))
        return callbacks

    def optimizer_name(self) -> str:
        """``"nt_asgd"`` starts with plain SGD (the callback switches it to averaged SGD)."""
        name = str(self.hparams["optimizer"])
        return "sgd" if name == "nt_asgd" else name

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
        state = resumed_entry(self, self._resume_train_state)
        self._resume_train_state = None
        if state is not None:
            self._states["train"] = unflatten_state(
                {key: value.to(self.device) for key, value in state.items()})
        self.adopt_data_vocabulary()

    def on_train_epoch_start(self) -> None:
        self._states.pop("train", None)

    def on_validation_epoch_start(self) -> None:
        self._states.pop("val", None)
        super().on_validation_epoch_start()

    def on_test_epoch_start(self) -> None:
        self._states.pop("test", None)
        super().on_test_epoch_start()

    def on_predict_epoch_start(self) -> None:
        self._states.pop("predict", None)
        super().on_predict_epoch_start()

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        tokens, targets = self.batch_fields(batch, FIELDS, 2)
        state = self._carried("train", tokens.shape[1])
        loss, terms, new_state = self.compute_loss(tokens, targets, state)
        self._states["train"] = detach_state(new_state)
        self.log_training(loss, terms)
        ce = terms["ce"].detach()
        value = ce.exp() if self.metric_name == "ppl" else ce / math.log(2.0)
        self.log(f"train/{self.metric_name}", value)
        return loss

    def eval_step(self, batch: Any, split: str) -> Tensor:
        tokens, targets = self.batch_fields(batch, FIELDS, 2)
        state = self._carried(split, tokens.shape[1])
        if self.hparams["mc_samples"] > 0:
            nll, new_state = mc_nll(self, tokens, targets, state, self.hparams["mc_samples"])
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
        tokens = batch if isinstance(batch, Tensor) else self.batch_fields(batch, FIELDS, 2)[0]
        logits, new_state = self(tokens, self._carried("predict", tokens.shape[1]))
        self._states["predict"] = detach_state(new_state)
        return logits.log_softmax(-1)

    # -------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        carried = self._states.get("train")
        checkpoint["lrr"]["train_state"] = (gather_per_rank(self, flatten_state(carried))
                                            if carried is not None else None)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self._resume_train_state = checkpoint.get("lrr", {}).get("train_state")
