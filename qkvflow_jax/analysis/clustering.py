"""Token-clustering toy: self-attention dynamics on the sphere (Geshkovski et al.; spec §4.3).

Each step: layer-normalise every token, then z <- z + dt softmax_rows((zA)(zA)^T) (zV). ``rescale`` mode is
the exact Geshkovski et al. (2023) equation: scores with A e^{Vt}, and zV subtracted from the update.
Time-dependent weights: A(t) = A0 f(t), V(t) = V0 f(t) with a polynomial f.
"""

import numpy as np
from scipy.linalg import expm

PRESETS = ("polytope", "hyperplanes", "random", "time_dependent")


def _normalise(z: np.ndarray) -> np.ndarray:
    z = z - z.mean(axis=1, keepdims=True)
    return z / np.sqrt(z.var(axis=1, keepdims=True) + 1e-5)


def _softmax(s: np.ndarray) -> np.ndarray:
    s = s - s.max(axis=1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=1, keepdims=True)


def simulate(z0: np.ndarray, A, V, num_steps: int, dt: float, rescale: bool = False,
             time_fn=None) -> np.ndarray:
    """Trajectory (num_steps + 1, n, 3) from z0 (n, 3); ``time_fn(t)`` scales A and V at time t."""
    z, traj = np.array(z0, np.float64), [np.array(z0, np.float64)]
    for s in range(num_steps):
        t = s * dt
        scale = time_fn(t) if time_fn is not None else 1.0
        a, v = A * scale, V * scale
        z = _normalise(z)
        if rescale:
            a = a @ expm(v * t)
        za = z @ a
        update = _softmax(za @ za.T) @ (z @ v)
        if rescale:
            update = update - z @ v
        z = z + dt * update
        traj.append(z.copy())
    return np.stack(traj)


def preset(name: str, seed: int = 0, dim: int = 3):
    """(A, V, time_fn) of a named preset."""
    rng = np.random.default_rng(seed)
    eye = np.eye(dim)
    if name == "polytope":
        return eye, eye, None
    if name == "hyperplanes":
        return eye, np.abs(rng.normal(size=(dim, dim))), None
    if name == "random":
        return rng.normal(size=(dim, dim)), rng.normal(size=(dim, dim)), None
    if name == "time_dependent":
        coeffs = np.array([0.5, 1.0, 2.0, 3.0, 4.0])  # 4th-order polynomial growth, like the learned |lambda|
        return eye, np.abs(rng.normal(size=(dim, dim))), lambda t: float(np.polyval(coeffs[::-1], t))
    raise ValueError(f"clustering preset must be one of {PRESETS}, got {name!r}")
