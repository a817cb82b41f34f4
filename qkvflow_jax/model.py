"""DiffEqFormer, GPT variant (spec §1): a parallel transformer block whose weights are functions of depth-time.

    X(0) = Drop(E_tok[ids] + E_pos[pos]);  dX/dt = F(X, t) = Attn_t(LN^a_t X) + MLP_t(LN^m_t X);
    logits = LN_f(X(1)) E_tok^T   (tied unembedding)

``ParallelVectorField`` holds the six time-dependent units (fused QKV, attention output, MLP fc and proj, two
LayerNorms) and evaluates F(x, t); ``DiffEqFormerLMHeadModel`` integrates it over t in [0, 1] with
``num_layers`` Euler steps (or a diffrax solver) and is a levanter ``LmHeadModel``.
"""

import equinox as eqx
import haliax as hax
import haliax.nn as hnn
import jax
from haliax import Axis, NamedArray
from levanter.layers.attention import AttentionMask
from levanter.models.lm_model import LmHeadModel

from .block import BlockWeights, parallel_block
from .config import DiffEqFormerConfig
from .embeddings import TokenAndPositionEmbeddings, final_layer_norm
from .time_features import fourier_time_features, legacy_compute_dtype_grid, random_shift_grid, uniform_grid
from .solvers import diffrax_solve, euler_fold, euler_scan
from .units import TimeDependentLinear, TimeDependentNorm


def time_features(config, t, compute_dtype) -> NamedArray:
    """phi(t) as a NamedArray (TimeFeat), built in f32 or wider unless ``time_features_dtype: compute`` (F2)."""
    dtype = compute_dtype if config.time_features_dtype == "compute" else None
    phi = fourier_time_features(t, config.sinusoidal_dim, config.time_scale, config.time_max_period, dtype=dtype)
    return hax.named(phi, config.TimeFeat)


def integration_grid(config, num_steps: int, compute_dtype, key=None):
    """(tau, dt) for ``num_steps`` Euler steps: uniform right-endpoint grid, the reference's compute-dtype grid
    (F2 legacy), or the randomised grid in training (``time_grid: random_shift`` and a key given)."""
    if config.time_grid == "random_shift" and key is not None:
        return random_shift_grid(num_steps, key)
    if config.time_features_dtype == "compute":
        return legacy_compute_dtype_grid(num_steps, compute_dtype)
    return uniform_grid(num_steps)


def integrate_field(config, field, x0: NamedArray, mask, num_steps: int, key=None) -> NamedArray:
    """X(1) from X(0) with the configured solver; dropout keys only for euler_scan.

    ``field(x, t, mask, key)`` evaluates F; for ``weight_generation: batched`` it also has ``weights_at(t, dtype)``
    and ``apply(weights, x, mask, key)``, and the weights of every step are generated before the loop."""
    if config.solver.uses_diffrax:
        x1, _ = diffrax_solve(field, x0, mask, num_steps, config.solver)
        return x1
    grid_key, step_key = jax.random.split(key) if key is not None else (None, None)
    tau, dt = integration_grid(config, num_steps, x0.dtype, grid_key)
    keys = jax.random.split(step_key, tau.shape[0]) if step_key is not None else None
    if config.weight_generation == "per_step":
        return euler_scan(lambda x, t, k: field(x, t, mask, k), x0, tau, dt, keys,
                          checkpoint=config.gradient_checkpointing)
    Steps = Axis("layers", tau.shape[0])
    weights = hax.vmap(lambda t: field.weights_at(t.array, x0.dtype), Steps)(hax.named(tau, Steps))
    return euler_fold(lambda x, w, k: field.apply(w, x, mask, k), x0, weights, dt, keys, Steps=Steps,
                      checkpoint=config.gradient_checkpointing)


