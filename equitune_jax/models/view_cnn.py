"""Per-view CNNs and N-view classifiers for the multi-view experiments (spec §9.1 and §6.1, design 1).

Images are ``[H, W, C]`` (the ``common_jax`` layout); groups act on axes (-3, -2).
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp

from ..groups import Group, per_input_product
from ..wrappers import Equitune, MultiInputEquivariant
from ..wrappers.orbit import ORBIT_AXIS
from .batch_norm import NORMS, BatchNorm, batch_norm


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

    ``norm="batch"``: the reference's BatchNorm2d/1d, with batch statistics in training and population statistics
    computed after training (``batch_norm.py``); ``norm="layer"``: LayerNorm over the channels at every pixel (blocks)
    and over the features (last norm), which needs no statistics. ``[H, W, C] -> [features]``.
    """

    convs: tuple[eqx.nn.Conv2d, ...]
    norms: tuple[eqx.Module, ...]
    pool: eqx.nn.MaxPool2d
    linear: eqx.nn.Linear
    dropout: eqx.nn.Dropout
    norm: eqx.Module

    def __init__(self, image_size: int, channels: int, width: int, features: int, dropout: float = 0.5,
                 norm: str = "layer", *, key):
        if norm not in NORMS:
            raise ValueError(f"model.norm must be one of {NORMS}, got {norm!r}")
        blocks, side = paper_cnn_blocks(image_size)
        keys = jax.random.split(key, blocks + 1)
        make = batch_norm if norm == "batch" else eqx.nn.LayerNorm
        self.convs = tuple(eqx.nn.Conv2d(channels if i == 0 else width, width, 5, key=keys[i]) for i in range(blocks))
        self.norms = tuple(make(width) for _ in range(blocks))
        self.pool = eqx.nn.MaxPool2d(2, stride=2)
        self.linear = eqx.nn.Linear(width * side * side, features, key=keys[-1])
        self.dropout = eqx.nn.Dropout(dropout)
        self.norm = make(features)

    @staticmethod
    def _normalize(norm, h, collect):
        if isinstance(norm, BatchNorm):
            if collect is not None:
                collect.append(norm.unbiased_statistics(h))
            return norm(h)
        if h.ndim == 3:  # LayerNorm over the channels at every pixel of [C, H, W]
            return jax.vmap(jax.vmap(norm, in_axes=1, out_axes=1), in_axes=2, out_axes=2)(h)
        return norm(h)

    def _forward(self, x, key, collect=None):
        h = jnp.moveaxis(x, -1, 0)
        for conv, norm in zip(self.convs, self.norms):
            h = self._normalize(norm, self.pool(jax.nn.relu(conv(h))), collect)
        h = self.dropout(jax.nn.relu(self.linear(h.reshape(-1))), key=key)
        return self._normalize(self.norm, h, collect)

    def __call__(self, x, *, key=None):
        return self._forward(x, key)

    def norm_statistics(self, x, *, key=None) -> list:
        """[(mean, unbiased var)] of every BatchNorm input in training mode (needs the batch axes bound)."""
        collect = []
        self._forward(x, key, collect)
        return collect


ENCODER_ARCHS = ("small", "paper")


def view_encoder(arch: str, image_size, channels, width, features, dropout: float = 0.5, norm: str = "layer", *,
                 key):
    """φ/ψ of ``arch``: ``small`` (:class:`ViewEncoder`, no normalisation) or ``paper`` (:class:`PaperViewEncoder`,
    spec §6.1, with ``norm``)."""
    if arch == "small":
        if norm != "layer":
            raise ValueError("model.norm: batch needs model.arch: paper (the small encoder has no normalisation)")
        return ViewEncoder(image_size, channels, width, features, key=key)
    if arch == "paper":
        return PaperViewEncoder(image_size, channels, width, features, dropout, norm, key=key)
    raise ValueError(f"model.arch must be one of {ENCODER_ARCHS}, got {arch!r}")


class ClassifierHead(eqx.Module):
    """concat of the N view features → linear(hidden) → ReLU → dropout → linear(classes) (the reference's
    ``fc0``/``dropout2``/``fc3``; ``dropout`` 0.5 there, 0 in the port's small models)."""

    hidden: eqx.nn.Linear
    out: eqx.nn.Linear
    dropout: eqx.nn.Dropout

    def __init__(self, in_features: int, hidden: int, num_classes: int, dropout: float = 0.0, *, key):
        k1, k2 = jax.random.split(key)
        self.hidden = eqx.nn.Linear(in_features, hidden, key=k1)
        self.out = eqx.nn.Linear(hidden, num_classes, key=k2)
        self.dropout = eqx.nn.Dropout(dropout)

    def __call__(self, features, *, key=None):
        h = jax.nn.relu(self.hidden(jnp.concatenate(features)))
        return self.out(self.dropout(h, key=key, inference=key is None))


