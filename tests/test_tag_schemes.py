"""Tag schemes: conlleval's span reading, validity per scheme, conversions that round trip."""

from __future__ import annotations

import itertools
import random

import pytest

from lightning_rnn_reg.tag_schemes import (
    SCHEMES,
    allowed_transitions,
    convert_tags,
    invalid_positions,
    span_types,
    spans,
    split_tag,
    tags_from_spans,
)


def _random_spans(rng: random.Random, length: int) -> list[tuple[str, int, int]]:
    """Sorted, non-overlapping spans, often adjacent and of the same type."""
    found, position = [], 0
    while position < length:
        if rng.random() < 0.4:
            position += 1
            continue
        end = min(length, position + rng.randint(1, 3))
        found.append((rng.choice(["PER", "LOC"]), position, end))
        position = end
    return found


def test_spans_follow_conlleval_rules_in_every_scheme():
    assert spans(["I-PER", "I-PER", "B-PER", "O", "I-LOC"]) == [
        ("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 5)]
    assert spans(["B-PER", "I-PER", "B-PER", "O", "B-LOC"]) == [
        ("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 5)]
    assert spans(["B-PER", "E-PER", "S-PER", "O", "S-LOC"]) == [
        ("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 5)]
    # lenient reading of invalid sequences, as conlleval does
    assert spans(["O", "I-PER", "I-LOC", "E-LOC", "E-LOC"]) == [
        ("PER", 1, 2), ("LOC", 2, 4), ("LOC", 4, 5)]
    assert spans(["B-PER", "O", "S-LOC", "I-LOC"]) == [("PER", 0, 1), ("LOC", 2, 3),
                                                       ("LOC", 3, 4)]
    assert spans([]) == [] and spans(["O", "O"]) == []


def test_split_tag_rejects_unknown_prefixes():
    assert split_tag("B-ORG-X") == ("B", "ORG-X")
    for tag in ("X-PER", "B", "B-", "PER"):
        with pytest.raises(ValueError, match="prefixes"):
            split_tag(tag)
    with pytest.raises(ValueError, match="IOB2"):
        split_tag("E-PER", "IOB2")


def test_invalid_positions_blame_the_tag_to_change():
    assert invalid_positions(["I-PER", "B-PER", "I-PER"], "IOB1") == []
    assert invalid_positions(["O", "B-MISC", "I-MISC"], "IOB1") == []  # eng.train has these
    assert invalid_positions(["I-PER", "O", "I-LOC", "B-LOC", "I-PER"], "IOB2") == [0, 2, 4]
    assert invalid_positions(["B-PER", "I-PER", "O", "I-LOC", "S-LOC", "B-LOC"], "IOBES") == [
        1, 3, 5]
    assert invalid_positions(["B-PER", "E-LOC"], "IOBES") == [1]


@pytest.mark.parametrize("source", SCHEMES)
@pytest.mark.parametrize("target", SCHEMES)
def test_conversions_round_trip_and_keep_spans(source: str, target: str):
    rng = random.Random(0)
    for _ in range(300):
        length = rng.randint(0, 9)
        entities = _random_spans(rng, length)
        tags = tags_from_spans(entities, length, source)
        assert invalid_positions(tags, source) == []
        assert spans(tags) == entities
        converted = convert_tags(tags, source, target)
        assert invalid_positions(converted, target) == []
        assert spans(converted) == entities
        assert convert_tags(converted, target, source) == tags


def test_known_conversions():
    iob1 = ["I-PER", "I-PER", "B-PER", "O", "I-LOC"]
    assert convert_tags(iob1, "IOB1", "IOB2") == ["B-PER", "I-PER", "B-PER", "O", "B-LOC"]
    assert convert_tags(iob1, "IOB1", "IOBES") == ["B-PER", "E-PER", "S-PER", "O", "S-LOC"]
    assert convert_tags(["O", "B-MISC"], "IOB1", "IOB1") == ["O", "I-MISC"]
    with pytest.raises(ValueError, match="index 1 is not valid IOB2"):
        convert_tags(["O", "I-PER"], "IOB2", "IOBES")


def test_tags_from_spans_rejects_overlaps():
    with pytest.raises(ValueError, match="non-overlapping"):
        tags_from_spans([("PER", 0, 2), ("LOC", 1, 3)], 4, "IOB2")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_allowed_transitions_accept_exactly_the_valid_sequences(scheme: str):
    prefixes = ["B", "I", "E", "S"] if scheme == "IOBES" else ["B", "I"]
    names = ["O"] + [f"{p}-{kind}" for kind in ("A", "B") for p in prefixes]
    start, transitions, end = allowed_transitions(names, scheme)
    for length in (1, 2, 3):
        for path in itertools.product(range(len(names)), repeat=length):
            allowed = bool(start[path[0]]) and bool(end[path[-1]]) and all(
                bool(transitions[a, b]) for a, b in itertools.pairwise(path))
            valid = not invalid_positions([names[i] for i in path], scheme)
            assert allowed == valid, [names[i] for i in path]


def test_span_types_in_order_of_appearance():
    assert span_types(["O", "B-PER", "I-PER", "S-LOC", "E-PER"]) == ["PER", "LOC"]
