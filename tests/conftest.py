"""Test-wide setup: 8 fake CPU devices (ARCHITECTURE.md, "Sharding and scale"), set before JAX is imported."""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run in a fresh directory, so runs write their logs, caches and checkpoints there."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(autouse=True)
def float32_by_default():
    """Each test starts in float32: a test that wants float64 opens ``jax.enable_x64(True)`` itself."""
    import jax

    jax.config.update("jax_enable_x64", False)
    yield
