"""Fixtures for the benchmark-script tests: the scripts in ``benchmarks/`` as modules."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def bench_module(monkeypatch: pytest.MonkeyPatch):
    """Import a script of ``benchmarks/`` by name (the folder is not a package)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))

    def load(name: str) -> ModuleType:
        return importlib.import_module(name)

    return load
