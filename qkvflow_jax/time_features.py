"""Depth-time features and integration grids (spec §1.2, §1.4, §6 F2, §7.2).

phi(t) = [t, sin(s t w_0..K-1), cos(s t w_0..K-1)] in R^{2K+1}, w_k = max_period^(-k/K), s = time_scale.
The time values, the grid and phi are built in float32, or float64 when JAX runs with x64 (the "wider" of the
spec), whatever the model's compute dtype (fix F2). ``legacy_compute_dtype=True`` reproduces the reference,
which built t and phi in the compute dtype (bf16 in training).

Aliasing (kept for fidelity): the top frequency advances s/L rad per Euler step (83 rad at L=12, s=1000), so
the hypernetwork sees pseudo-random features on its grid and unseen values off it.
"""

import jax
import jax.numpy as jnp


def time_dtype() -> jnp.dtype:
    """float32, or float64 when x64 is enabled: never narrower than float32."""
    return jnp.result_type(float)


def fourier_time_features(t, num_frequencies: int, time_scale: float = 1000.0, max_period: float = 10000.0,
                          dtype=None) -> jax.Array:
    """phi(t) for scalar or batched ``t`` (shape (...,)) -> (..., 2K+1), spec §1.2.

    ``dtype`` defaults to :func:`time_dtype`; pass the compute dtype only to reproduce the reference bug F2.
    """
    dtype = time_dtype() if dtype is None else dtype
    t = jnp.asarray(t).astype(dtype)
    k = jnp.arange(num_frequencies, dtype=time_dtype())
    omega = (jnp.asarray(max_period, time_dtype()) ** (-k / num_frequencies)).astype(dtype)
    phase = (jnp.asarray(time_scale, dtype) * t)[..., None] * omega
    return jnp.concatenate([t[..., None], jnp.sin(phase), jnp.cos(phase)], axis=-1)


def uniform_grid(num_steps: int, dtype=None) -> tuple[jax.Array, jax.Array]:
    """Right-endpoint Euler grid (spec §1.4): tau_i = (i+1)/L and dt_i = 1/L, i = 0..L-1; tau_{L-1} = 1 exactly."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    dtype = time_dtype() if dtype is None else dtype
    tau = jnp.arange(1, num_steps + 1, dtype=time_dtype()) / num_steps
    dt = jnp.full((num_steps,), 1.0 / num_steps, dtype=time_dtype())
    return tau.astype(dtype), dt.astype(dtype)


def legacy_compute_dtype_grid(num_steps: int, dtype) -> tuple[jax.Array, jax.Array]:
    """The reference's grid built in ``dtype`` (F2): dt = dtype(1/L), tau_i = dtype((i+1) * dt)."""
    dt = jnp.asarray(1.0 / num_steps, dtype)
    tau = (jnp.arange(1, num_steps + 1).astype(dtype) * dt).astype(dtype)
    return tau, jnp.full((num_steps,), dt, dtype)


def random_shift_grid(num_steps: int, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Randomised training grid (spec §7.2): dt0 ~ U(0, 1/L); steps dt0, (L-1) x 1/L, 1/L - dt0.

    L+1 steps (static shape) whose sizes are >= 0 and sum to 1; each step evaluates the field at its right end,
    so tau = cumsum(steps) ends exactly at 1.
    """
    dtype = time_dtype()
    h = jnp.asarray(1.0 / num_steps, dtype)
    dt0 = jax.random.uniform(key, (), dtype, 0.0, 1.0) * h
    steps = jnp.concatenate([dt0[None], jnp.full((num_steps - 1,), h, dtype), (h - dt0)[None]])
    tau = jnp.cumsum(steps).at[-1].set(1.0)
    return tau, steps
