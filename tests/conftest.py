"""Shared test configuration: every test starts from the same torch RNG state."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    """Seed torch's global generator so mask draws are reproducible test by test."""
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tests on one torch thread: tiny models are fastest so, and do not stall
    in thread oversubscription on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
