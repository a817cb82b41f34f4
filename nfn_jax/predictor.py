"""The registry of accuracy predictors trained by ``nfn_jax.main.train``: ``model: {type: transformer_nfn | mlp | statnn}``.

Every predictor maps :class:`~nfn_jax.weights.ZooWeights` (``N`` models) to a predicted test accuracy ``[N]``
in (0, 1) through a final sigmoid (nfn.md §4, §6). The sizes of the weight space, the flattened classifier and
the flattened embedding are part of the config; the training entry point checks them against the zoo.
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
    classifier_features: int = 1386  # MNIST zoo: 32*32 + 32 + 10*32 + 10
    embedding_features: int = 544  # MNIST zoo: conv 32*1*4*4 + 32; 0 = no embedding branch (AG-News)

    @classmethod
    def default_choice_name(cls) -> str | None:
        return "transformer_nfn"

    def __post_init__(self):
        if self.classifier_features < 1:
            raise ValueError(f"model.classifier_features must be positive, got {self.classifier_features}")
        if self.embedding_features < 0:
            raise ValueError(f"model.embedding_features must be >= 0, got {self.embedding_features}")

    @abc.abstractmethod
    def build(self, *, key) -> eqx.Module:
        """A freshly initialised predictor ``model(weights: ZooWeights) -> [N]`` accuracies in (0, 1)."""


class Mlp(eqx.Module):
    """Linear layers with ``activation`` after each (``final_activation`` says whether after the last), on ``[N, F]``."""

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


def layer_norm(ln: eqx.nn.LayerNorm, x: jax.Array) -> jax.Array:
    """A learned-affine LayerNorm over the last axis of ``[N, F]``."""
    return jax.vmap(ln)(x)


def sigmoid_head(head: eqx.nn.Linear, features: list[jax.Array]) -> jax.Array:
    """concat -> Linear(., 1) -> sigmoid: ``[N]`` predicted accuracies."""
    return jax.nn.sigmoid(jax.vmap(head)(jnp.concatenate(features, axis=1))[:, 0])
