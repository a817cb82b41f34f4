"""Shared helpers of the fusion tests: tiny models, probe data, tree comparisons."""

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np

from common_jax.models import ViTConfig
from fusion_jax import ActsConfig, FusionConfig

TINY = ViTConfig(image_size=28, patch_size=7, num_channels=1, num_classes=10, hidden_dim=32, num_layers=2,
                 num_heads=4, mlp_dim=64, pool="cls")


def tiny_vit(seed: int = 0, **changes):
    import dataclasses

    return dataclasses.replace(TINY, **changes).build(key=jax.random.PRNGKey(seed))


def probe_images(n: int = 24, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 28, 28, 1)).astype(np.float32)


@eqx.filter_jit
def _apply(model, x):
    return model(x)


def logits(model, images: np.ndarray) -> np.ndarray:
    x = hax.named(jnp.asarray(images), ("batch", "height", "width", "channel"))
    return np.asarray(_apply(model, x).array)


def config(**changes) -> FusionConfig:
    """A fusion config for the tiny ViT: window filter on its 4x4 grid, everything else as given."""
    changes.setdefault("acts", ActsConfig(seq_filter="window_2", num_samples=24, batch_size=24))
    return FusionConfig(**changes)


def leaves(model) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(eqx.filter(model, eqx.is_array))]


def max_difference(a, b) -> float:
    return max(float(np.abs(x - y).max()) for x, y in zip(leaves(a), leaves(b)))


def assert_same_weights(a, b):
    la, lb = leaves(a), leaves(b)
    assert len(la) == len(lb) > 0
    for x, y in zip(la, lb):
        np.testing.assert_array_equal(x, y)
