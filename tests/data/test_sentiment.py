"""Sentiment readers and ``SentimentDataModule`` (``lightning_rnn_reg.data.sentiment``).

Fixtures are invented sentences in the formats of the shared files (never real tweets); the
last tests read the shared benchmark files themselves when they are present.
"""

from __future__ import annotations

import doctest
import re
import warnings
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from lightning_rnn_reg.data import sentiment
from lightning_rnn_reg.data.sentiment import (
    PAD,
    SEMEVAL_LABELS,
    SST2_LABELS,
    SST5_LABELS,
    ClassificationBatch,
    SentimentDataModule,
    SentimentDataWarning,
    SentimentExample,
    normalize_semeval_text,
    parse_sst_tree,
    read_delimited,
    read_semeval,
    read_sst,
)
from lightning_rnn_reg.data.vocab import UNK, Vocabulary


def _write(folder: Path, name: str, content: str | bytes) -> Path:
    path = folder / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def _texts(examples: list[SentimentExample]) -> list[str]:
    return [example.text for example in examples]


def test_doctests_pass() -> None:
    assert doctest.testmod(sentiment).failed == 0


# ---------------------------------------------------------------------------------- SemEval
def test_semeval_reads_id_label_text_with_line_numbers(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.tsv", "1\tpositive\tLoved the show\n\n2\tnegative\tSo dull\n")
    assert read_semeval(path) == [SentimentExample("Loved the show", "positive", 1),
                                  SentimentExample("So dull", "negative", 3)]


def test_semeval_decodes_u_escapes_and_surrogate_pairs(tmp_path: Path) -> None:
    raw = r"1	neutral	It\u2019s late\u002c ok \ud83d\ude00 \ud83d alone" + "\n"
    text = read_semeval(_write(tmp_path, "a.tsv", raw))[0].text
    assert text == "It\u2019s late, ok \U0001F600 \ufffd alone"


@pytest.mark.parametrize(("raw", "expected"), [
    ('"Why is \\""""Fun Day\\"""" trending? ok.."', 'Why is "Fun Day" trending? ok..'),
    ('"Read ""A Book"" today"', 'Read "A Book" today'),
    ('"Said \\""fine\\"" twice"', 'Said "fine" twice'),
    ('"Cain day is """"Cain Day."""" now"', 'Cain day is "Cain Day." now'),
    ('"simply wrapped"', "simply wrapped"),
    ('"ends with a backslash /o\\"', "ends with a backslash /o\\"),
    ('"Quote" then more "words"', '"Quote" then more "words"'),
    ('"only an opening quote', '"only an opening quote'),
    ('a closing "quote"', 'a closing "quote"'),
])
def test_semeval_unwraps_csv_quoting_including_nested_escapes(raw: str, expected: str) -> None:
    assert normalize_semeval_text(raw) == expected


def test_semeval_decodes_html_character_references() -> None:
    assert normalize_semeval_text("Fish &amp; chips &lt;3 &#39;ok&#x27; &bogus &amp;amp;") == (
        "Fish & chips <3 'ok' &bogus &")


def test_semeval_keeps_the_first_of_duplicate_ids_and_warns_once(tmp_path: Path) -> None:
    content = ("7\tpositive\tfirst\n8\tneutral\tother\n7\tpositive\tagain\n"
               "7\tnegative\tconflict\n8\tneutral\tother\n")
    expected = r"dropped 3 line\(s\).*1 of them had another label"
    with pytest.warns(SentimentDataWarning, match=expected) as record:
        examples = read_semeval(_write(tmp_path, "dup.tsv", content))
    assert len(record) == 1
    assert [(e.text, e.label, e.line) for e in examples] == [("first", "positive", 1),
                                                             ("other", "neutral", 2)]


def test_semeval_ignores_a_fourth_column_empty_or_not(tmp_path: Path) -> None:
    content = "1\tpositive\tgood\t\n2\tnegative\tbad\tWed Jul 29 12:01:22 +0000 2015\n"
    assert _texts(read_semeval(_write(tmp_path, "four.tsv", content))) == ["good", "bad"]


def test_semeval_normalises_label_spellings(tmp_path: Path) -> None:
    content = "1\t Positive \ta\n2\tobjective-OR-neutral\tb\n3\tobjective\tc\n4\tNEGATIVE\td\n"
    labels = [e.label for e in read_semeval(_write(tmp_path, "labels.tsv", content))]
    assert labels == ["positive", "neutral", "neutral", "negative"]


SEMEVAL_MALFORMED = {
    "two columns": "9\tpositive\n",
    "five columns": "9\tpositive\ttext\textra\tmore\n",
    "unknown label": "9\tmixed\ttext\n",
    "empty label": "9\t\ttext\n",
    "empty text": '9\tpositive\t""\n',
    "empty id": "\tpositive\ttext\n",
}


@pytest.mark.parametrize("bad", list(SEMEVAL_MALFORMED.values()), ids=list(SEMEVAL_MALFORMED))
def test_semeval_malformed_line_raises_naming_file_and_line(tmp_path: Path, bad: str) -> None:
    path = _write(tmp_path, "bad.tsv", "1\tpositive\tfine\n" + bad)
    with pytest.raises(ValueError, match=re.escape(f"{path}: line 2")):
        read_semeval(path)


def test_semeval_bad_utf8_raises_naming_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.tsv", b"1\tpositive\tfine\n2\tnegative\tbad \xff byte\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}: line 2")):
        read_semeval(path)


