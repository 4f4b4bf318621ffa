"""Language-modelling data: batchify, BPTT windows, DDP split, errors, download, real corpora."""

from __future__ import annotations

import io
import logging
import tarfile
import warnings
import zipfile
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from lightning_rnn_reg.data.language_modeling import (
    BPTTSampler,
    BPTTStreams,
    LMBatch,
    PennTreebank,
    PennTreebankChar,
    TextCorpus,
    VariableBPTTSampler,
    WikiText2,
    WikiText2Sample,
    batchify,
    bptt_windows,
    read_corpus,
    variable_bptt_windows,
)
from lightning_rnn_reg.data.vocab import EOS, UNK, Vocabulary

LOGGER = "lightning_rnn_reg.data.language_modeling"


# ------------------------------------------------------------------ batchify and windows
def test_batchify_makes_contiguous_time_major_streams() -> None:
    expected = torch.tensor([[0, 6, 12, 18], [1, 7, 13, 19], [2, 8, 14, 20]])
    expected = torch.cat([expected, expected[:3] + 3])
    assert torch.equal(batchify(torch.arange(26), 4), expected)  # 26 mod 4 = 2 dropped


def test_bptt_windows_tile_all_steps_but_the_last() -> None:
    assert bptt_windows(6, 4) == [(0, 4), (4, 1)]
    assert bptt_windows(7, 3) == [(0, 3), (3, 3)]


def test_streams_give_exact_input_and_target_windows() -> None:
    streams = BPTTStreams(batchify(torch.arange(26), 4), bptt=4)
    first, last = streams[0], streams[1]
    assert torch.equal(
        first.inputs, torch.tensor([[0, 6, 12, 18], [1, 7, 13, 19], [2, 8, 14, 20], [3, 9, 15, 21]])
    )
    assert torch.equal(first.targets, first.inputs + 1)
    assert torch.equal(last.inputs, torch.tensor([[4, 10, 16, 22]]))
    assert torch.equal(last.targets, torch.tensor([[5, 11, 17, 23]]))
    assert (first.seq_len, first.bptt, first.start) == (4, 4, 0)
    assert (last.seq_len, last.start) == (1, 4)


def test_streams_reject_windows_past_the_data() -> None:
    streams = BPTTStreams(batchify(torch.arange(26), 4), bptt=4)
    with pytest.raises(IndexError):
        streams[(3, 3)]


# -------------------------------------------------------------------------- variable BPTT
def _variable(seed: int, steps: int = 100_000, bptt: int = 70) -> list[tuple[int, int]]:
    return variable_bptt_windows(steps, bptt, torch.Generator().manual_seed(seed))


def test_variable_bptt_windows_tile_the_data() -> None:
    windows = _variable(0, steps=5000)
    starts = [s for s, _ in windows]
    assert starts == [0, *torch.tensor([n for _, n in windows]).cumsum(0)[:-1].tolist()]
    assert sum(n for _, n in windows) == 4999
    assert min(n for _, n in windows[:-1]) >= 5


def test_variable_bptt_statistics_match_awd_lstm() -> None:
    lengths = torch.tensor([n for _, n in _variable(1)[:-1]], dtype=torch.float)
    half = lengths < 52.5  # base bptt / 2 = 35 +- 5 against base 70 +- 5
    assert 0.03 < half.float().mean().item() < 0.07
    full = lengths[~half]
    assert abs(full.mean().item() - 70) < 0.6
    assert 4.5 < full.std().item() < 5.5
    assert abs(lengths[half].mean().item() - 35) < 1.5


def test_variable_bptt_is_deterministic_in_the_seed() -> None:
    assert _variable(7, steps=3000) == _variable(7, steps=3000)
    assert _variable(7, steps=3000) != _variable(8, steps=3000)


def test_variable_sampler_changes_with_epoch_and_repeats_per_epoch() -> None:
    sampler = VariableBPTTSampler(BPTTStreams(batchify(torch.arange(4000), 2), 35), seed=5)
    epoch0 = list(sampler)
    assert list(sampler) == epoch0
    sampler.set_epoch(1)
    assert list(sampler) != epoch0
    expected = variable_bptt_windows(2000, 35, torch.Generator().manual_seed(6))
    assert list(sampler) == expected  # seeded with seed + epoch


