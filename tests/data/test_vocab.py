"""Vocabulary: order, min_count folding, unknown counting, plain-data round trip."""

from __future__ import annotations

import io

import pytest
import torch

from lightning_rnn_reg.data.vocab import EOS, UNK, Vocabulary

LINES = [["b", "a", "c", EOS], ["a", "b", "d", EOS], ["a", EOS]]


def test_build_orders_specials_then_count_then_first_occurrence() -> None:
    vocab = Vocabulary.build(LINES)
    # a: 3, b: 2, c: 1, d: 1 (c seen before d)
    assert vocab.itos == (UNK, EOS, "a", "b", "c", "d")
    assert vocab.stoi == {t: i for i, t in enumerate(vocab.itos)}


def test_build_always_has_unk_even_if_unseen() -> None:
    vocab = Vocabulary.build([["x", EOS]])
    assert UNK in vocab and vocab.unk_index == 0 and len(vocab) == 3


def test_build_keeps_unk_seen_in_data_once() -> None:
    vocab = Vocabulary.build([["a", UNK, EOS], [UNK, EOS]])
    assert vocab.itos == (UNK, EOS, "a")
    assert vocab.counts == (2, 2, 1)


def test_build_min_count_folds_rare_tokens_into_unk() -> None:
    vocab = Vocabulary.build(LINES, min_count=2)
    assert vocab.itos == (UNK, EOS, "a", "b")
    assert vocab.counts[vocab.unk_index] == 2  # c and d folded


def test_build_custom_specials_come_first_in_order() -> None:
    vocab = Vocabulary.build(LINES, specials=("<pad>", EOS))
    assert vocab.itos[:3] == (UNK, "<pad>", EOS)


def test_build_rejects_bad_min_count() -> None:
    with pytest.raises(ValueError, match="min_count"):
        Vocabulary.build(LINES, min_count=0)


def test_build_rejects_string_lines() -> None:
    with pytest.raises(TypeError, match="sequence of tokens"):
        Vocabulary.build(["a b c"])


def test_encode_maps_unknown_to_unk_and_counts_them() -> None:
    vocab = Vocabulary.build(LINES)
    ids, unknown = vocab.encode_with_unknown(["a", "zzz", UNK, "d", "qq"])
    assert ids.dtype == torch.long
    assert ids.tolist() == [2, 0, 0, 5, 0]
    assert unknown == 2  # the literal <unk> is in the vocabulary


def test_encode_rejects_a_plain_string() -> None:
    with pytest.raises(TypeError, match="not a str"):
        Vocabulary.build(LINES).encode("a b")


def test_decode_inverts_encode() -> None:
    vocab = Vocabulary.build(LINES)
    tokens = ["a", "b", EOS, "d"]
    assert vocab.decode(vocab.encode(tokens)) == tokens
    assert vocab.decode([2, 3]) == ["a", "b"]


def test_decode_rejects_2d_tensor() -> None:
    with pytest.raises(ValueError, match="1-D"):
        Vocabulary.build(LINES).decode(torch.zeros(2, 2, dtype=torch.long))


def test_len_contains_getitem() -> None:
    vocab = Vocabulary.build(LINES)
    assert len(vocab) == 6
    assert "a" in vocab and "zzz" not in vocab
    assert vocab["b"] == 3 and vocab["zzz"] == vocab.unk_index


def test_state_is_plain_data_and_round_trips_through_weights_only_load() -> None:
    vocab = Vocabulary.build(LINES, min_count=2)
    state = vocab.to_state()
    assert set(state) == {"format", "itos", "unk", "counts"}
    assert all(isinstance(t, str) for t in state["itos"])
    buffer = io.BytesIO()
    torch.save({"vocab": state}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    restored = Vocabulary.from_state(loaded["vocab"])
    assert restored == vocab
    assert restored.counts == vocab.counts


def test_from_state_rejects_other_data() -> None:
    with pytest.raises(ValueError, match="not a Vocabulary state"):
        Vocabulary.from_state({"tokens": []})


def test_equality_compares_token_order() -> None:
    assert Vocabulary([UNK, "a", "b"]) == Vocabulary([UNK, "a", "b"])
    assert Vocabulary([UNK, "a", "b"]) != Vocabulary([UNK, "b", "a"])
    assert Vocabulary([UNK, "a"]) != [UNK, "a"]


def test_constructor_rejects_duplicates_and_missing_unk() -> None:
    with pytest.raises(ValueError, match="unique"):
        Vocabulary([UNK, "a", "a"])
    with pytest.raises(ValueError, match="unknown token"):
        Vocabulary(["a", "b"])
