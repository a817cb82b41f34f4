"""The paper's training augmentations in JAX (common_jax/data/augment.py, added for CRATE's recipe)."""

import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from common_jax.data.augment import AugmentConfig, horizontal_flip, random_resized_crop, random_shift

KEY = jax.random.PRNGKey(0)


def test_full_scale_crop_is_identity():
    images = jnp.asarray(np.random.default_rng(0).normal(size=(3, 8, 10, 2)), jnp.float32)
    out = random_resized_crop(KEY, images, scale=(1.0, 1.0), ratio=(10 / 8, 10 / 8))
    np.testing.assert_allclose(np.asarray(out), np.asarray(images), atol=1e-5)


def test_crop_keeps_shape_and_zooms_into_the_image():
    ramp = jnp.broadcast_to(jnp.arange(16.0)[None, None, :, None], (64, 16, 16, 1))  # along width
    out = random_resized_crop(KEY, ramp, scale=(0.1, 0.3))
    assert out.shape == ramp.shape
    spans = np.asarray(out[:, :, -1, 0].mean(1) - out[:, :, 0, 0].mean(1))
    assert (spans < 15).all() and (spans > 0).all()  # a zoomed crop of a ramp is a flatter ramp
    assert len(np.unique(np.round(spans, 3))) > 10  # each image draws its own crop


def test_flip_and_shift_are_permutations_of_pixels():
    images = jnp.asarray(np.random.default_rng(1).normal(size=(32, 5, 6, 1)), jnp.float32)
    flipped = np.asarray(horizontal_flip(KEY, images))
    same = [(flipped[i] == np.asarray(images[i])).all() for i in range(32)]
    mirrored = [(flipped[i] == np.asarray(images[i, :, ::-1])).all() for i in range(32)]
    assert all(a or b for a, b in zip(same, mirrored)) and 0 < sum(mirrored) < 32
    shifted = np.asarray(random_shift(KEY, images, 1))
    for i in range(32):
        assert any((shifted[i] == np.roll(np.asarray(images[i]), (dy, dx), (0, 1))).all()
                   for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def test_config_applies_only_with_a_key_and_names_bad_fields():
    x = hax.random.normal(KEY, (hax.Axis("batch", 4), hax.Axis("height", 6), hax.Axis("width", 6),
                                hax.Axis("channel", 1)))
    config = AugmentConfig(horizontal_flip=True, max_shift=1)
    assert config(x, None) is x
    out = config(x, jax.random.PRNGKey(3))
    assert out.axes == x.axes and not np.array_equal(np.asarray(out.array), np.asarray(x.array))
    with pytest.raises(ValueError, match="augment.max_shift"):
        AugmentConfig(max_shift=-1)
