"""Spec §9 tests 1 and 2 (Fourier features, grids) and the random_shift grid of §9.15."""

import jax
import jax.numpy as jnp
import numpy as np

from qkvflow_jax.time_features import (fourier_time_features, legacy_compute_dtype_grid, random_shift_grid,
                                       uniform_grid)
from qkvflow_jax.model import time_features

from .tiny import small_config


def test_fourier_reference_values_f64():
    with jax.enable_x64(True):
        phi = fourier_time_features(0.5, 4)
        assert phi.dtype == jnp.float64
        np.testing.assert_allclose(phi, [0.5, -0.467771805322, -0.262374853704, -0.958924274663, 0.479425538604,
                                         -0.883849273431, 0.964966028492, 0.283662185463, 0.877582561890],
                                   rtol=0, atol=1e-12)
        phi = fourier_time_features(1 / 12, 2)
        np.testing.assert_allclose(phi, [0.083333333333, 0.996710927320, 0.740176853196, -0.081039048375,
                                         0.672412244083], rtol=0, atol=1e-12)


def test_time_features_stay_f32_under_bf16_compute():
    phi = time_features(small_config(), jnp.asarray(0.5, jnp.bfloat16), jnp.bfloat16)
    assert phi.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(phi.array), np.asarray(fourier_time_features(0.5, 4)), atol=1e-6)
    legacy = time_features(small_config(time_features_dtype="compute"), 0.5, jnp.bfloat16)
    assert legacy.dtype == jnp.bfloat16


def test_uniform_right_endpoint_grid():
    with jax.enable_x64(True):
        tau, dt = uniform_grid(12)
        np.testing.assert_allclose(tau, np.arange(1, 13) / 12, rtol=0, atol=1e-15)
        np.testing.assert_allclose(dt, np.full(12, 1 / 12), rtol=0, atol=1e-16)
        assert abs(float(dt.sum()) - 1.0) < 1e-15 and float(tau[-1]) == 1.0


def test_legacy_bf16_grid_reproduces_reference_phase_error():
    tau, dt = legacy_compute_dtype_grid(18, jnp.bfloat16)
    assert abs(float(dt[0]) - 0.055664062) < 1e-9
    phase = (jnp.asarray(1000.0, jnp.bfloat16) * tau).astype(jnp.bfloat16)
    assert float(phase[14]) == 836.0
    error = np.abs(np.asarray(phase, np.float64) - 1000.0 * np.arange(1, 19) / 18)
    assert abs(error.max() - 3.11) < 0.01, error.max()


def test_random_shift_grid_steps_nonnegative_and_sum_to_one():
    for seed in range(5):
        tau, steps = random_shift_grid(6, jax.random.PRNGKey(seed))
        assert steps.shape == (7,) and bool(jnp.all(steps >= 0))
        assert abs(float(steps.sum()) - 1.0) < 1e-6 and float(tau[-1]) == 1.0
        np.testing.assert_allclose(tau, np.cumsum(steps), atol=1e-6)
