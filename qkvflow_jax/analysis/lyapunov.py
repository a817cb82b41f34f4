"""Token-level finite-time Lyapunov exponents by the discrete QR method (spec §4.2, fix F5).

For a prompt of N tokens and j = N-1, at each Euler step s with the pre-step state X_s and tau_s = (s+1) dt
(exactly as the forward pass):

    J_s[k] = dF_j(X_s, tau_s)/dx_k (D x D),   Q_k <- QR((I + dt J_s[k]) Q_k),   record log|diag R|

Output (L, N, D); a token's spectrum is the sum over steps (T = 1, no normalisation). For k != j this is a
cross-token sensitivity, not a single-trajectory tangent map. ``analysis_grid="legacy"`` reproduces the
reference (t_s = s dt and the post-step state X_{s+1}).
"""

import jax
import jax.numpy as jnp
import numpy as np

ANALYSIS_GRIDS = ("forward", "legacy")


def token_jacobians(field, x: jax.Array, t) -> jax.Array:
    """J[k] = dF_{N-1}(x, t)/dx_k for every token k: (N, D, D) from one jacrev (D VJPs). x: (N, D)."""
    jac = jax.jacrev(lambda y: field(y, t)[-1])(x)  # (D_out, N, D_in)
    return jnp.transpose(jac, (1, 0, 2))


def lyapunov_exponents(field, x0, num_steps: int, analysis_grid: str = "forward") -> np.ndarray:
    """(L, N, D) log|diag R| per step, token and direction; ``field(x, t)`` maps (N, D) -> (N, D)."""
    if analysis_grid not in ANALYSIS_GRIDS:
        raise ValueError(f"analysis_grid must be one of {ANALYSIS_GRIDS}, got {analysis_grid!r}")
    dt = 1.0 / num_steps
    x = jnp.asarray(x0)
    n, d = x.shape
    eye = jnp.eye(d, dtype=x.dtype)
    q = jnp.broadcast_to(eye, (n, d, d))
    jac_fn = jax.jit(token_jacobians, static_argnums=0)

    @jax.jit
    def qr_step(q, jac):
        m = jnp.einsum("kab,kbc->kac", eye + dt * jac, q)
        q_new, r = jnp.linalg.qr(m)
        return q_new, jnp.log(jnp.abs(jnp.diagonal(r, axis1=-2, axis2=-1)))

    exponents = []
    for s in range(num_steps):
        x_next = x + dt * field(x, (s + 1) * dt)
        if analysis_grid == "forward":
            jac = jac_fn(field, x, (s + 1) * dt)
        else:
            jac = jac_fn(field, x_next, s * dt)
        q, logs = qr_step(q, jac)
        exponents.append(logs)
        x = x_next
    return np.asarray(jnp.stack(exponents))


def kaplan_yorke_dimension(spectrum: np.ndarray) -> float:
    """D_KY of one spectrum (D,): j + S_j / |lambda_{j+1}| with S the descending cumsum; D when S never < 0."""
    lam = np.sort(np.asarray(spectrum))[::-1]
    cums = np.cumsum(lam)
    if np.all(cums >= 0):
        return float(lam.size)
    if cums[0] < 0:
        return 0.0
    j = int(np.nonzero(cums >= 0)[0][-1])  # 0-based index of the last nonnegative partial sum
    return float(j + 1 + cums[j] / abs(lam[j + 1]))
