"""Small random base models for the property tests (any ``model(x, *, key) -> y``)."""

import equinox as eqx
import jax
import jax.numpy as jnp


def to_float64(tree):
    return jax.tree.map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, tree)


class FeatureMapNet(eqx.Module):
    """[H, W, C] -> [H, W, C_out]: two 3×3 convs (not equivariant to anything by itself)."""

    conv1: eqx.nn.Conv2d
    conv2: eqx.nn.Conv2d

    def __init__(self, channels=2, out_channels=3, *, key):
        k1, k2 = jax.random.split(key)
        self.conv1 = eqx.nn.Conv2d(channels, 4, 3, padding=1, key=k1)
        self.conv2 = eqx.nn.Conv2d(4, out_channels, 3, padding=1, key=k2)

    def __call__(self, x, *, key=None):
        h = jnp.tanh(self.conv1(jnp.moveaxis(x, -1, 0)))
        return jnp.moveaxis(self.conv2(h), 0, -1)


class ImageLogitsNet(eqx.Module):
    """[H, W, C] -> logits [classes], optionally with dropout before the last layer."""

    body: FeatureMapNet
    linear: eqx.nn.Linear
    dropout: eqx.nn.Dropout

    def __init__(self, size=5, channels=2, classes=4, dropout=0.0, *, key):
        k1, k2 = jax.random.split(key)
        self.body = FeatureMapNet(channels, 3, key=k1)
        self.linear = eqx.nn.Linear(size * size * 3, classes, key=k2)
        self.dropout = eqx.nn.Dropout(dropout)

    def __call__(self, x, *, key=None):
        h = self.dropout(self.body(x).reshape(-1), key=key, inference=key is None)
        return self.linear(h)


class TokenNet(eqx.Module):
    """ids [T] -> logits [V] over the same vocabulary."""

    embed: eqx.nn.Embedding
    linear: eqx.nn.Linear

    def __init__(self, vocab=6, length=4, dim=5, *, key):
        k1, k2 = jax.random.split(key)
        self.embed = eqx.nn.Embedding(vocab, dim, key=k1)
        self.linear = eqx.nn.Linear(length * dim, vocab, key=k2)

    def __call__(self, ids, *, key=None):
        return self.linear(jnp.tanh(jax.vmap(self.embed)(ids)).reshape(-1))


class PositiveWeight(eqx.Module):
    """λ(x) = softplus(w·x + b) > 0 for the λ-equitune tests."""

    linear: eqx.nn.Linear

    def __init__(self, features, *, key):
        self.linear = eqx.nn.Linear(features, "scalar", key=key)

    def __call__(self, x, *, key=None):
        return jax.nn.softplus(self.linear(jnp.asarray(x, self.linear.weight.dtype).reshape(-1)))
