"""Fixtures for the task tests: a small learnable corpus written to a temporary folder."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

SUBJECTS, VERBS, OBJECTS = ["the cat", "a dog", "my bird"], ["sees", "likes"], ["fish", "milk"]


def write_pattern_corpus(root: Path, sizes: tuple[int, int, int] = (1500, 200, 200)) -> Path:
    """Sentences of a tiny grammar (5 tokens each with ``<eos>``) in train/valid/test.txt."""
    rng = random.Random(0)

    def lines(n: int) -> str:
        return "\n".join(
            f" {rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} " for _ in range(n)
        ) + "\n"

    for name, n in zip(("train.txt", "valid.txt", "test.txt"), sizes, strict=True):
        (root / name).write_text(lines(n))
    return root


@pytest.fixture
def pattern_corpus(tmp_path: Path) -> Path:
    """A learnable corpus: sentences from a tiny grammar, 3 splits."""
    return write_pattern_corpus(tmp_path)


@pytest.fixture(scope="module")
def module_pattern_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same corpus, shared by the tests of one module (for module-scoped runs)."""
    return write_pattern_corpus(tmp_path_factory.mktemp("pattern_corpus"))
