"""Neural baselines on raw weights (nfn.md §6): flattened-weight MLP and STATNN (Unterthiner et al.).

Neither sees training hyper-parameters; both end in concat -> Linear(·, 1) -> sigmoid and train with the same BCE.
"""

import math
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp

from ..predictor import Mlp, PredictorConfig, sigmoid_head
from ..weights import BLOCK_SLOTS, CLASSIFIER_KEYS, ZooWeights

STAT_QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)


def flat_encoder(weights: ZooWeights) -> jax.Array:
    """Every block slot (channel 0) flattened and concatenated: ``[N, n_blocks * |block|]``."""
    n = weights.num_models
    return jnp.concatenate([getattr(b, s)[:, 0].reshape(n, -1) for b in weights.blocks for s in BLOCK_SLOTS], axis=1)


def tensor_statistics(x: jax.Array) -> jax.Array:
    """7 statistics of each model's tensor ``[N, ...]``: mean, unbiased variance, quantiles 0/.25/.5/.75/1 -> ``[N, 7]``."""
    flat = x.reshape(x.shape[0], -1)
    quantiles = jnp.quantile(flat, jnp.asarray(STAT_QUANTILES, flat.dtype), axis=1).T
    return jnp.concatenate([flat.mean(1, keepdims=True), flat.var(1, ddof=1, keepdims=True), quantiles], axis=1)


def statnn_features(weights: ZooWeights) -> jax.Array:
    """Statistics of the 8 tensors of every block and of the 4 classifier tensors: ``[N, 7 * (8 n_blocks + 4)]``."""
    tensors = [getattr(b, s)[:, 0] for b in weights.blocks for s in BLOCK_SLOTS] + [weights.classifier[k] for k in CLASSIFIER_KEYS]
    return jnp.concatenate([tensor_statistics(t) for t in tensors], axis=1)


def _encoder_size(config: PredictorConfig) -> int:
    return config.weight_space.n_blocks * sum(math.prod(s) for s in config.weight_space.slot_shapes().values())


@PredictorConfig.register_subclass("mlp")
@dataclass(frozen=True)
class MlpPredictorConfig(PredictorConfig):
    """Flattened encoder -> (50, 50); flattened classifier -> (50, 50); embedding -> Linear 50; head."""

    width: int = 50

    def build(self, *, key) -> "MlpPredictor":
        ke, kc, kb, kh = jax.random.split(key, 4)
        w = self.width
        embedding = eqx.nn.Linear(self.embedding_features, w, key=kb) if self.embedding_features else None
        return MlpPredictor(
            Mlp.init((_encoder_size(self), w, w), key=ke, final_activation=True),
            Mlp.init((self.classifier_features, w, w), key=kc, final_activation=True),
            embedding, eqx.nn.Linear(w * (3 if embedding is not None else 2), 1, key=kh))


class MlpPredictor(eqx.Module):
    encoder: Mlp
    classifier: Mlp
    embedding: eqx.nn.Linear | None
    head: eqx.nn.Linear

    def __call__(self, weights: ZooWeights) -> jax.Array:
        features = [self.encoder(flat_encoder(weights)), self.classifier(weights.classifier_features())]
        if self.embedding is not None:
            features.append(jax.vmap(self.embedding)(weights.embedding_features()))
        return sigmoid_head(self.head, features)


@PredictorConfig.register_subclass("statnn")
@dataclass(frozen=True)
class StatNNPredictorConfig(PredictorConfig):
    """Tensor statistics -> Linear(·, 256) -> ReLU -> Linear(256, 256) -> ReLU; embedding -> Linear 64; head."""

    width: int = 256
    embedding_width: int = 64

    def build(self, *, key) -> "StatNNPredictor":
        ks, kb, kh = jax.random.split(key, 3)
        n_stats = 7 * (len(BLOCK_SLOTS) * self.weight_space.n_blocks + len(CLASSIFIER_KEYS))
        embedding = eqx.nn.Linear(self.embedding_features, self.embedding_width, key=kb) if self.embedding_features else None
        head_in = self.width + (self.embedding_width if embedding is not None else 0)
        return StatNNPredictor(Mlp.init((n_stats, self.width, self.width), key=ks, final_activation=True), embedding,
                               eqx.nn.Linear(head_in, 1, key=kh))


class StatNNPredictor(eqx.Module):
    stats: Mlp
    embedding: eqx.nn.Linear | None
    head: eqx.nn.Linear

    def __call__(self, weights: ZooWeights) -> jax.Array:
        features = [self.stats(statnn_features(weights))]
        if self.embedding is not None:
            features.append(jax.vmap(self.embedding)(weights.embedding_features()))
        return sigmoid_head(self.head, features)
