"""Coding rate and sparsity measurements (spec crate.md §4.1, §4.2, §8.3, §8.5)."""

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from haliax import Axis

from crate_jax import CrateConfig
from crate_jax.analysis import coding_rate, coding_rate_gram, measure_layers, zero_fraction


def test_gram_and_covariance_forms_agree():
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
        for n, p in [(17, 16), (5, 64), (197, 48)]:
            x = jnp.asarray(rng.normal(size=(3, n, p)))
            np.testing.assert_allclose(np.asarray(coding_rate(x)), np.asarray(coding_rate_gram(x)), rtol=1e-12)


def test_identical_tokens_give_rank_one_closed_form():
    with jax.enable_x64(True):
        x = jnp.tile(jnp.asarray(np.random.default_rng(1).normal(size=(1, 64))), (10, 1))
        expected = 0.5 * np.log(1 + 64 / 0.01)
        assert abs(expected - 4.38210) < 1e-5
        np.testing.assert_allclose(float(coding_rate(x)), expected, rtol=1e-12)
        np.testing.assert_allclose(float(coding_rate_gram(x)), expected, rtol=1e-12)


def test_orthonormal_tokens_closed_form_and_bound():
    rng = np.random.default_rng(2)
    with jax.enable_x64(True):
        n, p = 12, 64
        q, _ = np.linalg.qr(rng.normal(size=(p, n)))
        expected = n / 2 * np.log(1 + p / (n * 0.01))
        np.testing.assert_allclose(float(coding_rate(jnp.asarray(q.T))), expected, rtol=1e-12)
        for n, p in [(17, 16), (9, 64)]:
            r = min(n, p)
            value = float(coding_rate(jnp.asarray(rng.normal(size=(n, p)))))
            assert 0 <= value <= r / 2 * np.log(1 + p / (r * 0.01)) + 1e-9


def test_invariant_to_token_permutation_and_rescaling():
    rng = np.random.default_rng(3)
    with jax.enable_x64(True):
        x = rng.normal(size=(20, 16))
        base = float(coding_rate(jnp.asarray(x)))
        moved = x[rng.permutation(20)] * rng.uniform(0.1, 10, size=(20, 1))
        np.testing.assert_allclose(float(coding_rate(jnp.asarray(moved))), base, rtol=1e-12)


def test_zero_fraction_counts_exact_zeros_only():
    z = np.ones((2, 4, 5), np.float32)
    z[0, 0, :3] = 0.0
    z[0, 1, 1] = 1e-30  # tiny but not zero
    z[1] = 0.0
    np.testing.assert_array_equal(np.asarray(zero_fraction(jnp.asarray(z))), np.float32([3 / 20, 1.0]))


def test_measure_layers_matches_direct_computation():
    config = CrateConfig(image_size=8, patch_size=2, num_channels=1, num_classes=10, hidden_dim=32, num_heads=2,
                         num_layers=3, patch_ln=False)
    model = eqx.filter_jit(lambda key: config.build(key=key))(jax.random.PRNGKey(0))
    images = hax.random.normal(jax.random.PRNGKey(1), (Axis("batch", 5), Axis("height", 8), Axis("width", 8),
                                                       Axis("channel", 1)))
    stats = measure_layers(model, images, batch_size=2)
    assert len(stats) == 3
    _, trace = eqx.filter_jit(lambda m, x: m.forward_with_intermediates(x))(model, images)
    w = np.asarray(trace.projection.rearrange(("layers", "batch", "heads", "position", "head_size")).array)
    z = np.asarray(trace.z_next.rearrange(("layers", "batch", "position", "embed")).array)
    for layer, s in enumerate(stats):
        x = w[layer] / np.linalg.norm(w[layer], axis=-1, keepdims=True)
        n, p = x.shape[-2:]
        rates = [0.5 * np.linalg.slogdet(np.eye(n) + p / (n * 0.01) * xi @ xi.T)[1] for xi in x.reshape(-1, n, p)]
        per_image = np.asarray(rates).reshape(5, 2).sum(-1)
        np.testing.assert_allclose(s.coding_rate_mean, per_image.mean(), rtol=1e-4)
        np.testing.assert_allclose(s.coding_rate_std, per_image.std(ddof=1), rtol=1e-3)
        np.testing.assert_allclose(s.nonzero_fraction, (z[layer] != 0).mean(), rtol=1e-6)
        assert s.coding_rate_mean <= 2 * (n / 2) * np.log(1 + p / (n * 0.01))
    with pytest.raises(ValueError, match="measure_point"):
        measure_layers(model, images, measure_point="output")
