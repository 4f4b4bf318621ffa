"""Shared test configuration: every test starts from the same torch RNG state."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    """Seed torch's global generator so mask draws are reproducible test by test."""
    torch.manual_seed(0)
