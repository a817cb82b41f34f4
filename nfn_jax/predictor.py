"""The registry of accuracy predictors trained by ``nfn_jax.main.train``, and the MLP pieces they share.

``model: {type: transformer_nfn | mlp | statnn | mlp_wide | statnn_wide}``. Every predictor maps
:class:`~nfn_jax.weights.ZooWeights` (``N`` models) to a predicted test accuracy ``[N]`` in (0, 1) through a final
sigmoid (nfn.md §4, §6). The sizes of the weight space, the zoo's classifier and its flattened embedding are part of
the config; the training entry point checks them against the zoo.
"""

import abc
from dataclasses import dataclass, field

import draccus
import equinox as eqx
import jax
import jax.numpy as jnp

from .weights import WeightSpaceSpec


@dataclass(frozen=True)
class PredictorConfig(draccus.ChoiceRegistry, abc.ABC):
    weight_space: WeightSpaceSpec = field(default_factory=WeightSpaceSpec)
    classifier_hidden: int = 32  # the zoo classifier: fc1 [hidden, D], fc2 [num_classes, hidden] (torch layout)
    num_classes: int = 10
    embedding_features: int = 544  # MNIST zoo: conv 32*1*4*4 + 32; 0 = no embedding branch (AG-News)

    @classmethod
    def default_choice_name(cls) -> str | None:
        return "transformer_nfn"

    def __post_init__(self):
        for name in ("classifier_hidden", "num_classes"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be positive, got {getattr(self, name)}")
        if self.embedding_features < 0:
            raise ValueError(f"model.embedding_features must be >= 0, got {self.embedding_features}")

    @property
    def classifier_shapes(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """``(fc1.weight, fc2.weight)`` shapes in torch layout ``[out, in]``."""
        return (self.classifier_hidden, self.weight_space.D), (self.num_classes, self.classifier_hidden)

    @property
    def classifier_features(self) -> int:
        """Length of the flattened classifier ``[fc1.W, fc1.b, fc2.W, fc2.b]`` (MNIST zoo: 1,386)."""
        return sum(o * i + o for o, i in self.classifier_shapes)

    @abc.abstractmethod
    def build(self, *, key) -> eqx.Module:
        """A freshly initialised predictor ``model(weights: ZooWeights) -> [N]`` accuracies in (0, 1)."""


class Mlp(eqx.Module):
    """Linear layers with a ReLU after each (``final_activation``: after the last too), on ``[N, F]``."""

    layers: tuple[eqx.nn.Linear, ...]
    final_activation: bool = eqx.field(static=True)

    @staticmethod
    def init(sizes: tuple[int, ...], *, key, final_activation: bool) -> "Mlp":
        keys = jax.random.split(key, len(sizes) - 1)
        return Mlp(tuple(eqx.nn.Linear(i, o, key=k) for i, o, k in zip(sizes[:-1], sizes[1:], keys)), final_activation)

    def __call__(self, x: jax.Array) -> jax.Array:
        for i, layer in enumerate(self.layers):
            x = jax.vmap(layer)(x)
            if i < len(self.layers) - 1 or self.final_activation:
                x = jax.nn.relu(x)
        return x


class MlpHead(eqx.Module):
    """The reference's ``MlpHead`` with layer norms: Linear(F, h) -> [LN(h) -> ReLU -> Linear] x 2 (to ``out``)."""

    linears: tuple[eqx.nn.Linear, eqx.nn.Linear, eqx.nn.Linear]
    norms: tuple[eqx.nn.LayerNorm, eqx.nn.LayerNorm]

    @staticmethod
    def init(in_features: int, width: int, out_features: int, *, key) -> "MlpHead":
        k0, k1, k2 = jax.random.split(key, 3)
        return MlpHead((eqx.nn.Linear(in_features, width, key=k0), eqx.nn.Linear(width, width, key=k1),
                        eqx.nn.Linear(width, out_features, key=k2)), (eqx.nn.LayerNorm(width), eqx.nn.LayerNorm(width)))

    def __call__(self, x: jax.Array) -> jax.Array:
        x = jax.vmap(self.linears[0])(x)
        for norm, linear in zip(self.norms, self.linears[1:]):
            x = jax.vmap(linear)(jax.nn.relu(layer_norm(norm, x)))
        return x


def layer_norm(ln: eqx.nn.LayerNorm, x: jax.Array) -> jax.Array:
    """A learned-affine LayerNorm over the last axis of ``[N, F]``."""
    return jax.vmap(ln)(x)


def sigmoid_head(head: eqx.nn.Linear, features: list[jax.Array]) -> jax.Array:
    """concat -> Linear(., 1) -> sigmoid: ``[N]`` predicted accuracies."""
    return jax.nn.sigmoid(jax.vmap(head)(jnp.concatenate(features, axis=1))[:, 0])
