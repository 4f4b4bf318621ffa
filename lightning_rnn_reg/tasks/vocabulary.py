"""The data's token vocabulary, saved with a task so it works on raw text without the data.

:class:`VocabularyTask` holds it as plain data (``vocabulary_state``, the
:meth:`Vocabulary.to_state <lightning_rnn_reg.data.vocab.Vocabulary.to_state>`, saved in
``checkpoint["lrr"]["vocabulary"]``), adopts the data module's (checked: same size as the
model's ``vocab_size``, and the same as the one it already holds, or ids would mean other
tokens) and exposes it as :attr:`VocabularyTask.vocabulary`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lightning_rnn_reg.data.vocab import Vocabulary
from lightning_rnn_reg.tasks.base import RecurrentTask, RegularizerArg

__all__ = ["VocabularyTask"]


class VocabularyTask(RecurrentTask):
    """A :class:`~lightning_rnn_reg.tasks.base.RecurrentTask` with the data's vocabulary."""

    def __init__(self, regularizers: Sequence[RegularizerArg] | None = None,
                 nonfinite_guard: bool = True) -> None:
        super().__init__(regularizers, nonfinite_guard)
        self.vocabulary_state: dict[str, Any] | None = None
        self._vocabulary_cache: tuple[dict[str, Any], Vocabulary] | None = None

    @property
    def vocabulary(self) -> Vocabulary:
        """The training data's vocabulary, saved with the model (``vocabulary_state`` in the
        checkpoint): taken from the data module by a ``Trainer`` run, or set here.

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

    def check_data_vocabulary(self, held: dict[str, Any] | None, data: Any = None) -> None:
        """Raise ``ValueError`` if the vocabulary (``vocab``) of ``data`` (default: the
        trainer's data module) differs from ``held``, the :meth:`Vocabulary.to_state` of the
        model's: ids would mean other tokens. Nothing to check if either is missing."""
        if data is None:
            data = self._datamodule()
        vocab = getattr(data, "vocab", None)
        if held is None or not isinstance(vocab, Vocabulary):
            return
        if Vocabulary.from_state(held) != vocab:
            raise ValueError(f"{type(self).__name__}: the data's vocabulary differs from the "
                             "model's (it was trained on other data or with other vocabulary "
                             "options); ids would mean other tokens")

    def adopt_data_vocabulary(self, data: Any = None) -> None:
        """Take the ``vocab`` of ``data`` (default: the trainer's data module), if it has one:
        ``ValueError`` if its size is not the model's ``vocab_size`` or it differs from the
        vocabulary the model holds (:meth:`check_data_vocabulary`)."""
        if data is None:
            data = self._datamodule()
        vocab = getattr(data, "vocab", None)
        if vocab is None or not hasattr(vocab, "to_state"):
            return
        if len(vocab) != self.hparams["vocab_size"]:
            raise ValueError(f"{type(self).__name__}: vocab_size={self.hparams['vocab_size']} "
                             f"but the data's vocabulary has {len(vocab)} entries")
        self.check_data_vocabulary(self.vocabulary_state, data)
        self.vocabulary_state = vocab.to_state()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["lrr"]["vocabulary"] = self.vocabulary_state

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Take the checkpoint's vocabulary, checked against the data module's unless that
        restores its own from the checkpoint."""
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("lrr", {}).get("vocabulary")
        if not self.data_adopts_checkpoint(checkpoint):
            self.check_data_vocabulary(state)
        self.vocabulary_state = state