class MultiViewCNN(eqx.Module):
    """(a) The plain CNN: a shared φ on every view, then the head. ``(x_1..x_N) -> logits [classes]``."""

    encoder: eqx.Module
    head: ClassifierHead

    forward_passes = property(lambda self: 1)

    def _encode(self, views, key, method):
        """``method`` of φ on every view, vmapped over the views under the orbit axis name (BatchNorm normalises all
        views of a batch together, as the reference's Siamese layers)."""
        stacked = jnp.stack(views)
        if key is None:
            return jax.vmap(lambda v: method(v, key=None), axis_name=ORBIT_AXIS)(stacked)
        return jax.vmap(lambda v, k: method(v, key=k), axis_name=ORBIT_AXIS)(stacked, jax.random.split(key, len(views)))

    def __call__(self, views, *, key=None):
        k_views, k_head = (None, None) if key is None else jax.random.split(key)
        features = self._encode(views, k_views, self.encoder)
        return self.head(list(features), key=k_head)

    def norm_statistics(self, views, *, key=None) -> list:
        """The training-mode statistics of φ's BatchNorms on this batch (needs the batch axis bound)."""
        return [jax.tree.map(lambda a: a[0], s) for s in self._encode(views, key, self.encoder.norm_statistics)]


class MultiViewDesign1(eqx.Module):
    """(c) Design 1: orbit means of φ (e_i) and ψ (f_i) per view, y_i = e_i + c·Σ_{j≠i} f_j (or the reference's
    (e_i + c·(mean_j f_j − e_i)) / (1 + c), ``fusion_rule``), then the head.

    Invariant to (g_1..g_N) ∈ ΠG_i at Σ|G_i| passes per network. With identity groups it is the reference's CNN
    family (CNN-Fusion, or the plain Siamese CNN without ψ).
    """

    body: MultiInputEquivariant
    head: ClassifierHead

    @property
    def forward_passes(self) -> int:
        return self.body.forward_passes

    def __call__(self, views, *, key=None):
        k_body, k_head = (None, None) if key is None else jax.random.split(key)
        return self.head(list(self.body(tuple(views), key=k_body)), key=k_head)

    def norm_statistics(self, views, *, key=None) -> list:
        """The training-mode statistics of φ's then ψ's BatchNorms on the orbit images of this batch."""
        stacked = self.body.orbit_inputs(tuple(views))
        stats = []
        for net, k in zip((self.body.equivariant_model, self.body.fusion_model),
                          (None, None) if key is None else jax.random.split(key)):
            if net is None:
                continue
            keys = None if k is None else jax.random.split(k, stacked.shape[0])
            call = jax.vmap(lambda x, kk, n=net: n.norm_statistics(x, key=kk), axis_name=ORBIT_AXIS)
            stats += [jax.tree.map(lambda a: a[0], s) for s in call(stacked, keys)]
        return stats


def multi_view_cnn(num_views, image_size, channels, width, features, hidden, num_classes, *, arch: str = "small",
                   dropout: float = 0.5, head_dropout: float = 0.0, norm: str = "layer", key) -> MultiViewCNN:
    k1, k2 = jax.random.split(key)
    return MultiViewCNN(view_encoder(arch, image_size, channels, width, features, dropout, norm, key=k1),
                        ClassifierHead(num_views * features, hidden, num_classes, head_dropout, key=k2))


def multi_view_design1(groups: tuple[Group, ...], image_size, channels, width, features, hidden, num_classes, *,
                       fusion: bool = True, coupling: float = 0.1, arch: str = "small", dropout: float = 0.5,
                       head_dropout: float = 0.0, norm: str = "layer", fusion_rule: str = "sum_others",
                       key) -> MultiViewDesign1:
    k1, k2, k3 = jax.random.split(key, 3)
    encoder = lambda k: view_encoder(arch, image_size, channels, width, features, dropout, norm, key=k)
    phi = encoder(k1)
    psi = encoder(k2) if fusion else None
    body = MultiInputEquivariant(phi, psi, jnp.asarray(coupling, jnp.float32), tuple(groups), fusion_rule)
    head = ClassifierHead(len(groups) * features, hidden, num_classes, head_dropout, key=k3)
    return MultiViewDesign1(body, head)


def product_equitune(cnn: MultiViewCNN, groups: tuple[Group, ...]) -> Equitune:
    """(d) Equitune of the plain CNN over the whole product ΠG_i acting per view: Π|G_i| passes."""
    return Equitune(cnn, per_input_product(*groups), aggregate="logits")
