"""Neural baselines on raw weights (nfn.md §6). None sees training hyper-parameters; all end in concat ->
Linear(·, 1) -> sigmoid and train with the same BCE.

The reference's baselines are its own predictor with other branch modes (``model.type``):

- ``mlp``: flattened block weights -> 10 -> ReLU -> 10 -> ReLU; flattened classifier -> 10 -> 10 -> 10 (ReLU after
  each); embedding -> Linear 10 (the reference's sweep: ``enc_mode mlp, cls_mode mlp, emb_mode mlp``).
- ``statnn``: statistics of the block tensors -> 10 -> ReLU -> 10 -> ReLU; statistics of the classifier tensors ->
  10 -> ReLU -> 10 -> ReLU; embedding -> Linear 10 (``enc_mode statnn, cls_mode statnn``, the reference's widths).

The port's earlier, wider baselines stay as options:

- ``mlp_wide``: the same branches 50 wide.
- ``statnn_wide``: one MLP over the statistics of all block and classifier tensors -> 256 -> 256; embedding ->
  Linear 64; head.
"""

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp

from ..features import classifier_statistics, encoder_statistics, feature_count
from ..model import TransformerNFNConfig
from ..predictor import Mlp, PredictorConfig, sigmoid_head
from ..weights import ZooWeights


@PredictorConfig.register_subclass("mlp")
@dataclass(frozen=True)
class MlpPredictorConfig(TransformerNFNConfig):
    enc_mode: str = "mlp"
    cls_mode: str = "mlp"
    emb_mode: str = "mlp"


@PredictorConfig.register_subclass("statnn")
@dataclass(frozen=True)
class StatNNPredictorConfig(TransformerNFNConfig):
    enc_mode: str = "statnn"
    cls_mode: str = "statnn"
    emb_mode: str = "mlp"
    classifier_channels: tuple[int, ...] = (10,)


@PredictorConfig.register_subclass("mlp_wide")
@dataclass(frozen=True)
class MlpWidePredictorConfig(MlpPredictorConfig):
    encoder_channels: tuple[int, ...] = (50,)
    encoder_out: int = 50
    classifier_channels: tuple[int, ...] = (50,)
    classifier_out: int = 50
    embedding_out: int = 50


@PredictorConfig.register_subclass("statnn_wide")
@dataclass(frozen=True)
class StatNNWidePredictorConfig(PredictorConfig):
    """Statistics of every block and classifier tensor -> Linear(·, 256) -> ReLU -> Linear(256, 256) -> ReLU."""

    width: int = 256
    embedding_width: int = 64

    def build(self, *, key) -> "StatNNWidePredictor":
        ks, kb, kh = jax.random.split(key, 3)
        n_stats = (feature_count("encoder_statistics", self.weight_space, self.classifier_features)
                   + feature_count("classifier_statistics", self.weight_space, self.classifier_features))
        embedding = eqx.nn.Linear(self.embedding_features, self.embedding_width, key=kb) if self.embedding_features else None
        head_in = self.width + (self.embedding_width if embedding is not None else 0)
        return StatNNWidePredictor(Mlp.init((n_stats, self.width, self.width), key=ks, final_activation=True), embedding,
                                   eqx.nn.Linear(head_in, 1, key=kh))


class StatNNWidePredictor(eqx.Module):
    stats: Mlp
    embedding: eqx.nn.Linear | None
    head: eqx.nn.Linear

    def __call__(self, weights: ZooWeights) -> jax.Array:
        features = [self.stats(jnp.concatenate([encoder_statistics(weights), classifier_statistics(weights)], axis=1))]
        if self.embedding is not None:
            features.append(jax.vmap(self.embedding)(weights.embedding_features()))
        return sigmoid_head(self.head, features)
