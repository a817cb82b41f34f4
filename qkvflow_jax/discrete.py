"""The plain L'-layer parallel transformer, the discretiser and LoRA (spec §2, §6 F1, F3, F8).

    x <- x + (1/L') (Attn_i(LN^a_i x) + MLP_i(LN^m_i x)),  i = 0..L'-1      (untied weights on ``layers``)

``discretise(model, L')`` materialises a trained DiffEqFormer's units at tau'_i = (i+1)/L' into independent
per-layer tensors; at L' = L it reproduces the ODE forward (<= 1e-6 in f32). LoRA adapters (rank r, scale
alpha/r) sit on every Linear (qkv, attention-out, fc, proj) with B = 0 at init, so a LoRA model equals its base
at step 0 (``lora_init: reference`` reproduces the reference's 1e-6 N(0, 1) init of both factors, F3).
"""

import dataclasses

import equinox as eqx
import haliax as hax
import haliax.nn as hnn
import jax
from haliax import Axis, NamedArray
from levanter.layers.attention import AttentionMask
from levanter.models.lm_model import LmHeadModel

from .block import BlockWeights, parallel_block
from .config import DiffEqFormerConfig, ParallelTransformerConfig
from .embeddings import TokenAndPositionEmbeddings, final_layer_norm
from .solvers import euler_fold
from .time_features import uniform_grid

LORA_INITS = ("zero", "reference")
LORA_RANK = "lora_rank"
# (BlockWeights field, input axes) of every Linear that carries a LoRA adapter
LORA_TARGETS = ("qkv_w", "out_w", "fc_w", "proj_w")


def _in_axes(config, name: str):
    return {"qkv_w": (config.Embed,), "out_w": (config.Heads, config.HeadSize), "fc_w": (config.Embed,),
            "proj_w": (config.Mlp,)}[name]


def init_block_weights(config: ParallelTransformerConfig, *, key) -> BlockWeights:
    """Random per-layer weights for training from scratch: Linear weights N(0, initializer_range^2), biases 0,
    LN gamma = 1, beta = 0 (spec §1.5, baseline row), stacked on ``layers``."""
    c, L = config, config.Layers
    k_qkv, k_out, k_fc, k_proj = jax.random.split(key, 4)
    normal = lambda k, axes: hax.random.normal(k, (L,) + axes) * c.initializer_range  # noqa: E731
    bias = (lambda axes: hax.zeros((L,) + axes)) if c.use_bias else (lambda axes: None)
    return BlockWeights(
        qkv_w=normal(k_qkv, (c.Embed, c.Qkv, c.Heads, c.HeadSize)), qkv_b=bias((c.Qkv, c.Heads, c.HeadSize)),
        out_w=normal(k_out, (c.Heads, c.HeadSize, c.Embed)), out_b=bias((c.Embed,)),
        fc_w=normal(k_fc, (c.Embed, c.Mlp)), fc_b=bias((c.Mlp,)),
        proj_w=normal(k_proj, (c.Mlp, c.Embed)), proj_b=bias((c.Embed,)),
        ln_attn_gamma=hax.ones((L, c.Embed)), ln_attn_beta=hax.zeros((L, c.Embed)),
        ln_mlp_gamma=hax.ones((L, c.Embed)), ln_mlp_beta=hax.zeros((L, c.Embed)),
    )


class LoraAdapter(eqx.Module):
    """Delta W = scale * a b: a (Layers, *In, LoraRank), b (Layers, LoraRank, *Out)."""

    a: NamedArray
    b: NamedArray
    scale: float = eqx.field(static=True)

    def delta(self) -> NamedArray:
        return hax.dot(self.a, self.b, axis=LORA_RANK) * self.scale


class DiscreteParallelTransformer(LmHeadModel[ParallelTransformerConfig]):
    """Embeddings -> L' parallel blocks with residual 1/L' -> LN_f -> tied unembedding (spec §2)."""

    embeddings: TokenAndPositionEmbeddings
    blocks: BlockWeights
    ln_f: hnn.LayerNorm
    lora: dict[str, LoraAdapter] | None
    _config: ParallelTransformerConfig = eqx.field(static=True)

    @property
    def config(self) -> ParallelTransformerConfig:
        return self._config

    @property
    def Vocab(self) -> Axis:
        return self.embeddings.Vocab

    @classmethod
    def init(cls, Vocab: Axis, config: ParallelTransformerConfig, *, key) -> "DiscreteParallelTransformer":
        k_embed, k_blocks = jax.random.split(key)
        return cls(TokenAndPositionEmbeddings.init(Vocab, config, key=k_embed),
                   init_block_weights(config, key=k_blocks), final_layer_norm(config), None, config)

    def merged_blocks(self) -> BlockWeights:
        """The per-layer weights with the LoRA deltas added (the base weights when there is no adapter)."""
        if self.lora is None:
            return self.blocks
        updates = {name: getattr(self.blocks, name) + adapter.delta() for name, adapter in self.lora.items()}
        return dataclasses.replace(self.blocks, **updates)

    def activations(self, input_ids: NamedArray, attn_mask=None, *, key=None, pos_ids=None) -> NamedArray:
        c = self.config
        k_embed, k_layers = jax.random.split(key) if key is not None else (None, None)
        mask = AttentionMask.causal() if attn_mask is None else attn_mask
        x = self.embeddings(input_ids, key=k_embed)
        _, dt = uniform_grid(c.num_layers)
        keys = jax.random.split(k_layers, c.num_layers) if k_layers is not None else None
        x = euler_fold(lambda x, w, k: parallel_block(c, w, x, mask, key=k), x, self.merged_blocks(), dt, keys,
                       Steps=c.Layers, checkpoint=c.gradient_checkpointing)
        return self.ln_f(x)

    def get_lm_head(self) -> NamedArray:
        return self.embeddings.token_embeddings.weight

    def resize_vocab(self, new_size: int, key=None) -> "DiscreteParallelTransformer":
        return eqx.tree_at(lambda m: m.embeddings, self, self.embeddings.resize_vocab(new_size, key))


