"""CoNLL column reader, the CoNLL2003 data module, and the tagging vocabularies and batches it
builds (lightning_rnn_reg.data.tagging)."""

from __future__ import annotations

import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from lightning_rnn_reg.data.conll import CoNLL2003, CoNLLFormatWarning, read_conll
from lightning_rnn_reg.data.tagging import TaggedSentence, TaggingVocabulary, caps_feature
from lightning_rnn_reg.tag_schemes import spans

IOB1_TEXT = """-DOCSTART- -X- -X- O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O
. . O O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER
Mary NNP I-NP B-PER
met VBD I-VP O
BRUSSELS NNP I-NP I-LOC
. . O O

-DOCSTART- -X- O O


the DT I-NP O
U.S. NNP I-NP I-LOC
1996 CD I-NP O
"""
EXPECTED = [
    TaggedSentence(["EU", "rejects", "German", "call", "."], ["S-ORG", "O", "S-MISC", "O", "O"]),
    TaggedSentence(["Peter", "Blackburn", "Mary", "met", "BRUSSELS", "."],
                   ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "O"]),
    TaggedSentence(["the", "U.S.", "1996"], ["O", "S-LOC", "O"]),
]


def _write(tmp_path: Path, text: str, name: str = "data.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _sentences(n: int, offset: int = 0) -> str:
    """``n`` sentences of lengths 1..7 (cycling) starting with a LOC and a PER entity."""
    blocks = []
    for index in range(offset, offset + n):
        length = 1 + index % 7
        words = ["Paris", "John", "met", f"w{index % 5}", "x", "y", "z"][:length]
        tags = ["I-LOC", "I-PER", "O", "O", "O", "O", "O"][:length]
        blocks.append("\n".join(f"{w} X {t}" for w, t in zip(words, tags, strict=True)))
    return "\n\n".join(blocks) + "\n"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    _write(tmp_path, _sentences(40), "train.txt")
    _write(tmp_path, _sentences(23, offset=40), "valid.txt")
    _write(tmp_path, _sentences(17, offset=80), "test.txt")
    return tmp_path


def _dm(root: Path, **kw) -> CoNLL2003:
    return CoNLL2003(root, "train.txt", "valid.txt", "test.txt", **kw)


# ------------------------------------------------------------------------------- reading
def test_reader_reads_sentences_and_converts_iob1_to_iobes(tmp_path: Path):
    assert read_conll(_write(tmp_path, IOB1_TEXT)) == EXPECTED


def test_docstart_lines_are_skipped_whatever_their_columns_and_make_no_empty_sentence(
        tmp_path: Path):
    text = "\n\n-DOCSTART-\n\n\nA X I-PER\nb X O\n-DOCSTART- -X- -X- -X- O\nc X O\n\n\n"
    assert read_conll(_write(tmp_path, text)) == [
        TaggedSentence(["A", "b"], ["S-PER", "O"]), TaggedSentence(["c"], ["O"])]


def test_token_and_tag_columns_are_chosen_and_tabs_separate(tmp_path: Path):
    text = "O\t-DOCSTART-\n\nB-PER\tJohn\tNNP\nI-PER\tSmith\tNNP\nO\tsaid\tVBD\n"
    path = _write(tmp_path, text)
    assert read_conll(path, tag_scheme="IOB2", token_column=1, tag_column=0) == [
        TaggedSentence(["John", "Smith", "said"], ["B-PER", "E-PER", "O"])]
    with pytest.raises(ValueError, match=r"data.txt: line 3: column 3 does not exist"):
        read_conll(path, token_column=3)


def test_wrong_column_count_raises_naming_file_and_line(tmp_path: Path):
    path = _write(tmp_path, "a X O\nb O\n")
    with pytest.raises(ValueError, match=r"data.txt: line 2: 2 columns, but the first data "
                                         r"line \(line 1\) has 3"):
        read_conll(path)


@pytest.mark.parametrize(("tags", "line"), [
    (["O", "I-PER"], 2),            # I-X after O
    (["B-LOC", "I-PER"], 2),        # I-X after B-Y
    (["I-PER", "O"], 1),            # I-X opening a sentence
])
def test_iob2_forbidden_i_tag_raises_naming_line(tmp_path: Path, tags: list[str], line: int):
    path = _write(tmp_path, "".join(f"w{i} {t}\n" for i, t in enumerate(tags)))
    with pytest.raises(ValueError, match=rf"data.txt: line {line}: tag .* is not valid IOB2"):
        read_conll(path, tag_scheme="IOB2")


def test_iobes_unfinished_entity_raises(tmp_path: Path):
    path = _write(tmp_path, "a B-PER\nb O\n")
    with pytest.raises(ValueError, match=r"line 1: tag 'B-PER' between .* not valid IOBES"):
        read_conll(path, tag_scheme="IOBES")


@pytest.mark.parametrize("strict", [True, False])
def test_unknown_tag_prefix_raises_even_when_not_strict(tmp_path: Path, strict: bool):
    path = _write(tmp_path, "a O\nb E-PER\n")
    with pytest.raises(ValueError, match=r"data.txt: line 2: tag 'E-PER' .* in IOB2"):
        read_conll(path, tag_scheme="IOB2", strict=strict)
    with pytest.raises(ValueError, match=r"line 1: tag 'PER'"):
        read_conll(_write(tmp_path, "a PER\n"), strict=strict)


def test_bad_utf8_raises_naming_line(tmp_path: Path):
    path = tmp_path / "data.txt"
    path.write_bytes(b"a O\n\nb\xff O\n")
    with pytest.raises(ValueError, match=r"data.txt: line 3, column 2: not valid UTF-8"):
        read_conll(path, strict=False)


def test_empty_file_raises(tmp_path: Path):
    with pytest.raises(ValueError, match="holds no sentence"):
        read_conll(_write(tmp_path, "-DOCSTART- O\n\n"))


def test_not_strict_repairs_lines_and_counts_them_in_one_warning(tmp_path: Path):
    text = "a X O\nb X I-PER\nc O\nd X O\n\ne X B-LOC\nf X I-PER\ng\nh X O\n"
    with pytest.warns(CoNLLFormatWarning) as record:
        sentences = read_conll(_write(tmp_path, text), tag_scheme="IOB2", strict=False)
    assert len(record) == 1
    message = str(record[0].message)
    assert "repaired 4 lines" in message and "2 skipped" in message and "the first is line 2" \
        in message
    assert sentences == [TaggedSentence(["a", "b", "d"], ["O", "S-PER", "O"]),
                         TaggedSentence(["e", "f", "h"], ["S-LOC", "S-PER", "O"])]


def test_real_conll2003_test_file_counts(shared_data_dir: Path):
    path = shared_data_dir / "conll2003" / "eng.testb"
    if not path.is_file():
        pytest.skip("CoNLL-2003 not available")
    sentences = read_conll(path)
    assert len(sentences) == 3453
    assert sum(len(s.tokens) for s in sentences) == 46435
    assert sum(len(spans(s.tags)) for s in sentences) == 5648  # data/README.md


# ---------------------------------------------------------------------------- vocabulary
def test_caps_feature_classes():
    tokens = ["the", "e-mail", "3rd", "Paris", "Jean-luc", "EU", "U.S.", "I", "McDonald",
              "iPhone", "1996", ","]
    assert [caps_feature(t) for t in tokens] == [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 3]


def test_word_vocabulary_lowercases_counts_and_pads_first(tmp_path: Path):
    sentences = [TaggedSentence(["The", "the", "EU", "rare"], ["O", "O", "S-ORG", "O"])]
    vocab = TaggingVocabulary.build(sentences, min_count=2, lowercase=True)
    assert vocab.words.itos == ("<pad>", "<unk>", "the")
    assert vocab.pad_index == 0 and vocab.chars is None
    example, unknown = vocab.encode(["The", "EU"], ["O", "S-ORG"])
    assert example["tokens"].tolist() == [2, 1] and unknown == 1
    assert example["caps"].tolist() == [1, 2]
    assert vocab.tag_names == ("O", "B-ORG", "I-ORG", "E-ORG", "S-ORG")
    with pytest.raises(ValueError, match=r"\['S-PER'\] are not in the tag set"):
        vocab.encode(["x"], ["S-PER"])


def test_chars_keep_case_are_truncated_and_padded_with_zero():
    sentences = [TaggedSentence(["Abc", "de"], ["O", "O"])]
    vocab = TaggingVocabulary.build(sentences, lowercase=True, char_vocab=True,
                                    max_word_length=2)
    assert vocab.chars is not None and vocab.chars.itos[:2] == ("<pad>", "<unk>")
    batch = vocab.batch([["Abc", "dz"], ["e"]])
    ids = vocab.chars.stoi
    assert batch.chars.tolist() == [[[ids["A"], ids["b"]], [ids["d"], 1]], [[ids["e"], 0],
                                                                           [0, 0]]]
    assert batch.tokens.tolist() == [[2, 1], [1, 0]]  # "abc" known, "dz" / "e" unknown, pad 0
    assert batch.lengths.tolist() == [2, 1] and batch.tags is None


def test_vocabulary_state_is_plain_data_and_round_trips():
    vocab = TaggingVocabulary.build([TaggedSentence(["A", "b"], ["S-PER", "O"])],
                                    char_vocab=True, source_scheme="IOB1")
    state = vocab.to_state()
    assert TaggingVocabulary.from_state(state) == vocab
    assert state["tags"] == list(vocab.tag_names) and state["source_scheme"] == "IOB1"
    assert vocab.decode_tags([1, 2, 3, 0]) == ["I-PER", "I-PER", "I-PER", "O"]
    assert vocab.decode_tags([1, 3], scheme="IOB2") == ["B-PER", "I-PER"]


# --------------------------------------------------------------------------- data module
def test_properties_are_available_before_setup_from_train_alone(tmp_path: Path):
    _write(tmp_path, IOB1_TEXT, "train.txt")  # no valid / test files
    dm = _dm(tmp_path, char_vocab=True)
    assert dm.tag_names == ["O"] + [f"{p}-{k}" for k in ("LOC", "MISC", "ORG", "PER")
                                    for p in "BIES"]
    assert dm.num_tags == 17
    assert dm.vocab_size == 2 + 13  # <pad>, <unk> and 13 distinct words
    assert dm.char_vocab_size == len(dm.vocabulary.chars.itos)  # type: ignore[union-attr]
    assert _dm(tmp_path).char_vocab_size == 0


def test_batches_pad_tokens_tags_chars_and_caps(corpus: Path):
    dm = _dm(corpus, char_vocab=True, batch_size=4)
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    assert batch.tokens.shape == batch.tags.shape == batch.caps.shape
    assert batch.chars.shape[:2] == batch.tokens.shape
    for row, length in enumerate(batch.lengths.tolist()):
        assert (batch.tags[row, length:] == -100).all() and (batch.tags[row, :length] >= 0).all()
        assert (batch.tokens[row, length:] == dm.vocabulary.pad_index).all()
        assert (batch.chars[row, length:] == 0).all()
        assert (batch.chars[row, :length, 0] != 0).all()


def test_training_buckets_keep_every_sentence_once(corpus: Path):
    dm = _dm(corpus, batch_size=8)
    dm.setup("fit")
    loader = dm.train_dataloader()
    rows = [tuple(b.tokens[i, :n].tolist()) for b in loader
            for i, n in enumerate(b.lengths.tolist())]
    expected = [tuple(e["tokens"].tolist()) for e in dm.examples("train")]
    assert sorted(rows) == sorted(expected)
    assert all(len(b.lengths) <= 8 for b in loader)


@pytest.mark.parametrize("split", ["valid", "test"])
def test_eval_loaders_split_disjointly_and_cover_across_ranks(corpus: Path, split: str):
    seen: list[int] = []
    for rank in range(2):
        dm = _dm(corpus, eval_batch_size=4)
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=2)  # type: ignore[assignment]
        loader = dm.val_dataloader() if split == "valid" else dm.test_dataloader()
        indices = list(loader.sampler)
        assert 0 < len(indices) < len(dm.examples(split))
        seen += indices
    assert sorted(seen) == list(range(len(_dm(corpus).examples(split))))


