"""Language-modelling corpora cut into truncated-BPTT batches (Zaremba 2014; Merity 2017).

One concept a module; every public name is importable from here, as it was when this package
was one module (LightningCLI configs name ``lightning_rnn_reg.data.language_modeling.X``):

- :mod:`~lightning_rnn_reg.data.language_modeling.bptt`: :class:`LMBatch`, :func:`batchify`,
  the fixed and variable (AWD-LSTM) windows, their dataset and samplers;
- :mod:`~lightning_rnn_reg.data.language_modeling.text`: :func:`read_corpus` (corpus files) and
  :func:`text_to_tokens` / :func:`tokens_to_text` (raw text);
- :mod:`~lightning_rnn_reg.data.language_modeling.corpus`: the :class:`TextCorpus` data module;
- :mod:`~lightning_rnn_reg.data.language_modeling.presets`: :class:`PennTreebank`,
  :class:`PennTreebankChar`, :class:`WikiText2`, :class:`WikiText2Sample`.
"""

from lightning_rnn_reg.data.language_modeling.bptt import (
    BPTTSampler,
    BPTTStreams,
    LMBatch,
    VariableBPTTSampler,
    batchify,
    bptt_windows,
    variable_bptt_windows,
)
from lightning_rnn_reg.data.language_modeling.corpus import TextCorpus
from lightning_rnn_reg.data.language_modeling.presets import (
    PennTreebank,
    PennTreebankChar,
    WikiText2,
    WikiText2Sample,
)
from lightning_rnn_reg.data.language_modeling.text import (
    WORD_BOUNDARY,
    read_corpus,
    text_to_tokens,
    tokens_to_text,
)

__all__ = [
    "WORD_BOUNDARY",
    "BPTTSampler",
    "BPTTStreams",
    "LMBatch",
    "PennTreebank",
    "PennTreebankChar",
    "TextCorpus",
    "VariableBPTTSampler",
    "WikiText2",
    "WikiText2Sample",
    "batchify",
    "bptt_windows",
    "read_corpus",
    "text_to_tokens",
    "tokens_to_text",
    "variable_bptt_windows",
]