def test_semeval_non_strict_skips_every_malformed_line_with_one_warning(tmp_path: Path) -> None:
    content = ("1\tpositive\tfine\n" + "".join(SEMEVAL_MALFORMED.values())).encode()
    path = _write(tmp_path, "bad.tsv", content + b"2\tnegative\tbad \xff\n3\tneutral\tok\n")
    expected = r"skipped 7 malformed line\(s\).*line 2:"
    with pytest.warns(SentimentDataWarning, match=expected) as record:
        examples = read_semeval(path, strict=False)
    assert len(record) == 1
    assert _texts(examples) == ["fine", "ok"]


# -------------------------------------------------------------------------------------- SST
def test_parse_sst_tree_gives_root_label_and_leaves() -> None:
    line = "(3 (2 It) (4 (2 (2 -LRB-) (2 and\\/or)) (3 (2 8\xa01\\/2) (2 -RRB-))))"
    assert parse_sst_tree(line) == (3, ["It", "(", "and/or", "8\xa01/2", ")"])


SST_TREES = ("(0 (1 Dull) (2 .))\n(1 (2 Not) (1 good))\n(2 (2 Just) (2 okay))\n"
             "(3 (3 Quite) (3 nice))\n(4 (4 Superb) (2 !))\n")


def test_sst5_labels_come_from_the_root(tmp_path: Path) -> None:
    examples = read_sst(_write(tmp_path, "t.txt", SST_TREES), classes=5)
    assert [e.label for e in examples] == list(SST5_LABELS)
    assert _texts(examples)[0] == "Dull ."


def test_sst2_maps_0_1_negative_3_4_positive_and_drops_2(tmp_path: Path) -> None:
    examples = read_sst(_write(tmp_path, "t.txt", SST_TREES), classes=2)
    assert [(e.label, e.line) for e in examples] == [
        ("negative", 1), ("negative", 2), ("positive", 4), ("positive", 5)]


SST_MALFORMED = {
    "missing close": "(3 (2 a) (2 b)\n",
    "extra close": "(3 (2 a) (2 b)))\n",
    "label out of range": "(7 (2 a) (2 b))\n",
    "missing label": "((2 a) (2 b))\n",
    "two words in a leaf": "(3 (2 a b) (2 c))\n",
    "text after the tree": "(3 (2 a)) (2 b)\n",
    "no tree": "just words\n",
    "empty node": "(3 (2 a) (2))\n",
}


@pytest.mark.parametrize("bad", list(SST_MALFORMED.values()), ids=list(SST_MALFORMED))
def test_sst_malformed_tree_raises_naming_file_and_line(tmp_path: Path, bad: str) -> None:
    path = _write(tmp_path, "bad.txt", "(3 (2 fine))\n" + bad)
    with pytest.raises(ValueError, match=re.escape(f"{path}: line 2")):
        read_sst(path)


def test_sst_bad_utf8_raises_and_non_strict_skips_all_with_one_warning(tmp_path: Path) -> None:
    body = "(3 (2 fine))\n" + "".join(SST_MALFORMED.values())
    path = _write(tmp_path, "bad.txt", body.encode() + b"(1 (1 \xe9vil))\n(4 (4 great))\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}: line 10")):
        read_sst(path)
    with pytest.warns(SentimentDataWarning, match=r"skipped 9 malformed") as record:
        examples = read_sst(path, classes=5, strict=False)
    assert len(record) == 1
    assert _texts(examples) == ["fine", "great"]


def test_sst_rejects_other_class_counts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="classes must be 2 or 5"):
        read_sst(_write(tmp_path, "t.txt", SST_TREES), classes=3)


