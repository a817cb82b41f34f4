"""DiffEqFormer, Llama variant (spec §1.8): same Euler scheme, grid and parallel form as the GPT variant.

    F(x, t) = Attn_t(RMS^a_t x) + SwiGLU_t(RMS^m_t h),  h = RMS^a_t x ("stacked", the reference) or x ("residual")
    RMS_t(x) = (1 + G e(t)) x / rms(x) + H e(t)        (time bias on by default)

q, k, v, o, gate, up, down are bias-free time-dependent units; RoPE on q and k; static final RMSNorm; untied
lm_head; token embedding ~ N(0, embed_init_std^2) with embed_init_std = 1.0 (reference quirk).
"""

import equinox as eqx
import haliax as hax
import haliax.nn as hnn
import jax
from haliax import Axis, NamedArray
from levanter.layers.attention import AttentionMask, simple_attention_with_dropout
from levanter.models.lm_model import LmHeadModel

from .config import DiffEqFormerLlamaConfig
from .model import integrate_field, time_features
from .units import TimeDependentLinear, TimeDependentNorm, apply_linear, rms_norm


LLAMA_LINEAR_UNITS = ("q", "k", "v", "o", "gate", "up", "down")


class LlamaVectorField(eqx.Module):
    """F(x, t) of the Llama variant from nine time-dependent units."""

    config: DiffEqFormerLlamaConfig = eqx.field(static=True)
    q: TimeDependentLinear
    k: TimeDependentLinear
    v: TimeDependentLinear
    o: TimeDependentLinear
    gate: TimeDependentLinear
    up: TimeDependentLinear
    down: TimeDependentLinear
    rms_attn: TimeDependentNorm
    rms_mlp: TimeDependentNorm

    @staticmethod
    def init(config: DiffEqFormerLlamaConfig, *, key) -> "LlamaVectorField":
        c = config
        keys = jax.random.split(key, 9)  # independent keys per unit (fix F9)
        init = c.hypernet_init()
        unit = dict(TimeFeat=c.TimeFeat, TimeEmbed=c.TimeEmbed, init=init, use_bias=False, hypernetwork=c.hypernetwork)
        norm = dict(TimeFeat=c.TimeFeat, TimeEmbed=c.TimeEmbed, init=init, hypernetwork=c.hypernetwork,
                    time_bias=c.rmsnorm_time_bias)
        heads = (c.Heads, c.HeadSize)
        return LlamaVectorField(
            config=c,
            q=TimeDependentLinear.init(c.Embed, heads, key=keys[0], **unit),
            k=TimeDependentLinear.init(c.Embed, heads, key=keys[1], **unit),
            v=TimeDependentLinear.init(c.Embed, heads, key=keys[2], **unit),
            o=TimeDependentLinear.init(heads, c.Embed, key=keys[3], **unit),
            gate=TimeDependentLinear.init(c.Embed, c.Mlp, key=keys[4], **unit),
            up=TimeDependentLinear.init(c.Embed, c.Mlp, key=keys[5], **unit),
            down=TimeDependentLinear.init(c.Mlp, c.Embed, key=keys[6], **unit),
            rms_attn=TimeDependentNorm.init(c.Embed, key=keys[7], **norm),
            rms_mlp=TimeDependentNorm.init(c.Embed, key=keys[8], **norm),
        )

    def weights_at(self, t, compute_dtype=None) -> "LlamaBlockWeights":
        """The block tensors generated at depth-time t (a scalar)."""
        compute_dtype = compute_dtype if compute_dtype is not None else self.q.W0.dtype
        phi = time_features(self.config, t, compute_dtype)
        linear = {name: getattr(self, name).weight_and_bias(phi)[0] for name in LLAMA_LINEAR_UNITS}
        return LlamaBlockWeights(**linear, rms_attn=self.rms_attn.scale_and_shift(phi),
                                 rms_mlp=self.rms_mlp.scale_and_shift(phi))

    def apply(self, w: "LlamaBlockWeights", x: NamedArray, mask: AttentionMask | NamedArray | None = None,
              key=None) -> NamedArray:
        """F(x) for x (..., position, embed) with the given (generated) block weights."""
        c = self.config
        mask = AttentionMask.causal() if mask is None else mask
        heads = (c.Heads, c.HeadSize)
        h_attn = rms_norm(x, c.Embed, *w.rms_attn, c.layer_norm_epsilon)
        rope = c.rope.build(c.HeadSize)
        positions = hax.arange(x.resolve_axis("position"))
        q = rope(apply_linear(h_attn, w.q, None, c.Embed), positions)
        k = rope(apply_linear(h_attn, w.k, None, c.Embed), positions).rename({"position": "key_position"})
        v = apply_linear(h_attn, w.v, None, c.Embed).rename({"position": "key_position"})
        attn = simple_attention_with_dropout("position", "key_position", c.HeadSize, q, k, v, mask=mask,
                                             inference=True)
        attn_out = apply_linear(attn, w.o, None, heads)

        mlp_in = h_attn if c.llama_mlp_norm == "stacked" else x
        h_mlp = rms_norm(mlp_in, c.Embed, *w.rms_mlp, c.layer_norm_epsilon)
        hidden = hax.nn.silu(apply_linear(h_mlp, w.gate, None, c.Embed)) * apply_linear(h_mlp, w.up, None, c.Embed)
        return attn_out + apply_linear(hidden, w.down, None, c.Mlp)

    def __call__(self, x: NamedArray, t, mask: AttentionMask | NamedArray | None = None, key=None) -> NamedArray:
        """F(x, t) for x (..., position, embed)."""
        return self.apply(self.weights_at(t, x.dtype), x, mask, key)


