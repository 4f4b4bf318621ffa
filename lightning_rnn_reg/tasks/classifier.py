"""SequenceClassifier: token ids -> regularized (bi)LSTM/GRU -> one pooled vector -> class.

``p(y | w_1..w_T) = softmax(W pool(h_1..h_T) + b)``, trained with the mean cross-entropy
``-(1/B) sum_b log p(y_b | x_b)``. Pooling over the valid steps only (padding never enters a
state nor a pool): ``last`` = the final state of a packed run (forward direction at the last
valid step, backward direction at step 0), ``max`` / ``mean`` = elementwise max / mean over
the valid steps of the last layer's output.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import Metric

from lightning_rnn_reg.data.batching import pad_sequences
from lightning_rnn_reg.data.tokenizer import tokenize
from lightning_rnn_reg.metrics.classification import MeanCrossEntropy, classification_metrics
from lightning_rnn_reg.regularizers import EmbeddingDropout, TemporalActivationRegularization
from lightning_rnn_reg.rnn import GRU, LSTM
from lightning_rnn_reg.tasks.base import RegularizerArg
from lightning_rnn_reg.tasks.optim import check_optimization
from lightning_rnn_reg.tasks.vocabulary import VocabularyTask

__all__ = ["CELLS", "POOLINGS", "SequenceClassifier"]

CELLS = ("lstm", "gru")
POOLINGS = ("last", "max", "mean")
_SPLITS = ("val", "test")
#: The fields of a classification batch (tokens required; lengths and labels may be missing).
FIELDS = ("tokens", "lengths", "labels")
#: ``_metrics_polar`` before the metrics are first built.
_UNBUILT = "unbuilt"


class SequenceClassifier(VocabularyTask):
    """Regularized recurrent sequence classifier (sentiment; synthetic tasks such as
    Temporal Order), after Gal & Ghahramani 2016 and Semeniuta et al. 2016.

    ``tokens (B, T) -> Embedding(V, E) [+EmbeddingDropout] -> input dropouts -> num_layers
    lrr.LSTM / lrr.GRU layers, bidirectional or not, run with lengths= (between-layer
    dropouts; recurrent and weight regularizers inside) -> pool -> output dropouts ->
    Linear(D * H, C)``. Internally time-major, the layout the regularizers default to
    (``EmbeddingDropout`` and ``TemporalActivationRegularization`` must keep
    ``batch_first=False``). Output-site dropouts act on the pooled ``(B, D * H)`` vector, one
    mask per example. Loss: cross-entropy, plus AR (on the dropped pooled vector), TAR (on
    the undropped last-layer output, padding excluded) and fraternal dropout (two passes).

    Metrics (torchmetrics, exact under DDP): ``{val,test}/acc``, ``/f1`` (macro), ``/loss``
    and, when the class names hold ``positive_class`` and ``negative_class``, ``/f1_pn``
    (SemEval's mean F1 of the two). Class names, vocabulary and tokenizer options come from
    the data module at :meth:`setup` (:meth:`adopt_data`; any object with ``vocab``,
    ``class_names``, ``tokenizer_options``), are saved with the model as plain data (class
    names and tokenizer options in the hyperparameters, the vocabulary in the checkpoint),
    so a loaded model can :meth:`classify` raw text without the data.

    Override points: :meth:`make_layer`, :meth:`encode`, :meth:`pool`, :meth:`head`,
    :meth:`compute_loss`. Optimizers and schedules: :mod:`lightning_rnn_reg.tasks.optim`.

    Example::

        model = SequenceClassifier(vocab_size=5000, num_classes=3, pooling="max",
                                   regularizers=[lrr.LockedDropout(0.3, at="input")])
        logits = model(torch.randint(0, 5000, (8, 20)), lengths=torch.full((8,), 20))
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embedding_dim: int = 100,
        hidden_size: int = 100,
        num_layers: int = 1,
        cell: str = "lstm",
        bidirectional: bool = True,
        pooling: str = "last",
        regularizers: Sequence[RegularizerArg] | None = None,
        optimizer: str = "adam",
        lr: float = 1e-3,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        lr_schedule: str = "none",
        lr_decay: float = 1.0,
        lr_decay_start: int = 0,
        init_range: float | None = None,
        class_names: Sequence[str] | None = None,
        positive_class: str | None = "positive",
        negative_class: str | None = "negative",
        tokenizer_options: dict[str, bool] | None = None,
        nonfinite_guard: bool = True,
    ) -> None:
        super().__init__(regularizers, nonfinite_guard)
        name = type(self).__name__
        check_optimization(name, optimizer, lr_schedule, lr, lr_decay)
        self.check_sizes(vocab_size=vocab_size, embedding_dim=embedding_dim,
                         hidden_size=hidden_size, num_layers=num_layers)
        if num_classes < 2:
            raise ValueError(f"{name}: num_classes must be >= 2, got {num_classes}")
        for arg, option, choices in (("cell", cell, CELLS), ("pooling", pooling, POOLINGS)):
            if option not in choices:
                raise ValueError(f"{name}: {arg} must be one of {choices}, got {option!r}")
        for reg in self.regularizers:
            if isinstance(reg, (EmbeddingDropout, TemporalActivationRegularization)) and (
                    reg.batch_first):
                raise ValueError(f"{name}: build {type(reg).__name__} with batch_first=False "
                                 "(the model runs time-major inside)")
        self.save_task_hyperparameters()
        self.hparams["class_names"] = self._checked_names(class_names)
        directions = 2 if bidirectional else 1
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        inputs = [embedding_dim] + [directions * hidden_size] * (num_layers - 1)
        self.rnns = nn.ModuleList(self.make_layer(size, hidden_size, self.layer_regularizers())
                                  for size in inputs)
        self.classifier = nn.Linear(directions * hidden_size, num_classes)
        self.init_weights(init_range, self.embedding, self.classifier)
        self._metrics_polar: tuple[int, int] | str | None = _UNBUILT
        self._build_metrics()
        self.check_regularizers_apply(num_layers)

    # ---------------------------------------------------------------- override points
    def make_layer(self, input_size: int, hidden_size: int, regularizers: list) -> nn.Module:
        """One recurrent layer (time-major, ``lengths=`` aware): ``lrr.LSTM`` or ``lrr.GRU``."""
        cls = LSTM if self.hparams["cell"] == "lstm" else GRU
        return cls(input_size, hidden_size, bidirectional=self.hparams["bidirectional"],
                   regularizers=regularizers)

    def encode(self, tokens: Tensor, lengths: Tensor | None = None
               ) -> tuple[Tensor, Tensor, Tensor]:
        """``tokens (B, T)``, ``lengths (B,)`` -> ``(raw last-layer output (T, B, D*H), valid
        mask (T, B), dropped pooled features (B, D*H))``."""
        batch, steps = tokens.shape
        if lengths is None:
            lengths = torch.full((batch,), steps, dtype=torch.long)
        x = self.drop_input(self.embed(self.embedding, tokens.t()))
        state: Any = None
        for index, rnn in enumerate(self.rnns):
            if index > 0:
                x = self.drop_between(x)
            x, state = rnn(x, lengths=lengths)
        mask = (torch.arange(steps, device=x.device).unsqueeze(1)
                < lengths.to(x.device).unsqueeze(0))
        features = self.pool(x, state, mask, lengths)
        return x, mask, self.drop_output(features.unsqueeze(0)).squeeze(0)

    def pool(self, output: Tensor, state: Any, mask: Tensor, lengths: Tensor) -> Tensor:
        """One vector per sequence ``(B, D*H)`` from the last layer's ``output (T, B, D*H)``
        and final ``state`` (``h_n`` ``(D, B, H)``, or ``(h_n, c_n)``), padding excluded."""
        pooling = self.hparams["pooling"]
        if pooling == "last":
            h_n = state[0] if isinstance(state, tuple) else state
            return h_n.transpose(0, 1).reshape(h_n.shape[1], -1)  # [forward, backward]
        valid = mask.unsqueeze(-1)
        if pooling == "max":
            return output.masked_fill(~valid, float("-inf")).amax(0)
        return (output * valid).sum(0) / lengths.to(output.device, output.dtype).unsqueeze(1)

    def head(self, features: Tensor) -> Tensor:
        """Dropped features ``(B, D*H)`` -> logits ``(B, C)``."""
        return self.classifier(features)

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``tokens (B, T)`` (padded after each sequence's ``lengths``) -> logits ``(B, C)``."""
        return self.head(self.encode(tokens, lengths)[2])

    def compute_loss(self, tokens: Tensor, lengths: Tensor | None, labels: Tensor
                     ) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """Training objective: ``(loss, logged terms, logits of the first pass)``."""
        raw, mask, dropped = self.encode(tokens, lengths)
        logits = self.head(dropped)
        terms = self.prediction_terms(logits, lambda: self.head(self.encode(tokens, lengths)[2]),
                                      lambda z: F.cross_entropy(z, labels))
        if self.activation_regularization is not None:
            terms["ar"] = self.activation_regularization(dropped)
        if self.temporal_activation_regularization is not None:
            terms["tar"] = self.temporal_activation_regularization(raw, mask)
        return cast(Tensor, sum(terms.values())), terms, logits  # never empty: 'ce' is in it

    # ------------------------------------------------------------ classes and vocabulary
    @property
    def class_names(self) -> list[str]:
        """Class names in index order (``"0"``, ``"1"``, ... until the data gives names)."""
        names = self.hparams["class_names"]
        return list(names) if names is not None else [
            str(i) for i in range(self.hparams["num_classes"])]

    def adopt_data(self, data: Any) -> None:
        """Take ``vocab``, ``class_names`` and ``tokenizer_options`` from a data module (those
        it has), checking them against the model's sizes and any names it already holds."""
        name = type(self).__name__
        self.adopt_data_vocabulary(data)
        for key, value in (("class_names", getattr(data, "class_names", None)),
                           ("tokenizer_options", getattr(data, "tokenizer_options", None))):
            if value is None:
                continue
            value = self._checked_names(value) if key == "class_names" else dict(value)
            held = self.hparams[key]
            if held is not None and held != value:
                raise ValueError(f"{name}: the model's {key} {held} differ from the data's "
                                 f"{value}")
            self.hparams[key] = value
        self._build_metrics()

    def classify(self, texts: Sequence[str], batch_size: int = 256) -> list[str]:
        """Class names of raw texts, tokenised as the training data was (eval mode, no grad).

        Example::

            model = SequenceClassifier.load_from_checkpoint("best.ckpt")
            model.classify(["What a great film!", "@x this is awful http://t.co/y"])
        """
        if isinstance(texts, str):
            raise TypeError("classify takes a list of texts, not one str")
        vocab = self.vocabulary
        options = self.hparams["tokenizer_options"] or {}
        ids = [vocab.encode(tokenize(text, **options) or [vocab.unk]) for text in texts]
        names, predictions = self.class_names, []
        with self.evaluating():
            for start in range(0, len(ids), batch_size):
                tokens, lengths = pad_sequences(ids[start : start + batch_size])
                predictions += self(tokens.to(self.device), lengths).argmax(-1).tolist()
        return [names[index] for index in predictions]

    # ----------------------------------------------------------------------- helpers
    def _checked_names(self, names: Sequence[str] | None) -> list[str] | None:
        if names is None:
            return None
        names = [str(n) for n in names]
        if len(names) != self.hparams["num_classes"] or len(set(names)) != len(names):
            raise ValueError(f"{type(self).__name__}: class_names must be num_classes="
                             f"{self.hparams['num_classes']} distinct names, got {names}")
        return names

    def _polar_classes(self) -> tuple[int, int] | None:
        names, hp = self.hparams["class_names"] or [], self.hparams
        if hp["positive_class"] in names and hp["negative_class"] in names:
            return names.index(hp["positive_class"]), names.index(hp["negative_class"])
        return None

    def _build_metrics(self) -> None:
        """Metrics per split; rebuilt only when the polar classes (``f1_pn``) change."""
        polar = self._polar_classes()
        if self._metrics_polar == polar:
            return
        self._metrics_polar = polar
        num_classes = self.hparams["num_classes"]
        self.metrics = nn.ModuleDict({
            split: nn.ModuleDict({**classification_metrics(num_classes, *(polar or (None, None))),
                                  "loss": MeanCrossEntropy()}) for split in _SPLITS})

    # ---------------------------------------------------------------------- training
    def setup(self, stage: str) -> None:
        """Adopt the data module's vocabulary, class names and tokenizer options."""
        super().setup(stage)
        datamodule = self._datamodule()
        if datamodule is not None:
            self.adopt_data(datamodule)

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        tokens, lengths, given = self.batch_fields(batch, FIELDS, 1)
        labels = cast(Tensor, given)  # training batches carry labels
        loss, terms, logits = self.compute_loss(tokens, lengths, labels)
        size = labels.numel()
        self.log_training(loss, terms, batch_size=size)
        self.log("train/acc", (logits.argmax(-1) == labels).float().mean(), batch_size=size)
        return loss

    def eval_step(self, batch: Any, split: str) -> Tensor:
        tokens, lengths, given = self.batch_fields(batch, FIELDS, 1)
        labels = cast(Tensor, given)  # evaluation batches carry labels
        logits = self(tokens, lengths)
        loss = F.cross_entropy(logits.float(), labels, reduction="sum")
        # self.metrics: split -> ModuleDict of torchmetrics Metrics (ModuleDict types as Module)
        metrics = cast(nn.ModuleDict, self.metrics[split])
        cast(Metric, metrics["loss"]).update(loss, labels.numel())
        predictions = logits.argmax(-1)
        for key, module in metrics.items():
            metric = cast(Metric, module)
            if key != "loss":
                metric.update(predictions, labels)
            self.log(f"{split}/{key}", metric, prog_bar=split == "val" and key == "acc")
        return loss / labels.numel()

    def predict_step(self, batch: Any, batch_idx: int) -> list[str]:
        """The predicted class names of a batch."""
        tokens, lengths, _ = self.batch_fields(batch, FIELDS, 1)
        names = self.class_names
        return [names[i] for i in self(tokens, lengths).argmax(-1).tolist()]
