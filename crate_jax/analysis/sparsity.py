"""Sparsity of an ISTA output (spec crate.md §4.2): the fraction of entries exactly equal to 0, no tolerance."""

import jax.numpy as jnp


def zero_fraction(z, axes: tuple[int, ...] = (-2, -1)):
    """Fraction of exact zeros of ``z`` over ``axes`` (default: the last two, tokens and features, per image)."""
    return jnp.mean((z == 0).astype(jnp.float32), axis=axes)