def test_variable_sampler_has_no_length() -> None:
    sampler = VariableBPTTSampler(BPTTStreams(batchify(torch.arange(400), 2), 35))
    with pytest.raises(TypeError):
        len(sampler)
    assert len(BPTTSampler(sampler.streams)) == len(bptt_windows(200, 35))


# ---------------------------------------------------------------------------------- DDP
@pytest.mark.parametrize("world_size", [1, 2, 3])
def test_ddp_split_is_disjoint_and_covers_all_but_the_remainder(world_size: int) -> None:
    n, batch = 103, 3
    parts = [
        batchify(torch.arange(n), batch, rank=r, world_size=world_size) for r in range(world_size)
    ]
    steps = n // (world_size * batch)
    assert all(p.shape == (steps, batch) for p in parts)
    tokens = torch.cat([p.flatten() for p in parts])
    assert tokens.unique().numel() == tokens.numel()
    assert set(tokens.tolist()) == set(range(steps * world_size * batch))


@pytest.mark.parametrize("world_size", [2, 3])
def test_ddp_ranks_draw_identical_variable_windows(world_size: int) -> None:
    samplers = [
        VariableBPTTSampler(
            BPTTStreams(batchify(torch.arange(5000), 4, rank=r, world_size=world_size), 35), seed=2
        )
        for r in range(world_size)
    ]
    for sampler in samplers:
        sampler.set_epoch(3)
    assert all(list(s) == list(samplers[0]) for s in samplers)


def test_data_module_reads_rank_and_world_size_from_trainer(toy_corpus: Path) -> None:
    dm = TextCorpus(toy_corpus, batch_size=2, bptt=3)
    full = batchify(dm.split_ids("train"), 4)
    dm.trainer = SimpleNamespace(global_rank=1, world_size=2)
    streams = dm.train_dataloader().dataset.streams
    assert torch.equal(streams, full[:, 2:])


