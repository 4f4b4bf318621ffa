"""TextCorpus: a language-modelling corpus (train / valid / test text files) as BPTT batches.

The training split fixes the :class:`~lightning_rnn_reg.data.vocab.Vocabulary`; the token
stream of each split (:func:`~lightning_rnn_reg.data.language_modeling.text.read_corpus`) is
encoded as one long sequence ``w_1 ... w_N`` and cut into windows
(:mod:`~lightning_rnn_reg.data.language_modeling.bptt`). The predict split is raw text, one
text per line.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
from torch import Tensor
from torch.utils.data import DataLoader

from lightning_rnn_reg.data.batching import SeededDataLoader, distributed_position
from lightning_rnn_reg.data.language_modeling.bptt import (
    BPTTSampler,
    BPTTStreams,
    LMBatch,
    VariableBPTTSampler,
    batchify,
)
from lightning_rnn_reg.data.language_modeling.text import check_level, read_corpus, tokens_to_text
from lightning_rnn_reg.data.readers import (
    DATA_ENV_VAR,
    DataSource,
    fetch_files,
    read_lines,
    report_unknown,
)
from lightning_rnn_reg.data.resume import TrainPosition
from lightning_rnn_reg.data.vocab import Vocabulary
from lightning_rnn_reg.validation import check_positive_ints

__all__ = ["TextCorpus"]

#: The package's logger (its name is the one the module had before it became a package).
log = logging.getLogger(__name__.rpartition(".")[0])


def _texts(items: list[str]) -> list[str]:
    """Collate a batch of raw texts: the list itself (module level: workers pickle it)."""
    return items


class TextCorpus(TrainPosition, L.LightningDataModule):
    """A language-modelling corpus (train / valid / test text files) as BPTT batches.

    Every batch is an :class:`LMBatch` ``(inputs, targets, seq_len, bptt, start)`` with
    ``inputs`` and ``targets`` of shape ``(L, B)`` (time-major); windows come in order, so a
    model carries its hidden state from one batch to the next (reset it when ``start == 0``).
    The vocabulary is built from the training file (``vocab``, ``vocab_size``; read on first
    use, so the CLI can link ``vocab_size`` to the model right after construction), unless
    one is given. Tokens of any split outside it become ``<unk>``; their share is logged once
    per split, as a warning above ``unknown_warning_threshold``.

    Under data parallelism each rank reads its own ``batch_size`` streams (:func:`batchify`);
    the samplers are distribution-aware, so Lightning leaves them in place. With
    ``variable_bptt`` the training loader has no length (it changes every epoch): give the
    ``Trainer`` integer ``limit_train_batches`` / ``val_check_interval`` if you set them.

    Prediction (``Trainer.predict``, ``lightning-rnn-reg predict``) reads raw text, one text
    per line (:meth:`predict_texts`): the lines of ``predict_file``, else those of the test
    file (at char level turned from the PTB-char spelling into plain text, see
    :func:`tokens_to_text`). Batches are lists of ``eval_batch_size`` strings, in file order;
    :meth:`LanguageModel.predict_step <lightning_rnn_reg.LanguageModel.predict_step>` scores
    them and :class:`~lightning_rnn_reg.callbacks.TextPredictionWriter` writes scores or
    generated continuations.

    Args:
        data_dir: folder holding the three files.
        train: training file name inside ``data_dir``.
        valid: validation file name inside ``data_dir``.
        test: test file name inside ``data_dir``.
        level: ``"word"`` (whitespace-separated words) or ``"char"`` (PTB-char format).
        batch_size: streams per rank for training (``B``).
        eval_batch_size: streams per rank for validation and test.
        bptt: window length ``L`` (the mean length with ``variable_bptt``).
        variable_bptt: draw training window lengths as AWD-LSTM does.
        min_count: training words seen fewer times are folded into ``<unk>``.
        download: fetch missing files from ``url`` (in :meth:`prepare_data`, or on first use).
        url: base URL holding the files by name, or a ``.zip`` / ``.tar.gz`` archive.
        vocab: use this vocabulary instead of building one from ``train``.
        num_workers: ``DataLoader`` worker processes (windows are cheap slices: 0 is fastest).
        seed: seed of the variable-BPTT lengths (the generator is seeded with seed + epoch).
        unknown_warning_threshold: share of unknown tokens in a split above which a warning
            is issued (an info log otherwise).
        predict_file: raw text to predict on, one text per line: a path (relative to the
            working directory, not to ``data_dir``); ``None``: the test file.

    Example:
        >>> dm = TextCorpus("data/ptb", "ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")
        >>> dm.setup("fit")  # doctest: +SKIP
        >>> batch = next(iter(dm.train_dataloader()))  # doctest: +SKIP
        >>> inputs, targets, seq_len, bptt, start = batch  # doctest: +SKIP
    """

    #: Files read for each stage of :meth:`setup`.
    STAGE_SPLITS: ClassVar[dict[str | None, tuple[str, ...]]] = {
        "fit": ("train", "valid"),
        "validate": ("valid",),
        "test": ("test",),
        "predict": ("test",),
        None: ("train", "valid", "test"),
    }

    def __init__(
        self,
        data_dir: str | Path,
        train: str = "train.txt",
        valid: str = "valid.txt",
        test: str = "test.txt",
        level: str = "word",
        batch_size: int = 20,
        eval_batch_size: int = 10,
        bptt: int = 35,
        variable_bptt: bool = False,
        min_count: int = 1,
        download: bool = False,
        url: str | None = None,
        vocab: Vocabulary | None = None,
        num_workers: int = 0,
        seed: int = 0,
        unknown_warning_threshold: float = 0.05,
        predict_file: str | Path | None = None,
    ) -> None:
        super().__init__()
        name = f"{type(self).__name__}({str(data_dir)!r})"
        check_level(level, name)
        check_positive_ints(name, batch_size=batch_size, eval_batch_size=eval_batch_size,
                            bptt=bptt, min_count=min_count)
        if num_workers < 0:
            raise ValueError(f"{name}: num_workers must be >= 0, got {num_workers}")
        if vocab is not None and not isinstance(vocab, Vocabulary):
            raise TypeError(f"{name}: vocab must be a Vocabulary, got {type(vocab).__name__}")
        self.data_dir = Path(data_dir)
        self.files = {"train": train, "valid": valid, "test": test}
        self.level = level
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size
        self.bptt = bptt
        self.variable_bptt = variable_bptt
        self.min_count = min_count
        self.download = download
        self.url = url
        self.num_workers = num_workers
        self.seed = seed
        self.unknown_warning_threshold = unknown_warning_threshold
        self.predict_file = Path(predict_file) if predict_file is not None else None
        self._root: DataSource = self.data_dir
        self._vocab = vocab
        self._ids: dict[str, Tensor] = {}
        self._reported: set[str] = set()
        self._predict_texts: list[str] | None = None

    # ------------------------------------------------------------------------- vocabulary
    @property
    def vocab(self) -> Vocabulary:
        """The vocabulary (built from the training file on first access)."""
        if self._vocab is None:
            lines = self._read("train")
            self._vocab = Vocabulary.build(lines, min_count=self.min_count)
            self._encode("train", lines)
        return self._vocab

    @property
    def vocab_size(self) -> int:
        """Number of tokens in the vocabulary: the model's embedding rows and classes."""
        return len(self.vocab)

    # ---------------------------------------------------------------------- lightning hooks
    def prepare_data(self) -> None:
        """Fetch missing files when ``download=True`` (Lightning runs this once per node)."""
        if self.download:
            self._fetch()

    def setup(self, stage: str | None = None) -> None:
        """Read and encode the splits that ``stage`` needs (building the vocabulary first);
        ``"predict"`` reads the raw texts of :meth:`predict_texts`."""
        if stage not in self.STAGE_SPLITS:
            raise ValueError(f"unknown stage {stage!r}; expected one of {list(self.STAGE_SPLITS)}")
        if stage == "predict":
            self.predict_texts()
            return
        for split in self.STAGE_SPLITS[stage]:
            self.split_ids(split)

    def train_dataloader(self) -> DataLoader[LMBatch]:
        """Training windows: ``batch_size`` streams, fixed or variable BPTT; a resumed run
        continues at the checkpoint's window (:class:`TrainPosition`)."""
        loader = self._loader("train", self.batch_size, variable=self.variable_bptt)
        self.prepare_train_sampler(loader.sampler)
        return loader

    def val_dataloader(self) -> DataLoader[LMBatch]:
        """Validation windows: ``eval_batch_size`` streams, fixed BPTT."""
        return self._loader("valid", self.eval_batch_size, variable=False)

    def test_dataloader(self) -> DataLoader[LMBatch]:
        """Test windows: ``eval_batch_size`` streams, fixed BPTT."""
        return self._loader("test", self.eval_batch_size, variable=False)

    def predict_dataloader(self) -> DataLoader[list[str]]:
        """The raw texts of :meth:`predict_texts` in file order, ``eval_batch_size`` per batch
        (each batch a ``list[str]``; Lightning splits them across ranks under DDP)."""
        texts: Any = self.predict_texts()  # a list is a map-style dataset
        return DataLoader(texts, batch_size=self.eval_batch_size, collate_fn=_texts,
                          num_workers=self.num_workers)

    def predict_texts(self) -> list[str]:
        """The texts to predict on, one per line: ``predict_file``'s lines as they are (empty
        ones included, so outputs line up with inputs), else the test file's lines as raw
        text (:func:`tokens_to_text` of what :func:`read_corpus` reads, without ``<eos>``).

        Example:
            >>> dm = TextCorpus("data/ptb", predict_file="prompts.txt")  # doctest: +SKIP
            >>> dm.predict_texts()[:2]  # doctest: +SKIP
            ['the company said', 'in the first quarter']
        """
        if self._predict_texts is None:
            if self.predict_file is not None:
                self._predict_texts = read_lines(self.predict_file)
            else:
                self._predict_texts = [tokens_to_text(line[:-1], self.level)
                                       for line in self._read("test")]
        return self._predict_texts

    def state_dict(self) -> dict[str, Any]:
        """The vocabulary and the training position as plain data, saved in Lightning
        checkpoints."""
        return {"vocab": self.vocab.to_state(), **self.position_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Adopt the checkpoint's vocabulary (re-encoding the splits if it differs) and
        training position."""
        self.load_position_state(state_dict)
        if "vocab" not in state_dict:
            return
        vocab = Vocabulary.from_state(state_dict["vocab"])
        if vocab != self._vocab:
            self._vocab = vocab
            self._ids.clear()
            self._reported.clear()

    # ------------------------------------------------------------------------------ splits
    def path(self, split: str) -> DataSource:
        """Location of the file of ``split`` (``"train"``, ``"valid"`` or ``"test"``)."""
        if split not in self.files:
            raise ValueError(f"unknown split {split!r}; expected one of {list(self.files)}")
        return self._root / self.files[split]

    def split_ids(self, split: str) -> Tensor:
        """The whole token stream of ``split`` as a 1-D ``LongTensor`` of ids."""
        if split not in self._ids:
            vocab = self.vocab  # builds it from train (and encodes train) if needed
            if split not in self._ids:
                self._encode(split, self._read(split), vocab)
        return self._ids[split]

    # ----------------------------------------------------------------------------- helpers
    def _read(self, split: str) -> list[list[str]]:
        source = self.path(split)
        if self.download and not source.is_file():
            self._fetch()
        return read_corpus(source, self.level, missing_hint=self._missing_hint())

    def _encode(self, split: str, lines: list[list[str]], vocab: Vocabulary | None = None) -> None:
        vocab = vocab if vocab is not None else self._vocab
        assert vocab is not None
        ids, unknown = vocab.encode_with_unknown(itertools.chain.from_iterable(lines))
        self._ids[split] = ids
        self._report_unknown(split, unknown, ids.numel())

    def _report_unknown(self, split: str, unknown: int, total: int) -> None:
        if split in self._reported:
            return
        self._reported.add(split)
        report_unknown(self.path(split), unknown, total, self.vocab.unk,
                       self.unknown_warning_threshold, logger=log)

    def _fetch(self) -> None:
        if self.url is None:
            raise ValueError(f"{self.data_dir}: download=True needs a url")
        fetch_files(self.url, self.data_dir, list(self.files.values()))

    def _missing_hint(self) -> str:
        fetch = (
            f"Pass download=True to fetch it from {self.url}"
            if self.url
            else "Pass download=True with url=... to fetch it"
        )
        return (
            f"{fetch}, or point data_dir (or the {DATA_ENV_VAR} environment variable) at the "
            "folder that holds it."
        )

    def _loader(self, split: str, batch_size: int, *, variable: bool) -> DataLoader[LMBatch]:
        ids = self.split_ids(split)
        rank, world_size = distributed_position(self)
        streams = batchify(ids, batch_size, rank=rank, world_size=world_size)
        if streams.size(0) < 2:
            raise ValueError(
                f"{self.path(split)}: {ids.numel()} tokens are too few for "
                f"{batch_size * world_size} streams of at least 2 tokens "
                f"(batch size {batch_size} x world size {world_size})"
            )
        dataset = BPTTStreams(streams, self.bptt)
        sampler_cls = VariableBPTTSampler if variable else BPTTSampler
        return SeededDataLoader(
            dataset,
            batch_size=None,
            sampler=sampler_cls(dataset, seed=self.seed),
            num_workers=self.num_workers,
            seed=self.seed,
        )