def test_unknown_words_warn_once_per_split_above_threshold(tmp_path: Path):
    _write(tmp_path, "a O\nb O\n", "train.txt")
    _write(tmp_path, "a O\nzz O\nyy O\n", "valid.txt")
    dm = _dm(tmp_path)
    with pytest.warns(UserWarning, match=r"valid.txt: 2 of 3 words \(66.67%\)"):
        dm.examples("valid")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dm.examples("valid")


def test_entity_type_unseen_in_training_raises(tmp_path: Path):
    _write(tmp_path, "a I-PER\n", "train.txt")
    _write(tmp_path, "a I-LOC\n", "valid.txt")
    with pytest.raises(ValueError, match=r"valid.txt: tags \['S-LOC'\] are not in the tag set"):
        _dm(tmp_path).examples("valid")


def test_state_dict_round_trips_the_vocabularies_as_plain_data(corpus: Path, tmp_path: Path):
    dm = _dm(corpus, lowercase=True, char_vocab=True)
    torch.save(dm.state_dict(), tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    other = _dm(corpus, min_count=3)
    other.load_state_dict(state)
    assert other.vocabulary == dm.vocabulary and other.vocab_size == dm.vocab_size


def test_data_dir_defaults_to_lrr_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("LRR_DATA", str(tmp_path))
    assert CoNLL2003().path("test") == tmp_path / "conll2003" / "eng.testb"
    monkeypatch.delenv("LRR_DATA")
    with pytest.raises(ValueError, match="LRR_DATA"):
        CoNLL2003()


def test_missing_file_names_itself(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match=r"train\.txt: no such file"):
        _ = _dm(tmp_path).num_tags
