"""Per-view CNNs and two-view classifiers for the multi-view experiment (spec §9.1, design 1).

Images are ``[H, W, C]`` (the ``common_jax`` layout); groups act on axes (-3, -2).
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from ..groups import Group, per_input_product
from ..wrappers import Equitune, MultiInputEquivariant


class ViewEncoder(eqx.Module):
    """φ: conv3×3(width, stride 2) → ReLU → conv3×3(width, stride 2) → ReLU → flatten → linear → ReLU.

    ``[H, W, C] -> [features]``.
    """

    conv1: eqx.nn.Conv2d
    conv2: eqx.nn.Conv2d
    linear: eqx.nn.Linear

    def __init__(self, image_size: int, channels: int, width: int, features: int, *, key):
        k1, k2, k3 = jax.random.split(key, 3)
        self.conv1 = eqx.nn.Conv2d(channels, width, 3, stride=2, padding=1, key=k1)
        self.conv2 = eqx.nn.Conv2d(width, width, 3, stride=2, padding=1, key=k2)
        side = math.ceil(math.ceil(image_size / 2) / 2)
        self.linear = eqx.nn.Linear(width * side * side, features, key=k3)

    def __call__(self, x, *, key=None):
        h = jax.nn.relu(self.conv1(jnp.moveaxis(x, -1, 0)))
        h = jax.nn.relu(self.conv2(h))
        return jax.nn.relu(self.linear(h.reshape(-1)))


class ClassifierHead(eqx.Module):
    """concat of the N view features → linear(hidden) → ReLU → linear(classes)."""

    hidden: eqx.nn.Linear
    out: eqx.nn.Linear

    def __init__(self, in_features: int, hidden: int, num_classes: int, *, key):
        k1, k2 = jax.random.split(key)
        self.hidden = eqx.nn.Linear(in_features, hidden, key=k1)
        self.out = eqx.nn.Linear(hidden, num_classes, key=k2)

    def __call__(self, features):
        return self.out(jax.nn.relu(self.hidden(jnp.concatenate(features))))


class MultiViewCNN(eqx.Module):
    """(a) The plain CNN: a shared φ on every view, then the head. ``(x_1..x_N) -> logits [classes]``."""

    encoder: ViewEncoder
    head: ClassifierHead

    forward_passes = property(lambda self: 1)

    def __call__(self, views, *, key=None):
        return self.head([self.encoder(v) for v in views])


class MultiViewDesign1(eqx.Module):
    """(c) Design 1: orbit means of φ (e_i) and ψ (f_i) per view, y_i = e_i + c·Σ_{j≠i} f_j, then the head.

    Invariant to (g_1..g_N) ∈ ΠG_i at Σ|G_i| passes per network.
    """

    body: MultiInputEquivariant
    head: ClassifierHead

    @property
    def forward_passes(self) -> int:
        return self.body.forward_passes

    def __call__(self, views, *, key=None):
        return self.head(list(self.body(tuple(views), key=key)))


def multi_view_cnn(num_views, image_size, channels, width, features, hidden, num_classes, *, key) -> MultiViewCNN:
    k1, k2 = jax.random.split(key)
    return MultiViewCNN(ViewEncoder(image_size, channels, width, features, key=k1),
                        ClassifierHead(num_views * features, hidden, num_classes, key=k2))


def multi_view_design1(groups: tuple[Group, ...], image_size, channels, width, features, hidden, num_classes, *,
                       fusion: bool = True, coupling: float = 0.1, key) -> MultiViewDesign1:
    k1, k2, k3 = jax.random.split(key, 3)
    phi = ViewEncoder(image_size, channels, width, features, key=k1)
    psi = ViewEncoder(image_size, channels, width, features, key=k2) if fusion else None
    body = MultiInputEquivariant(phi, psi, jnp.asarray(coupling, jnp.float32), tuple(groups))
    return MultiViewDesign1(body, ClassifierHead(len(groups) * features, hidden, num_classes, key=k3))


def product_equitune(cnn: MultiViewCNN, groups: tuple[Group, ...]) -> Equitune:
    """(d) Equitune of the plain CNN over the whole product ΠG_i acting per view: Π|G_i| passes."""
    return Equitune(cnn, per_input_product(*groups), aggregate="logits")
