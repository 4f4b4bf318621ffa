"""In-memory data modules: ``SentimentDataModule.from_examples`` and ``CoNLL2003.from_sentences``
give what the file-based modules give for the same data written to files, and reject bad
input (the split and index named)."""

from __future__ import annotations

import random
import warnings
from pathlib import Path
from typing import Any

import pytest

from lightning_rnn_reg.data import CoNLL2003, CoNLLFormatWarning, SentimentDataModule
from lightning_rnn_reg.data.sentiment import SentimentDataWarning

# ---------------------------------------------------------------------------- sentiment
WORDS = ["the", "film", "was", "a", "plot", "really", "so", "@bob", "http://t.co/x", "it"]


def _examples(n: int, seed: int) -> list[tuple[str, str]]:
    """Texts of a few words; the label shows in a keyword (``Awful!`` / ``Great :)``)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        label = rng.choice(["negative", "neutral", "positive"])
        words = rng.choices(WORDS, k=rng.randint(2, 6))
        keyword = {"negative": ["Awful!"], "neutral": [], "positive": ["Great", ":)"]}[label]
        out.append((" ".join(words + keyword), label))
    return out


TRAIN, VALID, TEST = _examples(40, 0), _examples(12, 1), _examples(9, 2)
OPTIONS: dict[str, Any] = {"batch_size": 4, "eval_batch_size": 5, "min_count": 1, "seed": 3}


def _tsv(root: Path) -> SentimentDataModule:
    for name, examples in (("train.tsv", TRAIN), ("dev.tsv", VALID), ("test.tsv", TEST)):
        (root / name).write_text("text\tlabel\n" + "".join(f"{t}\t{lab}\n" for t, lab in examples))
    return SentimentDataModule(root, format="tsv", **OPTIONS)


def _memory(**options: Any) -> SentimentDataModule:
    return SentimentDataModule.from_examples(TRAIN, VALID, TEST, **{**OPTIONS, **options})


def _batches(loader: Any) -> list[tuple[list, ...]]:
    return [tuple(t.tolist() for t in batch) for batch in loader]


@pytest.mark.parametrize("loader", ["train_dataloader", "val_dataloader", "test_dataloader",
                                    "predict_dataloader"])
def test_from_examples_batches_equal_those_of_the_tsv_files(tmp_path: Path, loader: str):
    files, memory = _tsv(tmp_path), _memory()
    files.setup("fit")
    memory.setup("fit")
    assert _batches(getattr(memory, loader)()) == _batches(getattr(files, loader)())


def test_from_examples_vocabulary_equals_that_of_the_tsv_files(tmp_path: Path):
    assert _memory().vocab == _tsv(tmp_path).vocab


@pytest.mark.parametrize("size", ["vocab_size", "num_classes", "class_names",
                                  "tokenizer_options", "pad_index"])
def test_from_examples_sizes_equal_those_of_the_tsv_files(tmp_path: Path, size: str):
    assert getattr(_memory(), size) == getattr(_tsv(tmp_path), size)


def test_from_examples_checkpoint_state_equals_that_of_the_tsv_files(tmp_path: Path):
    assert _memory().state_dict() == _tsv(tmp_path).state_dict()


def test_from_examples_classes_are_the_declared_labels_in_their_order():
    labels = ("positive", "neutral", "negative")
    assert _memory(labels=labels).class_names == labels


def test_from_examples_without_test_has_no_test_split():
    assert not SentimentDataModule.from_examples(TRAIN, VALID).has_split("test")


def test_from_examples_without_test_sets_up_every_split_it_has():
    data = SentimentDataModule.from_examples(TRAIN, VALID)
    data.setup(None)
    assert len(data.dataset("valid")) == len(VALID)


def test_from_examples_without_test_refuses_the_test_loader():
    data = SentimentDataModule.from_examples(TRAIN, VALID)
    with pytest.raises(ValueError, match=r"no test split \(from_examples was given test=None\)"):
        data.test_dataloader()


def test_file_modules_have_every_split(tmp_path: Path):
    assert all(_tsv(tmp_path).has_split(split) for split in ("train", "valid", "test"))


@pytest.mark.parametrize(("train", "valid", "options", "error", "match"), [
    ([], VALID, {}, ValueError, r"train is empty"),
    (TRAIN, [], {}, ValueError, r"valid is empty"),
    ([("good", "positive"), ("bad", "angry")], VALID, {"labels": ["negative", "positive"]},
     ValueError, r"train example 1: unknown label 'angry' \(expected one of \['negative', "
                 r"'positive'\]\)"),
    ([("good", "pos"), ("bad", "neg")], [("meh", "neg"), ("ok", "neutral")], {}, ValueError,
     r"valid example 1: unknown label 'neutral'"),
    ([("good", "pos"), ("  ", "neg")], VALID, {}, ValueError, r"train example 1: empty text"),
    ([("good", "pos"), ("bad", 0)], VALID, {}, TypeError,
     r"train example 1: the label must be a str, got int 0"),
    ([("good", "pos"), "bad"], VALID, {}, TypeError,
     r"train example 1: expected a \(text, label\) pair"),
    ("train.tsv", VALID, {}, TypeError, r"train must be a sequence of \(text, label\) pairs"),
    (TRAIN, VALID, {"format": "sst"}, TypeError, r"\['format'\] are options of data files"),
])
def test_from_examples_rejects_bad_input_naming_split_and_example(
        train: Any, valid: Any, options: dict, error: type, match: str):
    with pytest.raises(error, match=match):
        SentimentDataModule.from_examples(train, valid, **options)


def test_from_examples_not_strict_drops_malformed_examples_with_one_warning():
    with pytest.warns(SentimentDataWarning, match=r"train: skipped 2 malformed example\(s\)"):
        data = SentimentDataModule.from_examples(
            [("good", "pos"), ("", "neg"), ("bad", "neg"), ("x", "")], [("fine", "pos")],
            labels=["neg", "pos"], strict=False)
    assert [e.text for e in data._train_examples()] == ["good", "bad"]


# ---------------------------------------------------------------------------------- CoNLL
IOB1 = [
    (["EU", "rejects", "German", "call"], ["I-ORG", "O", "I-MISC", "O"]),
    (["Peter", "Blackburn", "met", "John"], ["I-PER", "I-PER", "O", "I-PER"]),
    (["Paris", "London", "and", "New", "York"], ["I-LOC", "B-LOC", "O", "I-LOC", "I-LOC"]),
    (["The", "market", "was", "good", "."], ["O", "O", "O", "O", "O"]),
    (["Reuters", "said", "Mary", "Anna", "left"], ["I-ORG", "O", "I-PER", "B-PER", "O"]),
]
SENTENCES = {"train": IOB1 * 3, "valid": IOB1[1:4], "test": IOB1[::2]}
TAGGING: dict[str, Any] = {"batch_size": 2, "eval_batch_size": 3, "char_vocab": True,
                           "lowercase": True, "seed": 1}


def _columns(root: Path) -> CoNLL2003:
    for split, sentences in SENTENCES.items():
        (root / f"{split}.txt").write_text("-DOCSTART- -X- O O\n\n" + "\n".join(
            "".join(f"{token} NNP I-NP {tag}\n" for token, tag in zip(*s, strict=True))
            for s in sentences))
    return CoNLL2003(root, train="train.txt", valid="valid.txt", test="test.txt", **TAGGING)


def _tagged(**options: Any) -> CoNLL2003:
    return CoNLL2003.from_sentences(SENTENCES["train"], SENTENCES["valid"], SENTENCES["test"],
                                    **{**TAGGING, **options})


def _tag_batches(loader: Any) -> list[tuple[Any, ...]]:
    return [tuple(t.tolist() if t is not None else None for t in batch) for batch in loader]


@pytest.mark.parametrize("loader", ["train_dataloader", "val_dataloader", "test_dataloader",
                                    "predict_dataloader"])
def test_from_sentences_batches_equal_those_of_the_column_files(tmp_path: Path, loader: str):
    files, memory = _columns(tmp_path), _tagged()
    files.setup(None)
    memory.setup(None)
    assert _tag_batches(getattr(memory, loader)()) == _tag_batches(getattr(files, loader)())


def test_from_sentences_vocabularies_equal_those_of_the_column_files(tmp_path: Path):
    assert _tagged().vocabulary == _columns(tmp_path).vocabulary


@pytest.mark.parametrize("size", ["vocab_size", "num_tags", "char_vocab_size", "tag_names"])
def test_from_sentences_sizes_equal_those_of_the_column_files(tmp_path: Path, size: str):
    assert getattr(_tagged(), size) == getattr(_columns(tmp_path), size)


def test_from_sentences_checkpoint_state_equals_that_of_the_column_files(tmp_path: Path):
    assert _tagged().state_dict() == _columns(tmp_path).state_dict()


def test_from_sentences_converts_the_declared_scheme_to_iobes():
    data = CoNLL2003.from_sentences([(["New", "York", "is"], ["B-LOC", "I-LOC", "O"])],
                                    [(["is"], ["O"])], tag_scheme="IOB2")
    assert data.sentences("train")[0].tags == ["B-LOC", "E-LOC", "O"]


def test_from_sentences_without_test_has_no_test_split():
    assert not CoNLL2003.from_sentences(IOB1, IOB1).has_split("test")


def test_from_sentences_without_test_refuses_the_predict_loader():
    data = CoNLL2003.from_sentences(IOB1, IOB1)
    with pytest.raises(ValueError, match=r"no test split \(from_sentences was given test=None\)"):
        data.predict_dataloader()


IOB2_TRAIN = [(["John", "Smith", "left"], ["B-PER", "I-PER", "O"]),
              (["Mary", "Jones", "came"], ["B-PER", "I-PER", "O"])]


def test_iob2_tags_declared_iobes_raise_naming_the_first_bad_tag():
    with pytest.raises(ValueError, match=r"train sentence 0, token 1: tag 'I-PER' between "
                                         r"'B-PER' and 'O' is not valid IOBES"):
        CoNLL2003.from_sentences(IOB2_TRAIN, IOB2_TRAIN, tag_scheme="IOBES")


def test_iob2_tags_declared_iobes_in_a_column_file_raise_naming_the_line(tmp_path: Path):
    for split in ("train", "valid", "test"):
        (tmp_path / f"{split}.txt").write_text("John B-PER\nSmith I-PER\nleft O\n")
    data = CoNLL2003(tmp_path, train="train.txt", valid="valid.txt", test="test.txt",
                     tag_scheme="IOBES")
    with pytest.raises(ValueError, match=r"train.txt: line 2: tag 'I-PER' between 'B-PER' and "
                                         r"'O' is not valid IOBES"):
        _ = data.vocab_size


def test_iob2_tags_declared_iobes_not_strict_are_repaired_with_one_warning():
    with pytest.warns(CoNLLFormatWarning, match=r"train: strict=False repaired 2 invalid IOBES "
                                                r"tag\(s\).*sentence 0, token 1"):
        data = CoNLL2003.from_sentences(IOB2_TRAIN, [(["left"], ["O"])], tag_scheme="IOBES",
                                        strict=False)
    assert data.sentences("train")[0].tags == ["B-PER", "E-PER", "O"]


@pytest.mark.parametrize(("train", "valid", "options", "error", "match"), [
    ([], IOB1, {}, ValueError, r"train is empty"),
    (IOB1, [(["EU", "says"], ["I-ORG"])], {}, ValueError,
     r"valid sentence 0: 2 tokens but 1 tags"),
    ([*IOB1, ([], [])], IOB1, {}, ValueError, r"train sentence 5: an empty sentence"),
    ([(["EU", ""], ["I-ORG", "O"])], IOB1, {}, ValueError, r"train sentence 0, token 1: an empty "
                                                           r"token"),
    ([("EU rejects", ["I-ORG", "O"])], IOB1, {}, TypeError,
     r"train sentence 0: tokens must be a list of str"),
    ([(["EU"], ["E-ORG"])], IOB1, {"tag_scheme": "IOB2"}, ValueError,
     r"train sentence 0, token 0: tag 'E-ORG' is not 'O' or one of the prefixes \['B', 'I'\]"),
    (IOB1[:1], [(["Paris"], ["I-LOC"])], {}, ValueError,
     r"valid sentence 0, token 0: entity type 'LOC' does not occur in train"),
    ("eng.train", IOB1, {}, TypeError, r"train must be a sequence of \(tokens, tags\) pairs"),
    (IOB1, IOB1, {"tag_scheme": "BIO"}, ValueError, r"unknown tag scheme 'BIO'"),
    (IOB1, IOB1, {"token_column": 1}, TypeError, r"\['token_column'\] are options of column"),
])
def test_from_sentences_rejects_bad_input_naming_split_and_sentence(
        train: Any, valid: Any, options: dict, error: type, match: str):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(error, match=match):
            CoNLL2003.from_sentences(train, valid, **options)