def test_lightning_keeps_the_sampler_under_ddp(toy_corpus: Path) -> None:
    from lightning.pytorch.trainer.states import RunningStage

    trainer = L.Trainer(
        strategy="ddp",
        devices=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    loader = TextCorpus(toy_corpus, batch_size=2, bptt=3).train_dataloader()
    prepared = trainer._data_connector._prepare_dataloader(
        loader, shuffle=True, mode=RunningStage.TRAINING
    )
    assert prepared is loader and isinstance(prepared.sampler, BPTTSampler)


# ------------------------------------------------------------------------- data module
def test_toy_corpus_batches_decode_to_the_text(toy_corpus: Path) -> None:
    dm = TextCorpus(toy_corpus, batch_size=2, bptt=3)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert all(isinstance(b, LMBatch) for b in batches)
    assert [b.start for b in batches] == [0, 3, 6]
    first = batches[0]
    assert dm.vocab.decode(first.inputs[:, 0]) == ["the", "cat", "sat"]
    assert dm.vocab.decode(first.targets[:, 0]) == ["cat", "sat", EOS]
    assert dm.vocab.decode(first.inputs[:, 1]) == ["ran", EOS, EOS]
    streams = dm.train_dataloader().dataset.streams
    assert torch.equal(torch.cat([b.inputs for b in batches]), streams[:-1])
    assert torch.equal(torch.cat([b.targets for b in batches]), streams[1:])


def test_vocab_size_is_available_before_setup(toy_corpus: Path) -> None:
    dm = TextCorpus(toy_corpus)
    assert dm.vocab_size == len(dm.vocab) == 13  # 11 words + <unk> + <eos>
    assert dm.vocab.itos[:2] == (UNK, EOS)


def test_given_vocab_is_used_without_reading_train(toy_corpus: Path) -> None:
    vocab = Vocabulary([UNK, EOS, "the", "cat"])
    (toy_corpus / "train.txt").unlink()
    dm = TextCorpus(toy_corpus, vocab=vocab, unknown_warning_threshold=1.0)
    dm.setup("test")
    assert dm.vocab is vocab and dm.vocab_size == 4


def test_eval_loaders_use_eval_batch_size_and_fixed_bptt(toy_corpus: Path) -> None:
    dm = TextCorpus(toy_corpus, batch_size=2, eval_batch_size=3, bptt=2, variable_bptt=True)
    batch = next(iter(dm.val_dataloader()))
    assert batch.inputs.shape == (2, 3)
    assert isinstance(dm.val_dataloader().sampler, BPTTSampler)
    assert not isinstance(dm.val_dataloader().sampler, VariableBPTTSampler)
    assert isinstance(dm.train_dataloader().sampler, VariableBPTTSampler)


def test_worker_processes_keep_window_order(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text(" ".join(f"w{i % 97}" for i in range(3000)) + "\n")
    dm = TextCorpus(tmp_path, batch_size=3, bptt=50, variable_bptt=True, num_workers=2)
    plain = list(
        DataLoader(
            dm.train_dataloader().dataset, batch_size=None, sampler=dm.train_dataloader().sampler
        )
    )
    parallel = list(dm.train_dataloader())
    assert [b.start for b in parallel] == [b.start for b in plain]
    assert all(torch.equal(a.inputs, b.inputs) for a, b in zip(parallel, plain, strict=True))


class _Recorder(L.LightningModule):
    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab_size, 2)
        self.train_windows: dict[int, list[tuple[int, int]]] = {}
        self.val_batches: dict[int, int] = {}

    def training_step(self, batch: LMBatch, batch_idx: int) -> torch.Tensor:
        self.train_windows.setdefault(self.current_epoch, []).append((batch.start, batch.seq_len))
        return self.embedding(batch.inputs).sum()

    def validation_step(self, batch: LMBatch, batch_idx: int) -> None:
        if not self.trainer.sanity_checking:
            self.val_batches[self.current_epoch] = self.val_batches.get(self.current_epoch, 0) + 1

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_trainer_runs_every_variable_window_and_validates_each_epoch(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text(" ".join(f"w{i % 31}" for i in range(2000)) + "\n")
    (tmp_path / "valid.txt").write_text(" ".join(f"w{i % 31}" for i in range(200)) + "\n")
    (tmp_path / "test.txt").write_text("w1 w2\n" * 20)
    dm = TextCorpus(tmp_path, batch_size=2, eval_batch_size=2, bptt=20, variable_bptt=True, seed=4)
    model = _Recorder(dm.vocab_size)
    L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    ).fit(model, dm)
    for epoch in (0, 1):
        expected = variable_bptt_windows(1000, 20, torch.Generator().manual_seed(4 + epoch))
        assert model.train_windows[epoch] == expected
        assert model.val_batches[epoch] == len(bptt_windows(100, 20))  # 201 tokens / 2 streams


def test_state_dict_round_trips_the_vocabulary(toy_corpus: Path) -> None:
    dm = TextCorpus(toy_corpus)
    buffer = io.BytesIO()
    torch.save(dm.state_dict(), buffer)
    buffer.seek(0)
    other = TextCorpus(
        toy_corpus, vocab=Vocabulary([UNK, EOS, "the"]), unknown_warning_threshold=1.0
    )
    other.setup("fit")
    other.load_state_dict(torch.load(buffer, weights_only=True))
    assert other.vocab == dm.vocab
    assert torch.equal(other.split_ids("train"), dm.split_ids("train"))


# ------------------------------------------------------------------ unknown-token report
def test_unknown_tokens_above_five_percent_warn_once(toy_corpus: Path) -> None:
    (toy_corpus / "valid.txt").write_text(" the cat zebra \n")
    dm = TextCorpus(toy_corpus, eval_batch_size=1)
    with pytest.warns(UserWarning, match=r"valid.txt: 1 of 4 tokens \(25.00%\)"):
        dm.setup("fit")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dm.setup("fit")
        dm.val_dataloader()


def test_unknown_tokens_below_threshold_are_logged(toy_corpus: Path, caplog) -> None:
    (toy_corpus / "valid.txt").write_text(" the cat sat \n" * 30 + " zebra \n")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        TextCorpus(toy_corpus).setup("fit")
    assert any("valid.txt: 1 of 122 tokens" in r.message for r in caplog.records)


def test_min_count_folds_rare_training_words(toy_corpus: Path) -> None:
    dm = TextCorpus(toy_corpus, min_count=2, unknown_warning_threshold=1.0)
    assert dm.vocab.itos == (UNK, EOS, "the", "cat", "sat")
    assert (dm.split_ids("train") == dm.vocab.unk_index).sum() == 8  # dog a ran end x y z w


# ------------------------------------------------------------------------------ errors
def test_missing_file_names_path_and_remedies(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"train\.txt") as info:
        TextCorpus(tmp_path).setup("fit")
    assert str(tmp_path) in str(info.value)
    assert "download=True" in str(info.value) and "LRR_DATA" in str(info.value)


@pytest.mark.parametrize("content", [b"", b"  \n\n \n"])
def test_empty_file_is_an_error(toy_corpus: Path, content: bytes) -> None:
    (toy_corpus / "train.txt").write_bytes(content)
    with pytest.raises(ValueError, match=r"train.txt: the file is empty"):
        TextCorpus(toy_corpus).setup("fit")


def test_bad_utf8_names_file_and_line(toy_corpus: Path) -> None:
    (toy_corpus / "valid.txt").write_bytes(b" ok \n fine \n bad \xff\xfe here \n")
    with pytest.raises(ValueError, match=r"valid.txt: line 3, column 6: not valid UTF-8"):
        TextCorpus(toy_corpus).setup("fit")


def test_unknown_level_is_an_error(toy_corpus: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown level 'chars'") as info:
        TextCorpus(toy_corpus, level="chars")
    assert str(toy_corpus) in str(info.value)


@pytest.mark.parametrize("arg", ["bptt", "batch_size", "eval_batch_size", "min_count"])
def test_non_positive_sizes_are_errors(toy_corpus: Path, arg: str) -> None:
    with pytest.raises(ValueError, match=rf"{arg} must be an integer >= 1, got 0"):
        TextCorpus(toy_corpus, **{arg: 0})


def test_too_few_tokens_for_the_streams_is_an_error(toy_corpus: Path) -> None:
    with pytest.raises(ValueError, match=r"train.txt: 21 tokens are too few for 20 streams"):
        TextCorpus(toy_corpus, batch_size=20).train_dataloader()


def test_char_level_rejects_multi_character_symbols(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("c a t _ s a t\nthe cat\n")
    with pytest.raises(ValueError, match=r"train.txt: line 2: level='char'.*'the'"):
        read_corpus(tmp_path / "train.txt", "char")


def test_char_level_reads_symbols_and_eos(tmp_path: Path) -> None:
    (tmp_path / "train.txt").write_text("c a t _ s a t \n d o g \n ")  # PTB-char ending
    assert read_corpus(tmp_path / "train.txt", "char") == [
        ["c", "a", "t", "_", "s", "a", "t", EOS],
        ["d", "o", "g", EOS],
    ]


# ---------------------------------------------------------------------------- download
def test_download_plain_files_from_a_base_url(toy_corpus: Path, tmp_path: Path) -> None:
    target = tmp_path / "fetched"
    dm = TextCorpus(target, download=True, url=toy_corpus.as_uri())
    dm.prepare_data()
    for name in ("train.txt", "valid.txt", "test.txt"):
        assert (target / name).read_bytes() == (toy_corpus / name).read_bytes()
    assert dm.vocab_size == 13
    assert not list(target.glob(".*"))  # no partial files left behind


def test_download_extracts_a_zip(toy_corpus: Path, tmp_path: Path) -> None:
    archive = tmp_path / "wikitext-2-v1.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for split in ("train", "valid", "test"):
            text = (toy_corpus / f"{split}.txt").read_text()
            zf.writestr(f"wikitext-2/wiki.{split}.tokens", text)
    dm = WikiText2(tmp_path / "wt2", download=True, url=archive.as_uri())
    dm.prepare_data()
    assert (tmp_path / "wt2" / "wiki.valid.tokens").read_text() == (
        toy_corpus / "valid.txt"
    ).read_text()
    assert dm.vocab_size == 13
    assert not list((tmp_path / "wt2").glob(".*"))


def test_download_extracts_a_tarball_on_first_use(tmp_path: Path) -> None:
    archive = tmp_path / "simple-examples.tgz"
    with tarfile.open(archive, "w:gz") as tf:
        for split in ("train", "valid", "test"):
            data = b"a _ b \n c \n"
            member = tarfile.TarInfo(f"./simple-examples/data/ptb.char.{split}.txt")
            member.size = len(data)
            tf.addfile(member, io.BytesIO(data))
    dm = PennTreebankChar(tmp_path / "char", download=True, url=archive.as_uri())
    assert dm.vocab_size == 6  # <unk> <eos> a _ b c


def test_download_reports_missing_archive_members(toy_corpus: Path, tmp_path: Path) -> None:
    archive = tmp_path / "partial.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("train.txt", "a b\n")
    with pytest.raises(FileNotFoundError, match=r"partial.zip: the archive holds no file"):
        TextCorpus(tmp_path / "x", download=True, url=archive.as_uri()).prepare_data()


def test_presets_default_to_lrr_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LRR_DATA", str(tmp_path))
    assert PennTreebank().data_dir == tmp_path / "ptb"
    assert PennTreebankChar().data_dir == tmp_path / "ptb_char"
    assert WikiText2().data_dir == tmp_path / "wikitext2"
    monkeypatch.delenv("LRR_DATA")
    with pytest.raises(ValueError, match="LRR_DATA"):
        PennTreebank()


# ------------------------------------------------------------------------ real corpora
def _corpus(shared: Path, cls: type[TextCorpus], subfolder: str) -> TextCorpus:
    folder = shared / subfolder
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (set LRR_DATA to the shared datasets folder)")
    dm = cls(folder)
    dm.setup()
    return dm


def test_ptb_has_10000_words_and_929589_train_tokens(shared_data_dir: Path) -> None:
    dm = _corpus(shared_data_dir, PennTreebank, "ptb")
    assert dm.vocab_size == 10000
    sizes = {split: dm.split_ids(split).numel() for split in ("train", "valid", "test")}
    assert sizes == {"train": 929589, "valid": 73760, "test": 82430}


def test_wikitext2_has_33278_words(shared_data_dir: Path) -> None:
    dm = _corpus(shared_data_dir, WikiText2, "wikitext2")
    assert dm.vocab_size == 33278
    assert dm.split_ids("train").numel() == 2088628


def test_ptb_char_has_50_symbols_including_eos(shared_data_dir: Path) -> None:
    dm = _corpus(shared_data_dir, PennTreebankChar, "ptb_char")
    symbols = [s for s, n in zip(dm.vocab.itos, dm.vocab.counts, strict=True) if n > 0]
    assert len(symbols) == 50 and EOS in symbols and "_" in symbols
    assert dm.vocab_size == 51  # plus the always-present <unk>, unused at char level
    assert dm.split_ids("train").numel() == 5017482


# ------------------------------------------------------------------------ embedded sample
def test_embedded_sample_loads_and_is_at_most_1mb(shared_data_dir: Path) -> None:
    dm = WikiText2Sample(batch_size=4, bptt=20)
    dm.setup()
    assert dm.vocab_size > 10000
    folder = dm._root
    total = sum(entry.read_bytes().__len__() for entry in folder.iterdir() if entry.is_file())
    assert total <= 1_000_000
    assert "CC BY-SA 3.0" in folder.joinpath("ATTRIBUTION.md").read_text()
    batch = next(iter(dm.train_dataloader()))
    assert batch.inputs.shape == (20, 4)
    source = shared_data_dir / "wikitext2"
    if source.is_dir():
        for split in ("train", "valid", "test"):
            sample = folder.joinpath(f"{split}.txt").read_bytes()
            assert (source / f"wiki.{split}.tokens").read_bytes().startswith(sample)