# ---------------------------------------------------------------------------------- TSV/CSV
def test_tsv_reads_named_columns_and_keeps_quotes_literal(tmp_path: Path) -> None:
    content = 'id\tlabel\tsentence\n1\tpos\t"Great" fun\n2\tneg \t meh \n'
    examples = read_delimited(_write(tmp_path, "d.tsv", content), text_column="sentence")
    assert examples == [SentimentExample('"Great" fun', "pos", 2),
                        SentimentExample("meh", "neg", 3)]


def test_csv_reads_quoted_fields_spanning_lines(tmp_path: Path) -> None:
    content = 'text,label\n"Fine, ""really""",pos\n"two\nlines",neg\nlast,pos\n'
    examples = read_delimited(_write(tmp_path, "d.csv", content), delimiter=",")
    assert examples == [SentimentExample('Fine, "really"', "pos", 2),
                        SentimentExample("two\nlines", "neg", 3),
                        SentimentExample("last", "pos", 5)]


DELIMITED_MALFORMED = {
    "too few fields": "lonely\n",
    "too many fields": "a\tpos\textra\n",
    "unknown label": "a\tmixed\n",
    "empty label": "a\t\n",
    "empty text": " \tpos\n",
}


@pytest.mark.parametrize("bad", list(DELIMITED_MALFORMED.values()),
                         ids=list(DELIMITED_MALFORMED))
def test_delimited_malformed_row_raises_naming_file_and_line(tmp_path: Path, bad: str) -> None:
    path = _write(tmp_path, "d.tsv", "text\tlabel\nfine\tpos\n" + bad)
    with pytest.raises(ValueError, match=re.escape(f"{path}: line 3")):
        read_delimited(path, labels=["neg", "pos"])


def test_delimited_non_strict_skips_bad_rows_and_bad_utf8(tmp_path: Path) -> None:
    body = "text\tlabel\nfine\tpos\n" + "".join(DELIMITED_MALFORMED.values())
    path = _write(tmp_path, "d.tsv", body.encode() + b"bad \xff\tneg\nok\tneg\n")
    with pytest.warns(SentimentDataWarning, match=r"skipped 6 malformed") as record:
        examples = read_delimited(path, labels=["neg", "pos"], strict=False)
    assert len(record) == 1
    assert [(e.text, e.line) for e in examples] == [("fine", 2), ("ok", 9)]


def test_delimited_header_without_the_columns_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.csv", "sentence,polarity\nfine,pos\n")
    with pytest.raises(ValueError, match=r"line 1: the header .* lacks the column\(s\)"):
        read_delimited(path, delimiter=",", strict=False)


# ------------------------------------------------------------------------------ data module
def _tsv_corpus(folder: Path) -> Path:
    _write(folder, "train.tsv", "text\tlabel\nGood good film\tpos\nBad film\tneg\n"
                                "A good day\tpos\nRare words here\tneg\n")
    _write(folder, "dev.tsv", "text\tlabel\nGood day\tpos\nunseen zebra words\tneg\n")
    _write(folder, "test.tsv", "text\tlabel\nbad\tneg\n")
    return folder


def test_sizes_and_class_names_are_known_before_setup(tmp_path: Path) -> None:
    dm = SentimentDataModule(_tsv_corpus(tmp_path), format="tsv")
    assert dm.class_names == ("neg", "pos")  # sorted training labels
    assert dm.num_classes == 2
    assert dm.vocab_size == len(dm.vocab) == 2 + 8  # <unk>, <pad> and 8 lowercased words
    semeval = SentimentDataModule(tmp_path, format="semeval")
    assert semeval.class_names == SEMEVAL_LABELS
    assert SentimentDataModule(tmp_path, format="sst").class_names == SST2_LABELS
    assert SentimentDataModule(tmp_path, format="sst", sst_classes=5).num_classes == 5


def test_vocabulary_from_train_with_unk_pad_and_min_count(tmp_path: Path) -> None:
    dm = SentimentDataModule(_tsv_corpus(tmp_path), format="tsv", min_count=2)
    assert dm.vocab.itos == (UNK, PAD, "good", "film")  # lowercased, by count
    assert dm.pad_index == 1


def test_unknown_eval_words_are_reported_once_per_split(tmp_path: Path) -> None:
    dm = SentimentDataModule(_tsv_corpus(tmp_path), format="tsv")
    with pytest.warns(UserWarning, match=r"dev.tsv: 2 of 5 tokens \(40.00%\)"):
        dm.setup("fit")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dm.setup("fit")  # encoded once: no second report
        dm.setup("test")  # no unknown token: below the threshold, logged, not warned
    assert dm.dataset("valid").ids[1].tolist() == [0, 0, dm.vocab["words"]]


