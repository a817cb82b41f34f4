"""GRU encoder-decoder with dot-product attention for SCAN (spec §6.2, §9.2).

``model((source [S], prefix [T]), *, key) -> logits [T, out_vocab]``: a bidirectional GRU encoder (hidden H)
over the command (padding id 0 is skipped), a GRU decoder (hidden 2H) reading the teacher-forcing prefix,
dot-product attention over the encoder states, a tanh combiner and the output projection. Causal in the
prefix: logits[t] depend only on prefix[:t+1], which joint greedy decoding relies on.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from ..data.scan import PAD


def _masked_scan(cell, inputs, mask, h0):
    """Run ``cell`` over ``inputs`` [L, E], keeping the state unchanged where ``mask`` is False."""

    def step(h, xm):
        x, m = xm
        h = jnp.where(m, cell(x, h), h)
        return h, h

    return jax.lax.scan(step, h0, (inputs, mask))


class GruSeq2Seq(eqx.Module):
    embed_in: eqx.nn.Embedding
    encoder_forward: eqx.nn.GRUCell
    encoder_backward: eqx.nn.GRUCell
    embed_out: eqx.nn.Embedding
    decoder: eqx.nn.GRUCell
    combine: eqx.nn.Linear
    project: eqx.nn.Linear
    dropout: eqx.nn.Dropout

    def __init__(self, in_vocab: int, out_vocab: int, embed_dim: int, hidden: int, dropout: float = 0.0, *, key):
        keys = jax.random.split(key, 7)
        self.embed_in = eqx.nn.Embedding(in_vocab, embed_dim, key=keys[0])
        self.encoder_forward = eqx.nn.GRUCell(embed_dim, hidden, key=keys[1])
        self.encoder_backward = eqx.nn.GRUCell(embed_dim, hidden, key=keys[2])
        self.embed_out = eqx.nn.Embedding(out_vocab, embed_dim, key=keys[3])
        self.decoder = eqx.nn.GRUCell(embed_dim, 2 * hidden, key=keys[4])
        self.combine = eqx.nn.Linear(4 * hidden, 2 * hidden, key=keys[5])
        self.project = eqx.nn.Linear(2 * hidden, out_vocab, key=keys[6])
        self.dropout = eqx.nn.Dropout(dropout)

    def __call__(self, x, *, key=None):
        source, prefix = x
        k_in, k_out = (None, None) if key is None else jax.random.split(key)
        mask = source != PAD
        emb = self.dropout(jax.vmap(self.embed_in)(source), key=k_in, inference=key is None)
        h0 = jnp.zeros(self.encoder_forward.hidden_size, emb.dtype)
        h_fwd, states_fwd = _masked_scan(self.encoder_forward, emb, mask, h0)
        h_bwd, states_bwd = _masked_scan(self.encoder_backward, emb[::-1], mask[::-1], h0)
        memory = jnp.concatenate([states_fwd, states_bwd[::-1]], axis=-1)  # [S, 2H]
        dec_in = self.dropout(jax.vmap(self.embed_out)(prefix), key=k_out, inference=key is None)
        _, dec_states = jax.lax.scan(lambda h, e: (self.decoder(e, h),) * 2, jnp.concatenate([h_fwd, h_bwd]), dec_in)

        def readout(h):
            scores = jnp.where(mask, memory @ h, -jnp.inf)
            context = jax.nn.softmax(scores) @ memory
            return self.project(jnp.tanh(self.combine(jnp.concatenate([h, context]))))

        return jax.vmap(readout)(dec_states)
