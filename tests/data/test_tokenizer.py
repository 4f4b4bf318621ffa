"""The word tokenizer (``lightning_rnn_reg.data.tokenizer``): each documented rule."""

from __future__ import annotations

import doctest

import pytest

from lightning_rnn_reg.data import tokenizer
from lightning_rnn_reg.data.tokenizer import tokenize


def test_doctests_pass() -> None:
    assert doctest.testmod(tokenizer).failed == 0


@pytest.mark.parametrize(("text", "expected"), [
    ("don't", ["do", "n't"]),
    ("can't", ["ca", "n't"]),
    ("it's", ["it", "'s"]),
    ("we're we've I'm I'd you'll", ["we", "'re", "we", "'ve", "I", "'m", "I", "'d", "you",
                                    "'ll"]),
    ("o'clock rock'n'roll", ["o'clock", "rock'n'roll"]),
    ("the dogs' bowl", ["the", "dogs", "'", "bowl"]),
])
def test_clitics_split_penn_treebank_style(text: str, expected: list[str]) -> None:
    assert tokenize(text) == expected


def test_typographic_apostrophes_read_as_ascii() -> None:
    assert tokenize("I\u2019m sure it\u2018s") == ["I", "'m", "sure", "it", "'s"]


def test_hyphenated_words_numbers_and_abbreviations_stay_whole() -> None:
    assert tokenize("A well-made film, $1,000 at 10:30 in the U.S. on 3.5") == [
        "A", "well-made", "film", ",", "$", "1,000", "at", "10:30", "in", "the", "U.S.", "on",
        "3.5"]


def test_runs_of_one_punctuation_character_are_one_token() -> None:
    assert tokenize("Wait... what?!! -- no") == ["Wait", "...", "what", "?", "!!", "--", "no"]


def test_emoticons_and_hashtags_are_single_tokens() -> None:
    assert tokenize("so good :) :-( ;P <3 :))) #bestday") == [
        "so", "good", ":)", ":-(", ";P", "<3", ":)))", "#bestday"]


def test_emoticon_needs_a_word_boundary_after_the_mouth() -> None:
    assert tokenize("note:Pretty") == ["note", ":", "Pretty"]


def test_twitter_normalisation_replaces_urls_and_handles() -> None:
    text = "@Bob_1 look http://t.co/AbC1. and www.example.com/x?y=1 (mail a@b.com)"
    assert tokenize(text) == ["@user", "look", "<url>", ".", "and", "<url>", "(", "mail", "a",
                              "@", "b", ".", "com", ")"]


def test_without_twitter_normalisation_urls_and_handles_are_split() -> None:
    assert tokenize("@Bob http://x.io", normalize_twitter=False) == [
        "@", "Bob", "http", ":/", "/", "x", ".", "io"]  # ":/" is an emoticon


def test_lowercase_keeps_placeholders() -> None:
    assert tokenize("GREAT @Bob https://T.CO/X #WoW :D", lowercase=True) == [
        "great", "@user", "<url>", "#wow", ":d"]


def test_empty_and_blank_text_give_no_tokens() -> None:
    assert tokenize("") == [] and tokenize(" \t\n") == []


def test_every_non_space_character_lands_in_a_token() -> None:
    text = "Ünïcode ✓ 😂😂 ½ x_y"
    tokens = tokenize(text)
    assert "".join(tokens) == "".join(text.split())
    assert tokens == ["Ünïcode", "✓", "😂😂", "½", "x_y"]


def test_is_deterministic() -> None:
    text = "Can't wait!!! @a http://b.c :) #d"
    assert tokenize(text, lowercase=True) == tokenize(text, lowercase=True)
