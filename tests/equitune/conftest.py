"""Shared fixtures of the equitune tests: float64 for the exactness checks (spec §8: atol 1e-10 under x64)."""

import jax
import pytest


@pytest.fixture
def x64():
    with jax.enable_x64(True):
        yield
