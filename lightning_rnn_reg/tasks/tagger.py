"""SequenceTagger: word (+ character, + capitalization) features -> regularized BiLSTM -> tags.

Per token ``t``: ``x_t = [E w_t ; c_t ; K caps_t]`` with ``c_t`` the character BiLSTM
features of the word (Lample et al. 2016: last forward and last backward state), then a stack
of bidirectional LSTMs run with the sentence lengths (padding never reaches a state or an
output) and a linear layer to tag scores ``s_t = W h_t + b``. Training minimises the mean
token cross-entropy ``-(1/N) sum_t log softmax(s_t)[y_t]`` over the non-padding tokens.

Decoding never outputs an invalid tag sequence: ``"viterbi"`` finds the best path of the
per-token log-probabilities under the transition constraints of IOBES
(:func:`~lightning_rnn_reg.tasks.decoding.viterbi_decode`; no CRF is trained); ``"argmax"``
takes each token's best tag and repairs the sequence the way conlleval reads it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lightning_rnn_reg.data.tagging import (
    CAPS_CLASSES,
    IGNORE_INDEX,
    TaggingBatch,
    TaggingVocabulary,
)
from lightning_rnn_reg.metrics.span_f1 import SpanF1
from lightning_rnn_reg.rnn import LSTM
from lightning_rnn_reg.tag_schemes import (
    INTERNAL_SCHEME,
    allowed_transitions,
    spans,
    tags_from_spans,
)
from lightning_rnn_reg.tasks.base import RecurrentTask, RegularizerArg
from lightning_rnn_reg.tasks.decoding import viterbi_decode
from lightning_rnn_reg.tasks.optim import check_optimization

__all__ = ["DECODERS", "CharBiLSTM", "SequenceTagger"]

DECODERS = ("viterbi", "argmax")


def _uniform_init(embedding: nn.Embedding) -> None:
    """``U(-sqrt(3/d), sqrt(3/d))`` (unit-variance-per-vector scale, Lample et al. 2016)."""
    bound = math.sqrt(3.0 / embedding.embedding_dim)
    nn.init.uniform_(embedding.weight, -bound, bound)
    if embedding.padding_idx is not None:
        with torch.no_grad():
            embedding.weight[embedding.padding_idx].zero_()


class CharBiLSTM(nn.Module):
    """Character features of each word (Lample et al. 2016): a BiLSTM over its characters,
    ``[h_fwd at the last character ; h_bwd at the first]``.

    Shapes: ``chars (B, T, W)`` (id ``0`` is padding, words left-aligned) -> ``(B, T, 2H)``;
    zeros at padding tokens. Only the real words run, each with its own length, so the
    features of a word do not depend on the batch around it.

    Example::

        chars = CharBiLSTM(num_chars=80, embedding_dim=25, hidden_size=25)
        features = chars(torch.randint(1, 80, (2, 7, 12)))   # (2, 7, 50)
    """

    def __init__(self, num_chars: int, embedding_dim: int = 25, hidden_size: int = 25) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_chars, embedding_dim, padding_idx=0)
        _uniform_init(self.embedding)
        self.rnn = LSTM(embedding_dim, hidden_size, bidirectional=True, batch_first=True)
        self.output_size = 2 * hidden_size

    def forward(self, chars: Tensor) -> Tensor:
        word_lengths = (chars != 0).sum(-1)
        present = word_lengths > 0
        out = self.embedding.weight.new_zeros(*chars.shape[:2], self.output_size)
        if bool(present.any()):
            _, (h_n, _) = self.rnn(self.embedding(chars[present]), lengths=word_lengths[present])
            out = out.index_put((present,), torch.cat([h_n[0], h_n[1]], dim=-1))
        return out


class SequenceTagger(RecurrentTask):
    """Regularized BiLSTM tagger for named-entity recognition (CoNLL-2003; Semeniuta 2016's
    NER setup; character features as Lample et al. 2016).

    ``tokens (B, T) -> Embedding(V, E) [+EmbeddingDropout] (; CharBiLSTM ; caps Embedding) ->
    input dropouts -> num_layers bidirectional lrr.LSTM (between-layer dropouts; recurrent
    and weight regularizers inside) -> output dropouts -> Linear(2H, num_tags)``.
    Everything is ``batch_first``. Loss: mean token cross-entropy (padding, tag ``-100``,
    ignored), plus AR / TAR (on valid positions) and fraternal dropout when given.

    The tag set, its scheme (IOBES) and the vocabularies arrive with the data
    (:meth:`set_vocabulary`; done in :meth:`setup` from a data module with a
    ``vocabulary_state()`` method such as :class:`~lightning_rnn_reg.data.conll.CoNLL2003`)
    and are saved in checkpoints, so a loaded model tags raw text (:meth:`tag`) without data.
    Validation and test log ``{split}/loss``, ``{split}/f1`` (conlleval span F1, a fraction),
    ``{split}/precision``, ``{split}/recall`` and ``{split}/f1_<TYPE>``.

    Args:
        vocab_size: words in the vocabulary (from the data).
        num_tags: tags of the inner IOBES scheme (from the data).
        char_vocab_size: characters in the character vocabulary (from the data; ``0``: no
            character features).
        embedding_dim: word embedding size.
        hidden_size: LSTM units per direction.
        num_layers: stacked BiLSTM layers.
        char_embedding_dim: character embedding size.
        char_hidden_size: character BiLSTM units per direction.
        use_caps: add an embedding of the capitalization class.
        caps_dim: size of that embedding.
        regularizers: regularizer objects (or ``class_path`` specs).
        optimizer: ``"sgd"`` or ``"adam"`` (see :mod:`lightning_rnn_reg.tasks.optim`).
        lr: learning rate.
        momentum: SGD momentum.
        weight_decay: L2 weight decay of the optimizer.
        lr_schedule: see :mod:`lightning_rnn_reg.tasks.optim`; ``"plateau"`` watches
            ``val/f1`` (max).
        lr_decay: divisor of the learning rate at each decay.
        lr_decay_start: epochs kept at ``lr`` before the ``"zaremba"`` decay starts.
        decode: ``"viterbi"`` (constrained best path) or ``"argmax"`` (greedy, repaired).

    Override points: :meth:`make_layer`, :meth:`features`, :meth:`encode`, :meth:`head`,
    :meth:`compute_loss`.

    Example::

        model = SequenceTagger(vocab_size=20000, num_tags=17, char_vocab_size=85,
                               use_caps=True, regularizers=[lrr.LockedDropout(0.5)])
        scores = model(batch.tokens, batch.lengths, batch.chars, batch.caps)  # (B, T, 17)
    """

    plateau_monitor = ("val/f1", "max")

    # IOBES constraints for Viterbi decoding: buffers registered by set_vocabulary
    start_allowed: Tensor
    transitions_allowed: Tensor
    end_allowed: Tensor

    def __init__(
        self,
        vocab_size: int,
        num_tags: int,
        embedding_dim: int = 100,
        hidden_size: int = 100,
        num_layers: int = 1,
        char_vocab_size: int = 0,
        char_embedding_dim: int = 25,
        char_hidden_size: int = 25,
        use_caps: bool = False,
        caps_dim: int = 4,
        regularizers: Sequence[RegularizerArg] | None = None,
        optimizer: str = "adam",
        lr: float = 1e-3,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        lr_schedule: str = "none",
        lr_decay: float = 1.0,
        lr_decay_start: int = 0,
        decode: str = "viterbi",
        nonfinite_guard: bool = True,
    ) -> None:
        super().__init__(regularizers, nonfinite_guard)
        name = type(self).__name__
        check_optimization(name, optimizer, lr_schedule, lr, lr_decay)
        self.check_sizes(vocab_size=vocab_size, num_tags=num_tags, embedding_dim=embedding_dim,
                         hidden_size=hidden_size, num_layers=num_layers,
                         char_embedding_dim=char_embedding_dim,
                         char_hidden_size=char_hidden_size, caps_dim=caps_dim)
        if char_vocab_size < 0:
            raise ValueError(f"{name}: char_vocab_size must be >= 0, got {char_vocab_size}")
        if decode not in DECODERS:
            raise ValueError(f"{name}: decode must be one of {DECODERS}, got {decode!r}")
        self.save_task_hyperparameters()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        _uniform_init(self.embedding)
        self.char_encoder = (CharBiLSTM(char_vocab_size, char_embedding_dim, char_hidden_size)
                             if char_vocab_size else None)
        self.caps_embedding = nn.Embedding(CAPS_CLASSES, caps_dim) if use_caps else None
        if self.caps_embedding is not None:
            _uniform_init(self.caps_embedding)
        input_size = (embedding_dim + (2 * char_hidden_size if char_vocab_size else 0)
                      + (caps_dim if use_caps else 0))
        sizes = [input_size] + [2 * hidden_size] * (num_layers - 1)
        self.rnns = nn.ModuleList(self.make_layer(size, hidden_size, self.layer_regularizers())
                                  for size in sizes)
        self.classifier = nn.Linear(2 * hidden_size, num_tags)
        self.vocabulary: TaggingVocabulary | None = None
        self.val_f1: SpanF1 | None = None  # built by set_vocabulary, for its tag set
        self.test_f1: SpanF1 | None = None
        self.check_regularizers_apply(num_layers)

    # ----------------------------------------------------------------------- vocabulary
    def set_vocabulary(self, state: dict[str, Any] | TaggingVocabulary) -> None:
        """Adopt the data's vocabularies and tag set (plain-data state or object): builds the
        decoding constraints and the F1 metrics. Raises ``ValueError`` if sizes differ."""
        vocabulary = (state if isinstance(state, TaggingVocabulary)
                      else TaggingVocabulary.from_state(state))
        hp = self.hparams
        chars = vocabulary.chars
        for arg, size in (("vocab_size", len(vocabulary.words)),
                          ("num_tags", len(vocabulary.tag_names)),
                          ("char_vocab_size", len(chars) if chars is not None else 0)):
            if hp[arg] != size:
                raise ValueError(f"{type(self).__name__}: {arg}={hp[arg]} but the data's "
                                 f"vocabulary gives {size}")
        if self.vocabulary is not None and vocabulary == self.vocabulary:
            return
        self.vocabulary = vocabulary
        for key, mask in zip(("start_allowed", "transitions_allowed", "end_allowed"),
                             allowed_transitions(vocabulary.tag_names, INTERNAL_SCHEME),
                             strict=True):
            self.register_buffer(key, mask.to(self.device), persistent=False)
        self.val_f1 = SpanF1(vocabulary.tag_names).to(self.device)
        self.test_f1 = SpanF1(vocabulary.tag_names).to(self.device)

    def _require_vocabulary(self) -> TaggingVocabulary:
        if self.vocabulary is None:
            raise RuntimeError(
                f"{type(self).__name__} has no tag set yet: train or evaluate it with a data "
                "module that has vocabulary_state() (e.g. CoNLL2003), load it from a "
                "checkpoint, or call set_vocabulary(...)")
        return self.vocabulary

    def setup(self, stage: str) -> None:
        """Take the vocabularies from the trainer's data module (checking a loaded model's)."""
        super().setup(stage)
        vocabulary = self._data_vocabulary()
        if vocabulary is not None:
            self._check_same(self.vocabulary, vocabulary)
            self.set_vocabulary(vocabulary)

    def _data_vocabulary(self) -> TaggingVocabulary | None:
        datamodule = self._datamodule()
        get_state = getattr(datamodule, "vocabulary_state", None)
        return TaggingVocabulary.from_state(get_state()) if callable(get_state) else None

    def _check_same(self, held: TaggingVocabulary | None, data: TaggingVocabulary | None,
                    ) -> None:
        if held is not None and data is not None and held != data:
            raise ValueError(f"{type(self).__name__}: the data module's vocabularies differ "
                             "from the model's (it was trained on other data or options)")

    # ---------------------------------------------------------------- override points
    def make_layer(self, input_size: int, hidden_size: int, regularizers: list) -> nn.Module:
        """One bidirectional, ``batch_first`` recurrent layer that accepts ``lengths=``."""
        return LSTM(input_size, hidden_size, bidirectional=True, batch_first=True,
                    regularizers=regularizers)

    def features(self, tokens: Tensor, chars: Tensor | None = None,
                 caps: Tensor | None = None) -> Tensor:
        """Per-token input ``(B, T, F)``: word embedding (with EmbeddingDropout), character
        features and capitalization embedding, concatenated."""
        edrop = self.embedding_dropout
        if edrop is not None and not edrop.batch_first:
            parts = [self.embed(self.embedding, tokens.t()).transpose(0, 1)]
        else:
            parts = [self.embed(self.embedding, tokens)]
        for module, extra, arg in ((self.char_encoder, chars, "chars"),
                                   (self.caps_embedding, caps, "caps")):
            if module is not None:
                if extra is None:
                    raise ValueError(f"{type(self).__name__} was built to use {arg}; pass them")
                parts.append(module(extra))
        return torch.cat(parts, dim=-1)

    def encode(self, tokens: Tensor, lengths: Tensor, chars: Tensor | None = None,
               caps: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(raw last-layer output, dropped output)``, both ``(B, T, 2H)``, zero at padding."""
        x = self.drop_input(self.features(tokens, chars, caps), batch_first=True)
        for index, rnn in enumerate(self.rnns):
            if index > 0:
                x = self.drop_between(x, batch_first=True)
            x, _ = rnn(x, lengths=lengths)
        return x, self.drop_output(x, batch_first=True)

    def head(self, features: Tensor) -> Tensor:
        """``(B, T, 2H)`` -> tag scores ``(B, T, num_tags)``."""
        return self.classifier(features)

    def forward(self, tokens: Tensor, lengths: Tensor, chars: Tensor | None = None,
                caps: Tensor | None = None) -> Tensor:
        """Tag scores (logits) ``(B, T, num_tags)``."""
        return self.head(self.encode(tokens, lengths, chars, caps)[1])

    def compute_loss(self, batch: TaggingBatch) -> tuple[Tensor, dict[str, Tensor]]:
        """Training objective of a batch: ``(loss, logged terms)``."""
        inputs = (batch.tokens, batch.lengths, batch.chars, batch.caps)
        raw, dropped = self.encode(*inputs)
        scores = self.head(dropped)
        mask = batch.tags != IGNORE_INDEX
        terms = self.prediction_terms(scores, lambda: self.head(self.encode(*inputs)[1]),
                                      lambda z: self._ce(z, batch.tags), lambda z: z[mask])
        if self.activation_regularization is not None:
            terms["ar"] = self.activation_regularization(dropped, mask)
        tar = self.temporal_activation_regularization
        if tar is not None:
            assert isinstance(mask, Tensor)  # the batch has tags (_ce above raises without)
            terms["tar"] = (tar(raw, mask) if tar.batch_first
                            else tar(raw.transpose(0, 1), mask.t()))
        return cast(Tensor, sum(terms.values())), terms  # never empty: 'ce' is in it

    @staticmethod
    def _ce(scores: Tensor, tags: Tensor | None, reduction: str = "mean") -> Tensor:
        if tags is None:
            raise ValueError("SequenceTagger: the batch has no tags")
        return F.cross_entropy(scores.reshape(-1, scores.shape[-1]).float(), tags.reshape(-1),
                               ignore_index=IGNORE_INDEX, reduction=reduction)

    # ------------------------------------------------------------------------ decoding
    def decode(self, scores: Tensor, lengths: Tensor) -> Tensor:
        """Tag ids ``(B, T)`` (``-100`` at padding), valid IOBES for every sentence."""
        vocabulary = self._require_vocabulary()
        if self.hparams["decode"] == "viterbi":
            return viterbi_decode(scores.float().log_softmax(-1), lengths, self.start_allowed,
                                  self.transitions_allowed, self.end_allowed, IGNORE_INDEX)
        ids = scores.argmax(-1).masked_fill(
            torch.arange(scores.shape[1], device=scores.device) >= lengths.to(
                scores.device).unsqueeze(1), IGNORE_INDEX)
        for row, length in enumerate(lengths.tolist()):
            tags = [vocabulary.tag_names[i] for i in ids[row, :length].tolist()]
            fixed = tags_from_spans(spans(tags), length, INTERNAL_SCHEME)
            ids[row, :length] = torch.tensor([vocabulary.tag_ids[t] for t in fixed])
        return ids

    def tag(self, sentences: Sequence[Sequence[str]], scheme: str | None = None,
            batch_size: int = 64) -> list[list[str]]:
        """Tag raw tokenized sentences; tags in ``scheme`` (default: the scheme the training
        data was declared in, e.g. IOB1 for CoNLL-2003). Runs in eval mode, no gradients.

        Example::

            model.tag([["EU", "rejects", "German", "call"]])  # [['I-ORG', 'O', 'I-MISC', 'O']]
        """
        vocabulary = self._require_vocabulary()
        results: list[list[str]] = [[] for _ in sentences]
        order = [index for index, tokens in enumerate(sentences) if len(tokens) > 0]
        with self.evaluating():
            for first in range(0, len(order), batch_size):
                chunk = order[first:first + batch_size]
                batch = vocabulary.batch([sentences[i] for i in chunk])
                for index, tags in zip(chunk, self._predict(batch, scheme), strict=True):
                    results[index] = tags
        return results

    def _predict(self, batch: TaggingBatch, scheme: str | None) -> list[list[str]]:
        vocabulary = self._require_vocabulary()
        batch = TaggingBatch._make(t.to(self.device) if t is not None else None for t in batch)
        ids = self.decode(self(batch.tokens, batch.lengths, batch.chars, batch.caps),
                          batch.lengths)
        return [vocabulary.decode_tags(row[:length], scheme)
                for row, length in zip(ids.cpu(), batch.lengths.tolist(), strict=True)]

    # ----------------------------------------------------------------------- training
    def training_step(self, batch: TaggingBatch, batch_idx: int) -> Tensor:
        loss, terms = self.compute_loss(batch)
        self.log_training(loss, terms, batch_size=batch.tokens.shape[0])
        return loss

    def _span_f1(self, split: str) -> SpanF1:
        metric = self.val_f1 if split == "val" else self.test_f1
        if metric is None:
            self._require_vocabulary()  # raises: no tag set, no metric
        return cast(SpanF1, metric)

    def eval_step(self, batch: TaggingBatch, split: str) -> Tensor:
        self._require_vocabulary()
        scores = self(batch.tokens, batch.lengths, batch.chars, batch.caps)
        count = int(batch.lengths.sum())
        nll = self._ce(scores, batch.tags, reduction="sum")
        assert batch.tags is not None  # _ce raises without tags
        self.log(f"{split}/loss", nll / count, sync_dist=True, batch_size=count)
        metric = self._span_f1(split)
        metric.update(self.decode(scores, batch.lengths), batch.tags, batch.lengths)
        self.log(f"{split}/f1", metric, prog_bar=split == "val", batch_size=count)
        return nll

    def _log_breakdown(self, split: str) -> None:
        """Micro precision / recall and per-type F1 (synced) of the epoch."""
        if self._trainer is not None and self.trainer.sanity_checking:
            return
        metric = self._span_f1(split)
        scores = metric.scores()  # already summed over ranks: the same value on every rank
        values = {f"{split}/precision": scores["micro"]["precision"],
                  f"{split}/recall": scores["micro"]["recall"],
                  **{f"{split}/f1_{kind}": scores[kind]["f1"] for kind in metric.types}}
        self.log_dict(values, sync_dist=True)

    def on_validation_epoch_end(self) -> None:
        self._log_breakdown("val")
        super().on_validation_epoch_end()

    def on_test_epoch_end(self) -> None:
        self._log_breakdown("test")
        super().on_test_epoch_end()

    def predict_step(self, batch: Any, batch_idx: int) -> list[list[str]]:
        """Tag strings (the data's declared scheme) of a :class:`TaggingBatch`, or of raw
        tokenized sentences (a list of lists of strings)."""
        if isinstance(batch, TaggingBatch):
            return self._predict(batch, None)
        return self.tag(batch)

    # -------------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        vocabulary = self.vocabulary
        checkpoint["lrr"]["vocabulary"] = vocabulary.to_state() if vocabulary else None

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("lrr", {}).get("vocabulary")
        if state is not None:
            vocabulary = TaggingVocabulary.from_state(state)
            if not self.data_adopts_checkpoint(checkpoint):
                self._check_same(vocabulary, self._data_vocabulary())
            self.set_vocabulary(vocabulary)
