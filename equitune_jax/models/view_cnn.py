"""Per-view CNNs and N-view classifiers for the multi-view experiments (spec §9.1 and §6.1, design 1).

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


def paper_cnn_blocks(image_size: int) -> tuple[int, int]:
    """(conv blocks, final side) of :class:`PaperViewEncoder`: 3 blocks from 64 px, else 2; each block maps a
    side s to (s - 4) // 2."""
    blocks = 3 if image_size >= 64 else 2
    side = image_size
    for _ in range(blocks):
        side = (side - 4) // 2
    if side < 1:
        raise ValueError(f"model.image_size {image_size} is too small for the paper CNN's {blocks} conv blocks")
    return blocks, side


class PaperViewEncoder(eqx.Module):
    """The multi-image CNN of spec §6.1: [conv5×5(width, no padding) → ReLU → maxpool2 → norm] × 2, plus a third
    block (its own weights) when ``image_size >= 64``, then flatten → linear(features) → ReLU → dropout → norm.

    Deviation: levanter's Trainer keeps no mutable model state, so BatchNorm (running statistics) is replaced by
    LayerNorm over the channel axis at every pixel (blocks) and over the features (last norm).
    ``[H, W, C] -> [features]``.
    """

    convs: tuple[eqx.nn.Conv2d, ...]
    norms: tuple[eqx.nn.LayerNorm, ...]
    pool: eqx.nn.MaxPool2d
    linear: eqx.nn.Linear
    dropout: eqx.nn.Dropout
    norm: eqx.nn.LayerNorm

    def __init__(self, image_size: int, channels: int, width: int, features: int, dropout: float = 0.5, *, key):
        blocks, side = paper_cnn_blocks(image_size)
        keys = jax.random.split(key, blocks + 1)
        self.convs = tuple(eqx.nn.Conv2d(channels if i == 0 else width, width, 5, key=keys[i]) for i in range(blocks))
        self.norms = tuple(eqx.nn.LayerNorm(width) for _ in range(blocks))
        self.pool = eqx.nn.MaxPool2d(2, stride=2)
        self.linear = eqx.nn.Linear(width * side * side, features, key=keys[-1])
        self.dropout = eqx.nn.Dropout(dropout)
        self.norm = eqx.nn.LayerNorm(features)

    def __call__(self, x, *, key=None):
        h = jnp.moveaxis(x, -1, 0)
        for conv, norm in zip(self.convs, self.norms):
            h = self.pool(jax.nn.relu(conv(h)))
            h = jax.vmap(jax.vmap(norm, in_axes=1, out_axes=1), in_axes=2, out_axes=2)(h)  # per pixel, over channels
        h = self.dropout(jax.nn.relu(self.linear(h.reshape(-1))), key=key)
        return self.norm(h)


ENCODER_ARCHS = ("small", "paper")


def view_encoder(arch: str, image_size, channels, width, features, dropout: float = 0.5, *, key):
    """φ/ψ of ``arch``: ``small`` (:class:`ViewEncoder`) or ``paper`` (:class:`PaperViewEncoder`, spec §6.1)."""
    if arch == "small":
        return ViewEncoder(image_size, channels, width, features, key=key)
    if arch == "paper":
        return PaperViewEncoder(image_size, channels, width, features, dropout, key=key)
    raise ValueError(f"model.arch must be one of {ENCODER_ARCHS}, got {arch!r}")


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

    encoder: eqx.Module
    head: ClassifierHead

    forward_passes = property(lambda self: 1)

    def __call__(self, views, *, key=None):
        keys = [None] * len(views) if key is None else jax.random.split(key, len(views))
        return self.head([self.encoder(v, key=k) for v, k in zip(views, keys)])


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


def multi_view_cnn(num_views, image_size, channels, width, features, hidden, num_classes, *, arch: str = "small",
                   dropout: float = 0.5, key) -> MultiViewCNN:
    k1, k2 = jax.random.split(key)
    return MultiViewCNN(view_encoder(arch, image_size, channels, width, features, dropout, key=k1),
                        ClassifierHead(num_views * features, hidden, num_classes, key=k2))


def multi_view_design1(groups: tuple[Group, ...], image_size, channels, width, features, hidden, num_classes, *,
                       fusion: bool = True, coupling: float = 0.1, arch: str = "small", dropout: float = 0.5,
                       key) -> MultiViewDesign1:
    k1, k2, k3 = jax.random.split(key, 3)
    encoder = lambda k: view_encoder(arch, image_size, channels, width, features, dropout, key=k)  # noqa: E731
    phi = encoder(k1)
    psi = encoder(k2) if fusion else None
    body = MultiInputEquivariant(phi, psi, jnp.asarray(coupling, jnp.float32), tuple(groups))
    return MultiViewDesign1(body, ClassifierHead(len(groups) * features, hidden, num_classes, key=k3))


def product_equitune(cnn: MultiViewCNN, groups: tuple[Group, ...]) -> Equitune:
    """(d) Equitune of the plain CNN over the whole product ΠG_i acting per view: Π|G_i| passes."""
    return Equitune(cnn, per_input_product(*groups), aggregate="logits")