def test_batches_are_padded_batch_first_with_lengths_and_labels(tmp_path: Path) -> None:
    dm = SentimentDataModule(_tsv_corpus(tmp_path), format="tsv", batch_size=4)
    batch = next(iter(dm.train_dataloader()))
    assert isinstance(batch, ClassificationBatch)
    assert batch.tokens.shape == (4, int(batch.lengths.max())) and batch.tokens.dtype == torch.long
    for row, length in zip(batch.tokens, batch.lengths.tolist(), strict=True):
        assert (row[length:] == dm.pad_index).all() and (row[:length] != dm.pad_index).all()
    assert sorted(batch.labels.tolist()) == [0, 0, 1, 1]


def test_eval_loaders_split_examples_across_ranks_exactly_once(tmp_path: Path) -> None:
    lines = "".join(f"{'w ' * (i % 7 + 1)}\t{'pos' if i % 2 else 'neg'}\n" for i in range(23))
    for name in ("train.tsv", "dev.tsv", "test.tsv"):
        _write(tmp_path, name, "text\tlabel\n" + lines)
    seen = []
    for rank in range(2):
        dm = SentimentDataModule(tmp_path, format="tsv", batch_size=4, eval_batch_size=4)
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=2)  # type: ignore[assignment]
        sampler = dm.val_dataloader().sampler
        seen += list(sampler)
        train_batches = dm.train_dataloader().sampler.num_batches()  # type: ignore[union-attr]
        assert train_batches == 3  # 6 training batches of 4 on two ranks (23 padded to 24)
    assert sorted(seen) == list(range(23))


def test_training_order_is_shuffled_per_epoch_and_reproducible(tmp_path: Path) -> None:
    lines = "".join(f"word{i} x\tpos\n" for i in range(40))
    _write(tmp_path, "train.tsv", "text\tlabel\n" + lines + "y\tneg\n")
    dm = SentimentDataModule(tmp_path, format="tsv", batch_size=5, seed=3)
    sampler = dm.train_dataloader().sampler
    first = list(sampler)
    sampler.set_epoch(1)  # type: ignore[union-attr]
    assert list(sampler) != first and sorted(sampler) == sorted(first)
    again = SentimentDataModule(tmp_path, format="tsv", batch_size=5, seed=3)
    assert list(again.train_dataloader().sampler) == first


def test_tokens_follow_tokenizer_options_and_sst_leaves(tmp_path: Path) -> None:
    dm = SentimentDataModule(tmp_path, format="tsv", lowercase=False, normalize_twitter=False)
    assert dm.tokenizer_options == {"lowercase": False, "normalize_twitter": False}
    assert dm.tokens("@Ann can't") == ["@", "Ann", "ca", "n't"]
    sst = SentimentDataModule(tmp_path, format="sst")
    assert sst.tokens("It 's 8\xa01/2 Stars") == ["it", "'s", "8\xa01/2", "stars"]


def test_semeval_format_reads_the_preset_files(tmp_path: Path) -> None:
    for split, kind in (("train", "positive"), ("dev", "negative"), ("test", "neutral")):
        _write(tmp_path, f"twitter-2013{split}-A.tsv",
               f"1\t{kind}\t@Ann Loving it http://t.co/x\n2\tnegative\tno way\n")
    dm = SentimentDataModule(tmp_path, format="semeval", batch_size=2)
    dm.setup(None)
    assert "@user" in dm.vocab and "<url>" in dm.vocab
    assert dm.dataset("test").classes == [1, 0]


def test_state_dict_is_plain_data(tmp_path: Path) -> None:
    dm = SentimentDataModule(_tsv_corpus(tmp_path), format="tsv")
    state = dm.state_dict()
    assert state["class_names"] == ["neg", "pos"]
    assert state["tokenizer_options"] == {"lowercase": True, "normalize_twitter": True}
    assert Vocabulary.from_state(state["vocab"]) == dm.vocab
    other = SentimentDataModule(tmp_path, format="tsv", min_count=2)
    other.load_state_dict(state)
    assert other.vocab == dm.vocab