class LlamaBlockWeights(eqx.Module):
    """The tensors of one Llama-variant block: q, k, v (Embed, Heads, HeadSize), o (Heads, HeadSize, Embed), gate,
    up (Embed, Mlp), down (Mlp, Embed); (scale, shift) of the two RMSNorms, each (Embed)."""

    q: NamedArray
    k: NamedArray
    v: NamedArray
    o: NamedArray
    gate: NamedArray
    up: NamedArray
    down: NamedArray
    rms_attn: tuple[NamedArray, NamedArray]
    rms_mlp: tuple[NamedArray, NamedArray]


class DiffEqFormerLlamaLMHeadModel(LmHeadModel[DiffEqFormerLlamaConfig]):
    """E_tok -> integrate the Llama field over [0, 1] -> final RMSNorm -> untied lm_head (Vocab, Embed)."""

    token_embeddings: hnn.Embedding
    field: LlamaVectorField
    norm_f_weight: NamedArray
    lm_head: NamedArray
    _config: DiffEqFormerLlamaConfig = eqx.field(static=True)

    @property
    def config(self) -> DiffEqFormerLlamaConfig:
        return self._config

    @property
    def Vocab(self) -> Axis:
        return self.token_embeddings.Vocab

    @classmethod
    def init(cls, Vocab: Axis, config: DiffEqFormerLlamaConfig, *, key) -> "DiffEqFormerLlamaLMHeadModel":
        k_embed, k_field, k_head = jax.random.split(key, 3)  # lm_head's own key (fix F9)
        embed = hax.random.normal(k_embed, (Vocab, config.Embed)) * config.embed_init_std
        return cls(hnn.Embedding(weight=embed, Vocab=Vocab, Embed=config.Embed),
                   LlamaVectorField.init(config, key=k_field), hax.ones(config.Embed),
                   hax.random.normal(k_head, (Vocab, config.Embed)) * config.lm_head_init_std, config)

    def vector_field(self, x: NamedArray, t, mask=None, *, key=None) -> NamedArray:
        return self.field(x, t, mask, key)

    def activations(self, input_ids: NamedArray, attn_mask=None, *, key=None, pos_ids=None,
                    num_steps: int | None = None) -> NamedArray:
        mask = AttentionMask.causal() if attn_mask is None else attn_mask
        x = self.token_embeddings.embed(input_ids)
        x = integrate_field(self.config, self.field, x, mask, num_steps or self.config.num_layers, key)
        return rms_norm(x, self.config.Embed, self.norm_f_weight, hax.zeros(self.config.Embed, dtype=x.dtype),
                        self.config.layer_norm_epsilon)

    def get_lm_head(self) -> NamedArray:
        return self.lm_head

    def resize_vocab(self, new_size: int, key=None) -> "DiffEqFormerLlamaLMHeadModel":
        raise NotImplementedError("resizing the vocabulary of the Llama DiffEqFormer is not supported")