class ParallelVectorField(eqx.Module):
    """F(x, t) of the GPT variant; ``weights_at(t)`` materialises the block tensors W(t), b(t), gamma(t), beta(t)."""

    config: DiffEqFormerConfig = eqx.field(static=True)
    qkv: TimeDependentLinear
    attn_out: TimeDependentLinear
    fc: TimeDependentLinear
    proj: TimeDependentLinear
    ln_attn: TimeDependentNorm
    ln_mlp: TimeDependentNorm

    @staticmethod
    def init(config: DiffEqFormerConfig, *, key) -> "ParallelVectorField":
        c = config
        keys = jax.random.split(key, 6)  # one independent key per unit (fix F9)
        init = c.hypernet_init()
        unit = dict(TimeFeat=c.TimeFeat, TimeEmbed=c.TimeEmbed, init=init, use_bias=c.use_bias,
                    hypernetwork=c.hypernetwork)
        norm = dict(TimeFeat=c.TimeFeat, TimeEmbed=c.TimeEmbed, init=init, hypernetwork=c.hypernetwork)
        return ParallelVectorField(
            config=c,
            qkv=TimeDependentLinear.init(c.Embed, (c.Qkv, c.Heads, c.HeadSize), key=keys[0], **unit),
            attn_out=TimeDependentLinear.init((c.Heads, c.HeadSize), c.Embed, key=keys[1], **unit),
            fc=TimeDependentLinear.init(c.Embed, c.Mlp, key=keys[2], **unit),
            proj=TimeDependentLinear.init(c.Mlp, c.Embed, key=keys[3], **unit),
            ln_attn=TimeDependentNorm.init(c.Embed, key=keys[4], **norm),
            ln_mlp=TimeDependentNorm.init(c.Embed, key=keys[5], **norm),
        )

    def weights_at(self, t, compute_dtype=None) -> BlockWeights:
        """The block tensors generated at depth-time t (a scalar)."""
        compute_dtype = compute_dtype if compute_dtype is not None else self.qkv.W0.dtype
        phi = time_features(self.config, t, compute_dtype)
        qkv_w, qkv_b = self.qkv.weight_and_bias(phi)
        out_w, out_b = self.attn_out.weight_and_bias(phi)
        fc_w, fc_b = self.fc.weight_and_bias(phi)
        proj_w, proj_b = self.proj.weight_and_bias(phi)
        ga, ba = self.ln_attn.scale_and_shift(phi)
        gm, bm = self.ln_mlp.scale_and_shift(phi)
        return BlockWeights(qkv_w, qkv_b, out_w, out_b, fc_w, fc_b, proj_w, proj_b, ga, ba, gm, bm)

    def apply(self, weights: BlockWeights, x: NamedArray, mask: AttentionMask | NamedArray | None = None,
              key=None) -> NamedArray:
        """The parallel block with the given (generated) weights."""
        mask = AttentionMask.causal() if mask is None else mask
        return parallel_block(self.config, weights, x, mask, key=key)

    def __call__(self, x: NamedArray, t, mask: AttentionMask | NamedArray | None = None, key=None) -> NamedArray:
        """F(x, t) for x (..., position, embed): the parallel block with the weights of time t."""
        return self.apply(self.weights_at(t, x.dtype), x, mask, key)


class DiffEqFormerLMHeadModel(LmHeadModel[DiffEqFormerConfig]):
    """Embeddings -> integrate F over [0, 1] -> LN_f -> tied unembedding (spec §1.1, §1.4)."""

    embeddings: TokenAndPositionEmbeddings
    field: ParallelVectorField
    ln_f: hnn.LayerNorm
    _config: DiffEqFormerConfig = eqx.field(static=True)

    @property
    def config(self) -> DiffEqFormerConfig:
        return self._config

    @property
    def Vocab(self) -> Axis:
        return self.embeddings.Vocab

    @classmethod
    def init(cls, Vocab: Axis, config: DiffEqFormerConfig, *, key) -> "DiffEqFormerLMHeadModel":
        k_embed, k_field = jax.random.split(key)
        embeddings = TokenAndPositionEmbeddings.init(Vocab, config, key=k_embed)
        return cls(embeddings, ParallelVectorField.init(config, key=k_field), final_layer_norm(config), config)

    def vector_field(self, x: NamedArray, t, mask=None, *, key=None) -> NamedArray:
        """F(x, t), spec §1.1 (dropout only when a key is given)."""
        return self.field(x, t, mask, key)

    def activations(self, input_ids: NamedArray, attn_mask=None, *, key=None, pos_ids=None,
                    num_steps: int | None = None) -> NamedArray:
        """LN_f(X(1)) with X(1) from ``num_steps`` (default num_layers) steps: any L' evaluates zero-shot."""
        k_embed, k_solve = jax.random.split(key) if key is not None else (None, None)
        mask = AttentionMask.causal() if attn_mask is None else attn_mask
        x = self.embeddings(input_ids, key=k_embed)
        x = integrate_field(self.config, self.field, x, mask, num_steps or self.config.num_layers, k_solve)
        return self.ln_f(x)

    def get_lm_head(self) -> NamedArray:
        return self.embeddings.token_embeddings.weight

    def resize_vocab(self, new_size: int, key=None) -> "DiffEqFormerLMHeadModel":
        return eqx.tree_at(lambda m: m.embeddings, self, self.embeddings.resize_vocab(new_size, key))
