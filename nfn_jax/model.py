"""The Transformer-NFN accuracy predictor with the reference's branch modes (nfn.md §4, "Full predictor").

Three branches, each off (``none``; the reference's ``no``, which YAML would read as false) or one of the
reference's modes, concatenated into Linear(·, 1) -> sigmoid:

- Encoder (``enc_mode``): ``inv`` per block ``E(1 -> c1) -> ReLU on the MLP slots -> ... -> E(. -> cL) -> ReLU ->
  I(cL -> cL)`` -> that block's own LayerNorm(cL); concat over blocks -> LN -> MlpHead(``encoder_head_width``, out
  ``encoder_out``); invariant under an independent group element per block. ``mlp``: flattened block weights, and
  ``statnn``: 7 statistics per block tensor, each -> [Linear -> ReLU] per entry of ``encoder_channels`` -> Linear(·,
  ``encoder_out``) -> ReLU.
- Classifier (``cls_mode``): ``hnps`` (:mod:`nfn_jax.hnps`: HNPS layers of ``classifier_channels`` -> pool ->
  MlpHead(``classifier_head_width``)), ``mlp`` (flattened classifier) or ``statnn`` (its statistics) -> [Linear ->
  ReLU] per entry of ``classifier_channels`` -> Linear(·, ``classifier_out``) -> ReLU.
- Embedding (``emb_mode: mlp``, only when the zoo stores an embedding): one Linear(·, ``embedding_out``).

Defaults = the reference's ``main.py``: ``inv`` / ``mlp`` / ``mlp``, one E layer of 10 channels, classifier widths
(10, 10), every output 10 wide: 1,812,181 parameters on the MNIST zoo. (The reference's ``statnn`` classifier takes
its widths from the encoder's list; here each branch has its own.)
"""

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp

from .features import FEATURIZERS, feature_count
from .hnps import HnpsClassifierBranch
from .layers import EquivariantLayer, InvariantLayer, relu_mlp_slots
from .predictor import Mlp, MlpHead, PredictorConfig, layer_norm, sigmoid_head
from .weights import ZooWeights

ENC_MODES, CLS_MODES, EMB_MODES = ("inv", "mlp", "statnn", "none"), ("hnps", "statnn", "mlp", "none"), ("mlp", "none")
FLAT_FEATURES = {("encoder", "mlp"): "flat_encoder", ("encoder", "statnn"): "encoder_statistics",
                 ("classifier", "mlp"): "flat_classifier", ("classifier", "statnn"): "classifier_statistics"}


