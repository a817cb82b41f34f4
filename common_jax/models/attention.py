"""Bidirectional multi-head self-attention with separate Q, K, V and output projections."""

import equinox as eqx
import haliax as hax
import haliax.nn as hnn
from haliax import Axis, NamedArray
from haliax.jax_utils import maybe_rng_split

Pos, KeyPos = "position", "key_position"


class Attention(eqx.Module):
    """``softmax(Q K^T / sqrt(d_head)) V`` per head, then ``W_O``; Q, K, V, O kept separate so weight-space
    methods (fusion, NFN) can address each of them.

    Shapes: ``x`` is ``[..., position, embed]``; the optional boolean ``mask`` broadcasts against
    ``[..., heads, position, key_position]`` (True = attend).
    """

    q_proj: hnn.Linear  # embed -> (heads, head_size)
    k_proj: hnn.Linear
    v_proj: hnn.Linear
    o_proj: hnn.Linear  # (heads, head_size) -> embed
    dropout: hnn.Dropout

    @staticmethod
    def init(Embed: Axis, Heads: Axis, HeadSize: Axis, *, dropout: float = 0.0, use_bias: bool = True, key):
        kq, kk, kv, ko = maybe_rng_split(key, 4)
        proj = lambda k: hnn.Linear.init(In=Embed, Out=(Heads, HeadSize), key=k, use_bias=use_bias)  # noqa: E731
        o_proj = hnn.Linear.init(In=(Heads, HeadSize), Out=Embed, key=ko, use_bias=use_bias)
        return Attention(proj(kq), proj(kk), proj(kv), o_proj, hnn.Dropout(dropout))

    @property
    def HeadSize(self) -> Axis:
        return self.q_proj.Out[-1]

    def weights(self, x: NamedArray, mask: NamedArray | None = None) -> NamedArray:
        """Attention probabilities ``[..., heads, position, key_position]``."""
        q = self.q_proj(x)
        k = self.k_proj(x).rename({Pos: KeyPos})
        return hnn.attention.dot_product_attention_weights(self.HeadSize, KeyPos, q, k, mask=mask)

    def __call__(self, x: NamedArray, mask: NamedArray | None = None, *, key=None) -> NamedArray:
        probs = self.dropout(self.weights(x, mask), key=key)
        v = self.v_proj(x).rename({Pos: KeyPos})
        return self.o_proj(hax.dot(probs, v, axis=KeyPos))
