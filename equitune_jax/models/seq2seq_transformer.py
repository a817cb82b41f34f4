"""A small pre-LN transformer encoder-decoder for SCAN (the issue's second seq2seq model).

``model((source [S], prefix [T]), *, key) -> logits [T, out_vocab]``; learned positions, padding (id 0)
masked in the encoder and cross-attention, causal self-attention in the decoder.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from ..data.scan import PAD


class _Block(eqx.Module):
    ln_self: eqx.nn.LayerNorm
    self_attn: eqx.nn.MultiheadAttention
    ln_cross: eqx.nn.LayerNorm | None
    cross_attn: eqx.nn.MultiheadAttention | None
    ln_mlp: eqx.nn.LayerNorm
    mlp: eqx.nn.MLP

    def __init__(self, dim: int, heads: int, mlp_dim: int, cross: bool, *, key):
        k1, k2, k3 = jax.random.split(key, 3)
        self.ln_self = eqx.nn.LayerNorm(dim)
        self.self_attn = eqx.nn.MultiheadAttention(heads, dim, key=k1)
        self.ln_cross = eqx.nn.LayerNorm(dim) if cross else None
        self.cross_attn = eqx.nn.MultiheadAttention(heads, dim, key=k2) if cross else None
        self.ln_mlp = eqx.nn.LayerNorm(dim)
        self.mlp = eqx.nn.MLP(dim, dim, mlp_dim, 1, activation=jax.nn.gelu, key=k3)

    def __call__(self, x, self_mask, memory=None, cross_mask=None):
        h = jax.vmap(self.ln_self)(x)
        x = x + self.self_attn(h, h, h, mask=self_mask)
        if self.cross_attn is not None:
            h = jax.vmap(self.ln_cross)(x)
            x = x + self.cross_attn(h, memory, memory, mask=cross_mask)
        return x + jax.vmap(self.mlp)(jax.vmap(self.ln_mlp)(x))


class TransformerSeq2Seq(eqx.Module):
    embed_in: eqx.nn.Embedding
    embed_out: eqx.nn.Embedding
    pos_in: jax.Array
    pos_out: jax.Array
    encoder: list[_Block]
    decoder: list[_Block]
    ln_final: eqx.nn.LayerNorm
    project: eqx.nn.Linear

    def __init__(self, in_vocab, out_vocab, dim, heads, mlp_dim, layers, max_source, max_target, *, key):
        if dim % heads:
            raise ValueError(f"model.num_heads ({heads}) must divide model.embed_dim ({dim})")
        keys = jax.random.split(key, 5 + 2 * layers)
        self.embed_in = eqx.nn.Embedding(in_vocab, dim, key=keys[0])
        self.embed_out = eqx.nn.Embedding(out_vocab, dim, key=keys[1])
        self.pos_in = 0.02 * jax.random.normal(keys[2], (max_source, dim))
        self.pos_out = 0.02 * jax.random.normal(keys[3], (max_target, dim))
        self.encoder = [_Block(dim, heads, mlp_dim, False, key=k) for k in keys[5:5 + layers]]
        self.decoder = [_Block(dim, heads, mlp_dim, True, key=k) for k in keys[5 + layers:]]
        self.ln_final = eqx.nn.LayerNorm(dim)
        self.project = eqx.nn.Linear(dim, out_vocab, key=keys[4])

    def __call__(self, x, *, key=None):
        source, prefix = x
        keep = source != PAD
        memory = jax.vmap(self.embed_in)(source) + self.pos_in[: source.shape[0]]
        enc_mask = keep[None, :] & keep[:, None] | jnp.eye(source.shape[0], dtype=bool)
        for block in self.encoder:
            memory = block(memory, enc_mask)
        t = prefix.shape[0]
        h = jax.vmap(self.embed_out)(prefix) + self.pos_out[:t]
        causal = jnp.tril(jnp.ones((t, t), bool))
        cross = jnp.broadcast_to(keep[None, :], (t, source.shape[0]))
        for block in self.decoder:
            h = block(h, causal, memory, cross)
        return jax.vmap(self.project)(jax.vmap(self.ln_final)(h))
