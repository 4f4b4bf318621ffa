"""Raw text for language models: ``text_to_tokens`` / ``tokens_to_text`` read text as the corpus
reader reads files, and ``TextCorpus``'s predict split gives raw texts, one per line."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from lightning_rnn_reg.data import TextCorpus, language_modeling
from lightning_rnn_reg.data.language_modeling import read_corpus, text_to_tokens, tokens_to_text

TEXT = " the cat  sat \n\n a dog ran\n"


def test_doctests_of_the_text_functions_pass() -> None:
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner()
    for function in (text_to_tokens, tokens_to_text):
        for test in finder.find(function, globs=vars(language_modeling)):
            runner.run(test)
    assert runner.failures == 0


def test_text_to_tokens_at_word_level_equals_read_corpus_of_a_file_with_the_text(
        tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text(TEXT)
    expected = [token for line in read_corpus(tmp_path / "t.txt") for token in line]
    assert text_to_tokens(TEXT) == expected


def test_text_to_tokens_at_char_level_equals_read_corpus_of_the_ptb_char_spelling(
        tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text(" t h e _ c a t _ s a t \n \n a _ d o g _ r a n \n ")
    expected = [token for line in read_corpus(tmp_path / "t.txt", "char") for token in line]
    assert text_to_tokens(TEXT, "char") == expected


def test_text_to_tokens_without_word_boundary_joins_the_words_characters() -> None:
    assert text_to_tokens("a cat", "char", word_boundary=None) == ["a", "c", "a", "t", "<eos>"]


def test_text_to_tokens_of_the_empty_text_is_one_empty_line() -> None:
    assert text_to_tokens("") == ["<eos>"]


@pytest.mark.parametrize("level", ["word", "char"])
def test_tokens_to_text_inverts_text_to_tokens(level: str) -> None:
    tokens = text_to_tokens(TEXT, level)
    assert text_to_tokens(tokens_to_text(tokens, level), level) == tokens


def test_text_to_tokens_rejects_what_is_not_a_str() -> None:
    with pytest.raises(TypeError, match="takes a str"):
        text_to_tokens(["the", "cat"])  # type: ignore[arg-type]


def test_text_to_tokens_rejects_an_unknown_level() -> None:
    with pytest.raises(ValueError, match="unknown level 'chars'"):
        text_to_tokens("a", "chars")


# ----------------------------------------------------------------------- predict split
def _corpus(root: Path, level: str = "word") -> Path:
    lines = {"word": " the cat sat \n a dog ran \n", "char": " t h e _ c a t \n a _ d o g \n "}
    for name in ("train.txt", "valid.txt", "test.txt"):
        (root / name).write_text(lines[level])
    return root


def test_predict_texts_are_the_predict_file_lines_empty_ones_included(tmp_path: Path) -> None:
    (tmp_path / "prompts.txt").write_text("the cat\n\na dog ran\n")
    data = TextCorpus(_corpus(tmp_path), predict_file=tmp_path / "prompts.txt")
    assert data.predict_texts() == ["the cat", "", "a dog ran"]


def test_predict_texts_default_to_the_test_lines_as_raw_text(tmp_path: Path) -> None:
    data = TextCorpus(_corpus(tmp_path, "char"), level="char")
    assert data.predict_texts() == ["the cat", "a dog"]


def test_predict_dataloader_gives_lists_of_eval_batch_size_texts(tmp_path: Path) -> None:
    (tmp_path / "prompts.txt").write_text("a\nb\nc\n")
    data = TextCorpus(_corpus(tmp_path), eval_batch_size=2,
                      predict_file=tmp_path / "prompts.txt")
    data.setup("predict")
    assert list(data.predict_dataloader()) == [["a", "b"], ["c"]]


def test_setup_predict_with_a_predict_file_needs_no_test_file(tmp_path: Path) -> None:
    _corpus(tmp_path)
    (tmp_path / "test.txt").unlink()
    (tmp_path / "prompts.txt").write_text("the cat\n")
    data = TextCorpus(tmp_path, predict_file=tmp_path / "prompts.txt")
    data.setup("predict")
    assert data.predict_texts() == ["the cat"]


def test_a_missing_predict_file_is_named(tmp_path: Path) -> None:
    data = TextCorpus(_corpus(tmp_path), predict_file=tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match=r"nope\.txt"):
        data.setup("predict")
