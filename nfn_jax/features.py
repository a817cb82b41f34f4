"""Non-equivariant features of zoo models (the reference's ``mlp`` and ``statnn`` branch modes, nfn.md §4, §6).

Each featurizer maps :class:`~nfn_jax.weights.ZooWeights` (raw weights, ``C = 1``) to ``[N, F]``:

- ``flat_encoder``: every block slot flattened (the reference's ``FlattenWeightsTransformer``);
- ``flat_classifier``: ``[fc1.W, fc1.b, fc2.W, fc2.b]`` flattened (``FlattenWeights``);
- ``encoder_statistics``: 7 statistics of each of the 8 tensors of every block (``StatFeaturizerTransformer``);
- ``classifier_statistics``: 7 statistics of each classifier weight and bias (``StatFeaturizer``).

The statistics (Unterthiner et al.) are mean, unbiased variance and the quantiles 0, .25, .5, .75, 1 (linear
interpolation, as ``torch.quantile``). The order of the features differs from the reference's where that changes
nothing a first Linear layer with i.i.d. initialisation could tell apart.
"""

import math

import jax
import jax.numpy as jnp

from .weights import BLOCK_SLOTS, CLASSIFIER_KEYS, WeightSpaceSpec, ZooWeights

STAT_QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)
STATS_PER_TENSOR = 2 + len(STAT_QUANTILES)


def flat_encoder(weights: ZooWeights) -> jax.Array:
    """Every block slot (channel 0) flattened and concatenated: ``[N, n_blocks * |block|]``."""
    n = weights.num_models
    return jnp.concatenate([getattr(b, s)[:, 0].reshape(n, -1) for b in weights.blocks for s in BLOCK_SLOTS], axis=1)


def flat_classifier(weights: ZooWeights) -> jax.Array:
    return weights.classifier_features()


def tensor_statistics(x: jax.Array) -> jax.Array:
    """7 statistics of each model's tensor ``[N, ...]``: mean, unbiased variance, quantiles 0/.25/.5/.75/1 -> ``[N, 7]``."""
    flat = x.reshape(x.shape[0], -1)
    quantiles = jnp.quantile(flat, jnp.asarray(STAT_QUANTILES, flat.dtype), axis=1).T
    return jnp.concatenate([flat.mean(1, keepdims=True), flat.var(1, ddof=1, keepdims=True), quantiles], axis=1)


def encoder_statistics(weights: ZooWeights) -> jax.Array:
    """``[N, 7 * 8 * n_blocks]``."""
    return jnp.concatenate([tensor_statistics(getattr(b, s)[:, 0]) for b in weights.blocks for s in BLOCK_SLOTS], axis=1)


def classifier_statistics(weights: ZooWeights) -> jax.Array:
    """``[N, 7 * 4]``."""
    return jnp.concatenate([tensor_statistics(weights.classifier[k]) for k in CLASSIFIER_KEYS], axis=1)


FEATURIZERS = {"flat_encoder": flat_encoder, "flat_classifier": flat_classifier,
               "encoder_statistics": encoder_statistics, "classifier_statistics": classifier_statistics}


def feature_count(name: str, spec: WeightSpaceSpec, classifier_features: int) -> int:
    """``F`` of featurizer ``name`` for the weight space ``spec`` and a flattened classifier of that length."""
    return {"flat_encoder": spec.n_blocks * sum(math.prod(s) for s in spec.slot_shapes().values()),
            "flat_classifier": classifier_features,
            "encoder_statistics": STATS_PER_TENSOR * len(BLOCK_SLOTS) * spec.n_blocks,
            "classifier_statistics": STATS_PER_TENSOR * len(CLASSIFIER_KEYS)}[name]