def test_data_dir_defaults_to_lrr_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LRR_DATA", str(tmp_path))
    dm = SentimentDataModule()
    assert dm.path("train") == tmp_path / "semeval_twitter" / "twitter-2013train-A.tsv"
    assert SentimentDataModule(format="sst").path("valid") == tmp_path / "sst" / "dev.txt"
    monkeypatch.delenv("LRR_DATA")
    with pytest.raises(ValueError, match="LRR_DATA"):
        SentimentDataModule(format="sst")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"format": "xml"}, "format must be one of"),
    ({"format": "sst", "labels": ["a", "b"]}, "fixed by sst_classes"),
    ({"format": "tsv", "labels": ["a", "a"]}, "distinct"),
    ({"sst_classes": 3}, "sst_classes must be 2 or 5"),
    ({"batch_size": 0}, "batch_size must be"),
])
def test_invalid_arguments_are_rejected(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SentimentDataModule(tmp_path, **kwargs)


def test_missing_file_names_itself_and_the_data_folder_setting(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"twitter-2013train-A.tsv: no such file.*LRR_DATA"):
        SentimentDataModule(tmp_path).vocab_size  # noqa: B018


def test_tsv_format_needs_a_data_dir() -> None:
    with pytest.raises(ValueError, match="needs data_dir"):
        SentimentDataModule(format="tsv")


# ------------------------------------------------------------------------ real shared files
#: Rows and duplicate ids per file, from the shared data README.
SEMEVAL_FILES = {
    "twitter-2013train-A.tsv": (9684, 35), "twitter-2013dev-A.tsv": (1654, 5),
    "twitter-2013test-A.tsv": (3547, 2), "twitter-2014test-A.tsv": (1853, 0),
    "twitter-2014sarcasm-A.tsv": (86, 0), "twitter-2015train-A.tsv": (489, 1),
    "twitter-2015test-A.tsv": (2390, 11), "twitter-2016train-A.tsv": (6000, 25),
    "twitter-2016dev-A.tsv": (1999, 2), "twitter-2016devtest-A.tsv": (2000, 2),
    "twitter-2016test-A.tsv": (20632, 76), "twitter-2017test-A.tsv": (12284, 0),
}


def _shared(shared_data_dir: Path, folder: str) -> Path:
    path = shared_data_dir / folder
    if not path.is_dir():
        pytest.skip(f"benchmark data not found at {path}")
    return path


def test_shared_semeval_files_read_strictly_with_documented_counts(shared_data_dir: Path) -> None:
    folder = _shared(shared_data_dir, "semeval_twitter")
    still_quoted = 0
    for name, (rows, duplicates) in SEMEVAL_FILES.items():
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            examples = read_semeval(folder / name)
        assert len(examples) == rows - duplicates, name
        messages = [str(w.message) for w in record]
        assert len(messages) == (1 if duplicates else 0), name
        assert all(f"dropped {duplicates} line(s)" in m for m in messages), name
        assert set(Counter(e.label for e in examples)) == set(SEMEVAL_LABELS), name
        assert not any("\\u" in e.text or "&amp;" in e.text for e in examples), name
        still_quoted += sum(e.text.startswith('"') and e.text.endswith('"') and '""' in e.text
                            for e in examples)
    assert still_quoted == 1  # one truncated field in 2014sarcasm ends on a lone quote


def test_shared_sst_files_give_the_standard_sst5_and_sst2_sets(shared_data_dir: Path) -> None:
    folder = _shared(shared_data_dir, "sst")
    sst5 = {"train": [1092, 2218, 1624, 2322, 1288], "dev": [139, 289, 229, 279, 165],
            "test": [279, 633, 389, 510, 399]}
    sst2 = {"train": (3310, 3610), "dev": (428, 444), "test": (912, 909)}
    for split in ("train", "dev", "test"):
        five = Counter(e.label for e in read_sst(folder / f"{split}.txt", classes=5))
        assert [five[name] for name in SST5_LABELS] == sst5[split], split
        two = Counter(e.label for e in read_sst(folder / f"{split}.txt", classes=2))
        assert (two["negative"], two["positive"]) == sst2[split], split


def test_shared_semeval2013_and_sst2_data_modules_build(shared_data_dir: Path) -> None:
    semeval = SentimentDataModule(_shared(shared_data_dir, "semeval_twitter"), batch_size=64)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")  # duplicate ids and unknown-word shares are reported
        semeval.setup("fit")
    assert semeval.num_classes == 3 and 10_000 < semeval.vocab_size < 40_000
    assert len(semeval.dataset("train")) == 9684 - 35
    sst = SentimentDataModule(_shared(shared_data_dir, "sst"), format="sst", batch_size=64)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        sst.setup("fit")
    assert sst.num_classes == 2 and 10_000 < sst.vocab_size < 20_000
    assert (len(sst.dataset("train")), len(sst.dataset("valid"))) == (6920, 872)
    batch = next(iter(sst.train_dataloader()))
    assert batch.tokens.shape[0] == 64
