"""TextPredictionWriter: ``Trainer.predict`` of a language model on raw text, written to a file.

The data module's predict split gives the texts, one per line (:class:`~lightning_rnn_reg.data.
TextCorpus` with ``predict_file``, else its test file); the callback writes one output line per
input line, in order:

- ``mode="score"``: ``<score>\\t<text>`` (``%.6f``), the score being the model's perplexity
  (bits per character at char level) of the text on its own (what
  :meth:`LanguageModel.predict_step <lightning_rnn_reg.LanguageModel.predict_step>` returns);
- ``mode="generate"``: the continuation :meth:`LanguageModel.generate
  <lightning_rnn_reg.LanguageModel.generate>` samples for the text as a prompt, with the
  callback's sampling options; prompt ``i`` (0-based, in file order) is drawn with seed
  ``seed + i``, so a run is reproducible whatever the batch size. A newline inside a
  continuation (``stop_at_eos=False``) is written as `` <eos> ``, keeping one line per prompt.

Under data parallelism each rank writes the texts it was given to ``<output>.rank<r>``
(Lightning's distributed sampler deals them out, and may repeat a few to even out the ranks).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import lightning as L
from lightning.pytorch.callbacks import BasePredictionWriter

from lightning_rnn_reg.data.vocab import EOS

__all__ = ["PREDICTION_MODES", "TextPredictionWriter"]

#: What :class:`TextPredictionWriter` writes for each text.
PREDICTION_MODES = ("score", "generate")


class TextPredictionWriter(BasePredictionWriter):
    """Write a language model's predictions on raw text (scores or continuations), one line
    per input text, to ``output`` (see the module docstring for the formats).

    Args:
        output: the file to write (created with its folders; overwritten at each run).
        mode: ``"score"`` (``<perplexity or bpc>\\t<text>``) or ``"generate"`` (one sampled
            continuation per prompt).
        max_tokens: ``generate``: tokens per continuation at most.
        temperature: ``generate``: softmax temperature (``0``: greedy).
        top_k: ``generate``: sample among the ``top_k`` most likely tokens (``None``: all).
        seed: ``generate``: prompt ``i`` is drawn with seed ``seed + i`` (``None``: random).
        stop_at_eos: ``generate``: end a continuation before its first ``<eos>``.

    Example::

        writer = TextPredictionWriter("generated.txt", mode="generate", max_tokens=30, seed=0)
        data = TextCorpus("data/ptb", "ptb.train.txt", "ptb.valid.txt", "ptb.test.txt",
                          predict_file="prompts.txt")
        L.Trainer(callbacks=[writer]).predict(LanguageModel.load_from_checkpoint(ckpt), data)
    """

    def __init__(
        self,
        output: str | Path,
        mode: str = "score",
        max_tokens: int = 50,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = 0,
        stop_at_eos: bool = True,
    ) -> None:
        super().__init__(write_interval="batch")
        if mode not in PREDICTION_MODES:
            raise ValueError(f"TextPredictionWriter: mode must be one of {PREDICTION_MODES}, "
                             f"got {mode!r}")
        self.output = Path(output)
        self.mode = mode
        self.generate_options: dict[str, Any] = {
            "max_tokens": max_tokens, "temperature": temperature, "top_k": top_k,
            "stop_at_eos": stop_at_eos}
        self.seed = seed
        self._written = 0

    def path(self, trainer: L.Trainer) -> Path:
        """The file this process writes: ``output``, or ``<output>.rank<r>`` under data
        parallelism (``world_size > 1``).

        Example::

            TextPredictionWriter("out.txt").path(trainer)   # out.txt; out.txt.rank1 on rank 1
        """
        if trainer.world_size > 1:
            return self.output.with_name(f"{self.output.name}.rank{trainer.global_rank}")
        return self.output

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Check that the model works on text, and start the output file empty."""
        needs = "perplexity" if self.mode == "score" else "generate"
        if not callable(getattr(type(pl_module), needs, None)):
            raise TypeError(f"TextPredictionWriter(mode={self.mode!r}) needs a model with a "
                            f"{needs}() method (lightning_rnn_reg.LanguageModel), got "
                            f"{type(pl_module).__name__}")
        path = self.path(trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("", encoding="utf-8")
        self._written = 0

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Any,
        batch_indices: Sequence[int] | None,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        """Append one line per text of ``batch``."""
        texts = [batch] if isinstance(batch, str) else batch
        if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
            raise TypeError("TextPredictionWriter writes predictions on raw text: the predict "
                            "batches must be lists of str (e.g. TextCorpus(..., predict_file="
                            f"...)), got a {type(batch).__name__}")
        indices = list(batch_indices or [])
        if len(indices) != len(texts):  # no index-tracking sampler: count the texts seen
            indices = list(range(self._written, self._written + len(texts)))
        self._written += len(texts)
        if self.mode == "score":
            if not isinstance(prediction, (list, tuple)) or len(prediction) != len(texts):
                raise TypeError("TextPredictionWriter(mode='score'): predict_step must return "
                                "one score per text (LanguageModel.predict_step does)")
            lines = [f"{float(score):.6f}\t" + text.replace("\n", f" {EOS} ")
                     for score, text in zip(prediction, texts, strict=True)]
        else:
            generate = cast(Any, pl_module).generate  # checked at on_predict_start
            lines = [generate(text, seed=None if self.seed is None else self.seed + index,
                              **self.generate_options).replace("\n", f" {EOS} ")
                     for index, text in zip(indices, texts, strict=True)]
        with self.path(trainer).open("a", encoding="utf-8") as out:
            out.writelines(line + "\n" for line in lines)