@PredictorConfig.register_subclass("transformer_nfn")
@dataclass(frozen=True)
class TransformerNFNConfig(PredictorConfig):
    enc_mode: str = "inv"
    cls_mode: str = "mlp"
    emb_mode: str = "mlp"
    input_channels: int = 1  # channels of the raw weights
    encoder_channels: tuple[int, ...] = (10,)  # inv: one E layer per entry; else hidden widths
    encoder_head_width: int = 10  # inv: width of the MlpHead after I (fixed at 10 in the reference)
    encoder_out: int = 10
    classifier_channels: tuple[int, ...] = (10, 10)  # hnps: layer channels; else widths
    classifier_head_width: int = 10  # hnps: width of the MlpHead after the pool
    classifier_out: int = 10
    embedding_out: int = 10

    def __post_init__(self):
        super().__post_init__()
        for name, allowed in (("enc_mode", ENC_MODES), ("cls_mode", CLS_MODES), ("emb_mode", EMB_MODES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"model.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("input_channels", "encoder_head_width", "encoder_out", "classifier_head_width", "classifier_out",
                     "embedding_out"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be positive, got {getattr(self, name)}")
        for name in ("encoder_channels", "classifier_channels"):
            if any(c < 1 for c in getattr(self, name)):
                raise ValueError(f"model.{name} must hold positive widths, got {getattr(self, name)}")
        if self.enc_mode == "inv" and not self.encoder_channels:
            raise ValueError("model.encoder_channels must name at least one E layer when model.enc_mode is 'inv'")
        if (self.enc_mode, self.cls_mode) == ("none", "none") and not self.uses_embedding:
            raise ValueError("model.enc_mode, model.cls_mode and model.emb_mode are all off: nothing to predict from")

    @property
    def uses_embedding(self) -> bool:
        return self.emb_mode == "mlp" and self.embedding_features > 0

    def build(self, *, key, dtype=jnp.float32) -> "TransformerNFN":
        # one compiled initialiser instead of hundreds of eagerly dispatched random draws
        return eqx.filter_jit(TransformerNFN.init)(self, key=key, dtype=dtype)


class InvariantEncoderBranch(eqx.Module):
    """``enc_mode: inv``: E layers (slot ReLU after each) -> I -> per-block LN; concat -> LN -> MlpHead."""

    equivariant: tuple[tuple[EquivariantLayer, ...], ...]  # [E layer][block]
    invariant: tuple[InvariantLayer, ...]  # [block]
    block_norms: tuple[eqx.nn.LayerNorm, ...]
    concat_norm: eqx.nn.LayerNorm
    head: MlpHead

    @staticmethod
    def init(config: TransformerNFNConfig, *, key, dtype) -> "InvariantEncoderBranch":
        spec, nb, channels = config.weight_space, config.weight_space.n_blocks, config.encoder_channels
        C = channels[-1]
        k_eq, k_inv, k_head = jax.random.split(key, 3)
        sizes = [config.input_channels, *channels]
        eq_keys = jax.random.split(k_eq, (len(channels), nb))
        return InvariantEncoderBranch(
            equivariant=tuple(tuple(EquivariantLayer.init(spec, c_in, c_out, key=k, dtype=dtype) for k in layer_keys)
                              for c_in, c_out, layer_keys in zip(sizes[:-1], sizes[1:], eq_keys)),
            invariant=tuple(InvariantLayer.init(spec, C, C, key=k, dtype=dtype) for k in jax.random.split(k_inv, nb)),
            block_norms=tuple(eqx.nn.LayerNorm(C, dtype=dtype) for _ in range(nb)),
            concat_norm=eqx.nn.LayerNorm(nb * C, dtype=dtype),
            head=MlpHead.init(nb * C, config.encoder_head_width, config.encoder_out, key=k_head),
        )

    def invariant_features(self, weights: ZooWeights) -> jax.Array:
        """``[N, n_blocks * C]``: each block's I output after its own LayerNorm, concatenated."""
        per_block = []
        for i, (inv, ln, block) in enumerate(zip(self.invariant, self.block_norms, weights.blocks)):
            for layer in self.equivariant:
                block = relu_mlp_slots(layer[i](block))
            per_block.append(layer_norm(ln, inv(block)))
        return jnp.concatenate(per_block, axis=1)

    def __call__(self, weights: ZooWeights) -> jax.Array:
        return self.head(layer_norm(self.concat_norm, self.invariant_features(weights)))


class FeatureMlpBranch(eqx.Module):
    """``mlp`` / ``statnn`` modes: a featurizer of :mod:`nfn_jax.features` -> :class:`~nfn_jax.predictor.Mlp` (ReLU last)."""

    featurizer: str = eqx.field(static=True)
    mlp: Mlp

    def __call__(self, weights: ZooWeights) -> jax.Array:
        return self.mlp(FEATURIZERS[self.featurizer](weights))


def _feature_branch(config: TransformerNFNConfig, branch: str, mode: str, *, key) -> FeatureMlpBranch:
    featurizer = FLAT_FEATURES[(branch, mode)]
    sizes = (feature_count(featurizer, config.weight_space, config.classifier_features),
             *getattr(config, f"{branch}_channels"), getattr(config, f"{branch}_out"))
    return FeatureMlpBranch(featurizer, Mlp.init(sizes, key=key, final_activation=True))


def _encoder_branch(config: TransformerNFNConfig, *, key, dtype):
    if config.enc_mode == "none":
        return None
    if config.enc_mode == "inv":
        return InvariantEncoderBranch.init(config, key=key, dtype=dtype)
    return _feature_branch(config, "encoder", config.enc_mode, key=key)


def _classifier_branch(config: TransformerNFNConfig, *, key, dtype):
    if config.cls_mode == "none":
        return None
    if config.cls_mode == "hnps":
        return HnpsClassifierBranch.init(config.classifier_shapes, config.input_channels, config.classifier_channels,
                                         config.classifier_head_width, config.classifier_out, key=key, dtype=dtype)
    return _feature_branch(config, "classifier", config.cls_mode, key=key)


class TransformerNFN(eqx.Module):
    """``model(weights: ZooWeights) -> [N]`` predicted test accuracy (module docstring)."""

    encoder: InvariantEncoderBranch | FeatureMlpBranch | None
    classifier: HnpsClassifierBranch | FeatureMlpBranch | None
    embedding: eqx.nn.Linear | None
    head: eqx.nn.Linear

    @staticmethod
    def init(config: TransformerNFNConfig, *, key, dtype=jnp.float32) -> "TransformerNFN":
        ke, kc, kb, kh = jax.random.split(key, 4)
        encoder = _encoder_branch(config, key=ke, dtype=dtype)
        classifier = _classifier_branch(config, key=kc, dtype=dtype)
        embedding = (eqx.nn.Linear(config.embedding_features, config.embedding_out, key=kb, dtype=dtype)
                     if config.uses_embedding else None)
        n_features = ((config.encoder_out if encoder is not None else 0)
                      + (config.classifier_out if classifier is not None else 0)
                      + (config.embedding_out if embedding is not None else 0))
        model = TransformerNFN(encoder, classifier, embedding, eqx.nn.Linear(n_features, 1, key=kh, dtype=dtype))
        return jax.tree.map(lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, model)

    def __call__(self, weights: ZooWeights) -> jax.Array:
        features = []
        if self.encoder is not None:
            features.append(self.encoder(weights))
        if self.classifier is not None:
            features.append(self.classifier(weights))
        if self.embedding is not None:
            emb = weights.embedding_features()
            if emb is None:
                raise ValueError("model.emb_mode is 'mlp' but the weights carry no embedding tensors")
            features.append(jax.vmap(self.embedding)(emb))
        return sigmoid_head(self.head, features)
