"""Binary cross-entropy on probabilities exactly as torch's ``nn.BCELoss``, the reference's loss (nfn.md §6).

The reference trains on ``BCELoss(sigmoid(logit), accuracy)`` with the accuracy as a soft target. Torch computes

    loss = -(y · max(log p, -100) + (1 - y) · max(log1p(-p), -100))
    ∂loss/∂p = (p - y) / max(p (1 - p), 1e-12)

so the gradient stays finite and non-zero where ``p`` saturates at 0 or 1 (a clip of ``p`` before the log, as the
port did before, makes it exactly zero there, and a saturated predictor stops learning). :func:`binary_cross_entropy`
has that value and that gradient (a custom VJP).
"""

import jax
import jax.numpy as jnp

LOG_FLOOR = -100.0
GRAD_EPSILON = 1e-12


@jax.custom_vjp
def binary_cross_entropy(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Elementwise BCE of probabilities ``pred`` against soft targets ``target`` (same shape), as torch's."""
    return -(target * jnp.maximum(jnp.log(pred), LOG_FLOOR) + (1 - target) * jnp.maximum(jnp.log1p(-pred), LOG_FLOOR))


def _forward(pred, target):
    return binary_cross_entropy(pred, target), (pred, target)


def _backward(residuals, grad):
    pred, target = residuals
    d_pred = grad * (pred - target) / jnp.maximum((1 - pred) * pred, GRAD_EPSILON)
    d_target = grad * (jnp.maximum(jnp.log1p(-pred), LOG_FLOOR) - jnp.maximum(jnp.log(pred), LOG_FLOOR))
    return d_pred, d_target


binary_cross_entropy.defvjp(_forward, _backward)
