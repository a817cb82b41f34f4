"""Metrics of accuracy prediction (nfn.md §6): Kendall τ-b (ties handled), R², L1, BCE."""

import jax.numpy as jnp
import numpy as np

from .loss import binary_cross_entropy


def kendall_tau_b(x, y) -> float:
    """Kendall's τ-b = (concordant - discordant) / sqrt((n0 - ties_x)(n0 - ties_y)) over all pairs; NaN if undefined."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"kendall_tau_b needs two vectors of equal length, got {x.shape} and {y.shape}")
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    upper = np.triu_indices(len(x), k=1)
    dx, dy = dx[upper], dy[upper]
    num = float(np.sum(dx * dy))
    denom = np.sqrt(float(np.sum(dx != 0)) * float(np.sum(dy != 0)))
    return num / denom if denom > 0 else float("nan")


def regression_metrics(pred, target) -> dict[str, float]:
    """``tau`` (Kendall τ-b), ``r2``, ``l1`` and ``bce`` (torch's ``BCELoss``, soft targets) of predictions in [0, 1]."""
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    bce = float(jnp.mean(binary_cross_entropy(jnp.asarray(pred, jnp.float32), jnp.asarray(target, jnp.float32))))
    ss_res, ss_tot = np.sum((target - pred) ** 2), np.sum((target - target.mean()) ** 2)
    return {"tau": kendall_tau_b(pred, target), "r2": float(1 - ss_res / ss_tot) if ss_tot > 0 else float("nan"),
            "l1": float(np.mean(np.abs(pred - target))), "bce": bce}
