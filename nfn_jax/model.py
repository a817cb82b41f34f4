"""The Transformer-NFN accuracy predictor (nfn.md §4, "Full predictor").

- Encoder branch (``enc_mode: inv``): per block ``E(1 -> C)`` -> ReLU on the MLP slots -> ``I(C -> C)`` ->
  that block's own LayerNorm(C); concat over blocks -> LN -> Linear(·, C) -> LN -> ReLU -> Linear(C, C) -> LN ->
  ReLU -> Linear(C, C). Invariant under an independent group element per block.
- Classifier branch (``cls_mode: mlp``): flattened classifier -> Linear(·, C) -> ReLU -> Linear -> ReLU -> Linear -> ReLU.
- Embedding branch (``emb_mode: linear``, only when the zoo stores an embedding): one Linear(·, C).
- Head: concat -> Linear(·, 1) -> sigmoid. MNIST zoo, C = 10: 1,812,181 parameters.
"""

from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp

from .layers import EquivariantLayer, InvariantLayer, relu_mlp_slots
from .predictor import Mlp, PredictorConfig, layer_norm, sigmoid_head
from .weights import ZooWeights

ENC_MODES, CLS_MODES, EMB_MODES = ("inv", "none"), ("mlp", "none"), ("linear", "none")


@PredictorConfig.register_subclass("transformer_nfn")
@dataclass(frozen=True)
class TransformerNFNConfig(PredictorConfig):
    hidden_channels: int = 10  # C: channels of E and I, and width of every branch
    input_channels: int = 1
    enc_mode: str = "inv"
    cls_mode: str = "mlp"
    emb_mode: str = "linear"

    def __post_init__(self):
        super().__post_init__()
        if self.hidden_channels < 1:
            raise ValueError(f"model.hidden_channels must be positive, got {self.hidden_channels}")
        for name, allowed in (("enc_mode", ENC_MODES), ("cls_mode", CLS_MODES), ("emb_mode", EMB_MODES)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"model.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if (self.enc_mode, self.cls_mode) == ("none", "none") and not self.uses_embedding:
            raise ValueError("model.enc_mode, model.cls_mode and model.emb_mode are all off: nothing to predict from")

    @property
    def uses_embedding(self) -> bool:
        return self.emb_mode == "linear" and self.embedding_features > 0

    def build(self, *, key, dtype=jnp.float32) -> "TransformerNFN":
        # one compiled initialiser instead of hundreds of eagerly dispatched random draws
        return eqx.filter_jit(TransformerNFN.init)(self, key=key, dtype=dtype)


class EncoderBranch(eqx.Module):
    """Per block E -> slot ReLU -> I -> own LN; concat; LN -> Linear -> LN -> ReLU -> Linear -> LN -> ReLU -> Linear."""

    equivariant: tuple[EquivariantLayer, ...]
    invariant: tuple[InvariantLayer, ...]
    block_norms: tuple[eqx.nn.LayerNorm, ...]
    concat_norm: eqx.nn.LayerNorm
    linears: tuple[eqx.nn.Linear, eqx.nn.Linear, eqx.nn.Linear]
    hidden_norms: tuple[eqx.nn.LayerNorm, eqx.nn.LayerNorm]

    @staticmethod
    def init(config: TransformerNFNConfig, *, key, dtype) -> "EncoderBranch":
        spec, C, nb = config.weight_space, config.hidden_channels, config.weight_space.n_blocks
        keys = jax.random.split(key, 2 * nb + 3)
        return EncoderBranch(
            equivariant=tuple(EquivariantLayer.init(spec, config.input_channels, C, key=k, dtype=dtype) for k in keys[:nb]),
            invariant=tuple(InvariantLayer.init(spec, C, C, key=k, dtype=dtype) for k in keys[nb : 2 * nb]),
            block_norms=tuple(eqx.nn.LayerNorm(C, dtype=dtype) for _ in range(nb)),
            concat_norm=eqx.nn.LayerNorm(nb * C, dtype=dtype),
            linears=(eqx.nn.Linear(nb * C, C, key=keys[-3], dtype=dtype), eqx.nn.Linear(C, C, key=keys[-2], dtype=dtype),
                     eqx.nn.Linear(C, C, key=keys[-1], dtype=dtype)),
            hidden_norms=(eqx.nn.LayerNorm(C, dtype=dtype), eqx.nn.LayerNorm(C, dtype=dtype)),
        )

    def invariant_features(self, weights: ZooWeights) -> jax.Array:
        """``[N, n_blocks * C]``: each block's I output after its own LayerNorm, concatenated."""
        per_block = [layer_norm(ln, inv(relu_mlp_slots(eq(block))))
                     for eq, inv, ln, block in zip(self.equivariant, self.invariant, self.block_norms, weights.blocks)]
        return jnp.concatenate(per_block, axis=1)

    def __call__(self, weights: ZooWeights) -> jax.Array:
        x = layer_norm(self.concat_norm, self.invariant_features(weights))
        x = jax.nn.relu(layer_norm(self.hidden_norms[0], jax.vmap(self.linears[0])(x)))
        x = jax.nn.relu(layer_norm(self.hidden_norms[1], jax.vmap(self.linears[1])(x)))
        return jax.vmap(self.linears[2])(x)


class TransformerNFN(eqx.Module):
    """``model(weights: ZooWeights) -> [N]`` predicted test accuracy (module docstring)."""

    encoder: EncoderBranch | None
    classifier: Mlp | None
    embedding: eqx.nn.Linear | None
    head: eqx.nn.Linear

    @staticmethod
    def init(config: TransformerNFNConfig, *, key, dtype=jnp.float32) -> "TransformerNFN":
        ke, kc, kb, kh = jax.random.split(key, 4)
        C = config.hidden_channels
        encoder = EncoderBranch.init(config, key=ke, dtype=dtype) if config.enc_mode == "inv" else None
        classifier = (Mlp.init((config.classifier_features, C, C, C), key=kc, final_activation=True)
                      if config.cls_mode == "mlp" else None)
        embedding = eqx.nn.Linear(config.embedding_features, C, key=kb, dtype=dtype) if config.uses_embedding else None
        n_features = C * sum(x is not None for x in (encoder, classifier, embedding))
        model = TransformerNFN(encoder, classifier, embedding, eqx.nn.Linear(n_features, 1, key=kh, dtype=dtype))
        return jax.tree.map(lambda x: x.astype(dtype) if eqx.is_inexact_array(x) else x, model)

    def __call__(self, weights: ZooWeights) -> jax.Array:
        features = []
        if self.encoder is not None:
            features.append(self.encoder(weights))
        if self.classifier is not None:
            features.append(self.classifier(weights.classifier_features()))
        if self.embedding is not None:
            emb = weights.embedding_features()
            if emb is None:
                raise ValueError("model.emb_mode is 'linear' but the weights carry no embedding tensors")
            features.append(jax.vmap(self.embedding)(emb))
        return sigmoid_head(self.head, features)
