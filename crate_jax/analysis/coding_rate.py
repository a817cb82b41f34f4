"""The coding rate of one head's tokens, as the reference implementation's layer-wise script measures it.

Spec crate.md §4.1: for ``X [n, p]`` (one image, one head, cls included), normalise every token row to unit l2
norm, then ``R = 1/2 logdet(I_n + p/(n eps) X X^T)`` with ``eps = 0.01`` (it plays the role of eps^2). The
cheaper ``p x p`` form ``1/2 logdet(I_p + p/(n eps) X^T X)`` is equal by Sylvester's determinant identity.
"""

import jax.numpy as jnp

DEFAULT_EPS = 0.01


def _unit_rows(x):
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


def coding_rate(x, eps: float = DEFAULT_EPS, *, normalize: bool = True):
    """``[..., n, p] -> [...]`` through the ``p x p`` (covariance) form, via Cholesky."""
    x = _unit_rows(x) if normalize else x
    n, p = x.shape[-2:]
    cov = jnp.einsum("...np,...nq->...pq", x, x)
    chol = jnp.linalg.cholesky(jnp.eye(p, dtype=x.dtype) + (p / (n * eps)) * cov)
    return jnp.sum(jnp.log(jnp.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)


def coding_rate_gram(x, eps: float = DEFAULT_EPS, *, normalize: bool = True):
    """``[..., n, p] -> [...]`` through the ``n x n`` (Gram) form, via slogdet; equal to :func:`coding_rate`."""
    x = _unit_rows(x) if normalize else x
    n, p = x.shape[-2:]
    gram = jnp.einsum("...np,...mp->...nm", x, x)
    _, logdet = jnp.linalg.slogdet(jnp.eye(n, dtype=x.dtype) + (p / (n * eps)) * gram)
    return 0.5 * logdet


def per_head_coding_rate(projection, eps: float = DEFAULT_EPS):
    """``projection`` (a NamedArray ``[..., position, heads, head_size]``) -> ``R_k`` per image and head,
    a numpy-compatible array ``[..., heads]`` (batch axes in their original order), computed in float32."""
    x = projection.rearrange((..., "heads", "position", "head_size")).array.astype(jnp.float32)
    return coding_rate(x, eps)