def steps_from(num_layers: int | None = None, dt: float | None = None) -> int:
    """L' from an integer or a step size: round(1/dt), not floor (fix F1), with |L' dt - 1| < 1e-6."""
    if (num_layers is None) == (dt is None):
        raise ValueError("give exactly one of num_layers or dt")
    if num_layers is None:
        num_layers = int(round(1.0 / dt))
        if abs(num_layers * dt - 1.0) >= 1e-6:
            raise ValueError(f"dt={dt} is not 1/L' for an integer L' (closest L'={num_layers})")
    if num_layers < 1:
        raise ValueError(f"the discretised depth must be >= 1, got {num_layers}")
    return num_layers


def discretise(model, num_layers: int | None = None, *, dt: float | None = None) -> DiscreteParallelTransformer:
    """Materialise the DiffEqFormer ``model`` at tau'_i = (i+1)/L' into a ``DiscreteParallelTransformer``.

    Every unit's W(tau'_i), b(tau'_i), gamma = 1 + G e(tau'_i), beta = H e(tau'_i) becomes layer i's tensor;
    E_tok, E_pos and LN_f are copied; the hypernetwork is discarded.
    """
    config: DiffEqFormerConfig = model.config
    if config.time_features_dtype != "float32":
        raise ValueError("model.time_features_dtype must be float32 to discretise (the legacy bf16 grid is F2)")
    L = steps_from(num_layers, dt)
    Layers = Axis("layers", L)
    tau, _ = uniform_grid(L)
    blocks = hax.vmap(lambda t: model.field.weights_at(t.array), Layers)(hax.named(tau, Layers))
    if not config.use_bias:
        blocks = dataclasses.replace(blocks, qkv_b=None, out_b=None, fc_b=None, proj_b=None)
    discrete_config = ParallelTransformerConfig(
        max_seq_len=config.max_seq_len, hidden_dim=config.hidden_dim, num_layers=L, num_heads=config.num_heads,
        layer_norm_epsilon=config.layer_norm_epsilon, initializer_range=config.initializer_range,
        gradient_checkpointing=config.gradient_checkpointing, mlp_scale=config.mlp_scale, use_bias=config.use_bias,
        embed_pdrop=config.embed_pdrop, resid_pdrop=config.resid_pdrop, attn_pdrop=config.attn_pdrop,
        token_init_std=config.token_init_std, position_init_std=config.position_init_std,
        attn_backend=config.attn_backend, flash_attention_block_size=config.flash_attention_block_size,
    )
    return DiscreteParallelTransformer(model.embeddings, blocks, model.ln_f, None, discrete_config)


def add_lora(model: DiscreteParallelTransformer, rank: int = 200, alpha: float = 8.0, *, key,
             init: str = "zero", a_std: float = 0.02) -> DiscreteParallelTransformer:
    """Attach LoRA adapters (scale alpha/rank) to qkv, attention-out, fc and proj of every layer.

    ``init: zero`` (default, fix F3): a ~ N(0, a_std^2), b = 0, so the model is unchanged at step 0.
    ``init: reference``: both factors 1e-6 N(0, 1), as the reference did.
    """
    if init not in LORA_INITS:
        raise ValueError(f"lora_init must be one of {LORA_INITS}, got {init!r}")
    if rank < 1:
        raise ValueError(f"lora_rank must be >= 1, got {rank}")
    c, Rank = model.config, Axis(LORA_RANK, rank)
    adapters = {}
    for name, k in zip(LORA_TARGETS, jax.random.split(key, len(LORA_TARGETS))):
        weight = getattr(model.blocks, name)
        in_axes = _in_axes(c, name)
        out_axes = tuple(ax for ax in weight.axes[1:] if ax not in in_axes)
        k_a, k_b = jax.random.split(k)
        a_axes, b_axes = (c.Layers,) + in_axes + (Rank,), (c.Layers, Rank) + out_axes
        if init == "zero":
            a, b = hax.random.normal(k_a, a_axes) * a_std, hax.zeros(b_axes)
        else:
            a, b = hax.random.normal(k_a, a_axes) * 1e-6, hax.random.normal(k_b, b_axes) * 1e-6
        adapters[name] = LoraAdapter(a.astype(weight.dtype), b.astype(weight.dtype), alpha / rank)
    return eqx.tree_at(lambda m: m.lora, model, adapters, is_leaf=lambda x: x is None)


def trainable_filter(model: DiscreteParallelTransformer, mode: str):
    """The levanter ``is_trainable`` spec: everything for ``full``; LoRA factors and the embeddings for ``lora``
    (all other weights, LN included, frozen: the port's choice where the reference is silent, spec §2)."""
    if mode == "full":
        return True
    if mode != "lora" or model.lora is None:
        raise ValueError(f"finetune_mode must be 'full' or 'lora' (with adapters attached), got {mode!r}")
    is_named = lambda x: isinstance(x, NamedArray)  # noqa: E731  (one boolean per parameter tensor)
    spec = jax.tree.map(lambda _: False, model, is_leaf=is_named)
    spec = eqx.tree_at(lambda m: m.lora, spec, jax.tree.map(lambda _: True, model.lora, is_leaf=is_named))
    return eqx.tree_at(lambda m: m.embeddings, spec, jax.tree.map(lambda _: True, model.embeddings,
                                                                  is_leaf=is_named))
