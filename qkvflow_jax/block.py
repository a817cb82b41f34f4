"""One evaluation of the GPT-variant vector field from concrete block weights (spec §1.1, §1.3).

    F(X) = Drop(Attn(LN^a X)) + Drop(MLP(LN^m X))        (parallel GPT-J/PaLM block, no residual inside)

The same function serves the continuous model (weights generated at tau by the hypernetwork) and the
discretised L'-layer transformer (weights of layer i), so the two agree by construction.
"""

import equinox as eqx
import haliax as hax
import jax
from haliax import NamedArray
from levanter.layers.attention import AttentionMask, dot_product_attention

from .units import apply_linear, layer_norm


class BlockWeights(eqx.Module):
    """The tensors of one parallel GPT block (shapes of spec §1.6; biases may be None).

    qkv_w (Embed, Qkv, Heads, HeadSize), qkv_b (Qkv, Heads, HeadSize); out_w (Heads, HeadSize, Embed), out_b
    (Embed); fc_w (Embed, Mlp), fc_b (Mlp); proj_w (Mlp, Embed), proj_b (Embed); LN scale/shift (Embed) each.
    """

    qkv_w: NamedArray
    qkv_b: NamedArray | None
    out_w: NamedArray
    out_b: NamedArray | None
    fc_w: NamedArray
    fc_b: NamedArray | None
    proj_w: NamedArray
    proj_b: NamedArray | None
    ln_attn_gamma: NamedArray
    ln_attn_beta: NamedArray
    ln_mlp_gamma: NamedArray
    ln_mlp_beta: NamedArray


def parallel_block(config, w: BlockWeights, x: NamedArray, mask: AttentionMask | NamedArray | None, *,
                   key=None) -> NamedArray:
    """F(x) for x (..., position, embed); dropout only when ``key`` is given (training)."""
    Embed, Heads, HeadSize, Mlp = config.Embed, config.Heads, config.HeadSize, config.Mlp
    k_attn, k_resid_a, k_resid_m = jax.random.split(key, 3) if key is not None else (None, None, None)
    inference = key is None

    h = layer_norm(x, Embed, w.ln_attn_gamma, w.ln_attn_beta, config.layer_norm_epsilon)
    qkv = apply_linear(h, w.qkv_w, w.qkv_b, Embed)
    q = qkv["qkv", 0]
    k = qkv["qkv", 1].rename({"position": "key_position"})
    v = qkv["qkv", 2].rename({"position": "key_position"})
    attn = dot_product_attention("position", "key_position", HeadSize, q, k, v, mask=mask, inference=inference,
                                 dropout=config.attn_pdrop, prng=k_attn, attn_backend=config.attn_backend,
                                 flash_block_size=config.flash_attention_block_size)
    attn_out = apply_linear(attn, w.out_w, w.out_b, (Heads, HeadSize))

    h = layer_norm(x, Embed, w.ln_mlp_gamma, w.ln_mlp_beta, config.layer_norm_epsilon)
    hidden = hax.nn.gelu(apply_linear(h, w.fc_w, w.fc_b, Embed), approximate=True)  # gelu_new
    mlp_out = apply_linear(hidden, w.proj_w, w.proj_b, Mlp)

    attn_out = hax.nn.dropout(attn_out, config.resid_pdrop, inference=inference, key=k_resid_a)
    mlp_out = hax.nn.dropout(mlp_out, config.resid_pdrop, inference=inference, key=k_resid_m)
    return attn_out + mlp_out
