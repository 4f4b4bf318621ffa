"""Fixtures for the data tests: the shared benchmark folder and a tiny on-disk corpus."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The benchmark datasets: ``$LRR_DATA`` if set, else ``<repo>/../shared/data``."""
    root = os.environ.get("LRR_DATA")
    return Path(root) if root else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def toy_corpus(tmp_path: Path) -> Path:
    """A three-split word corpus: train has 6 lines, 21 tokens incl. ``<eos>``."""
    lines = [" the cat sat ", " the dog sat ", " a cat ran ", "", " the end ", " x y z w "]
    train = "\n".join(lines)
    (tmp_path / "train.txt").write_text(train + "\n")
    (tmp_path / "valid.txt").write_text(" the cat ran \n the dog sat \n" * 3)
    (tmp_path / "test.txt").write_text(" a dog sat \n the cat ran \n" * 3)
    return tmp_path
