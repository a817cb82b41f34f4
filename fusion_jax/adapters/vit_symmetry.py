"""Function-preserving rewrites of a ViT, used to test fusion (spec fusion.md §16 tests 2 and 7).

``permute_vit``: a random permutation of the residual stream, of the heads (one head permutation shared by
Q, K and V), within heads (one shared by Q and K, another for V and O's inputs) and of the MLP units.
``widen_mlp``: net2net widening, every MLP unit duplicated ``k`` times with its outgoing weights divided by k.
"""

import dataclasses

import jax
import numpy as np

from common_jax.models import ViT

from ..params import read_params, write_params
from .vit import tensor_specs


def _head_index(heads: np.ndarray, within: np.ndarray) -> np.ndarray:
    """Flattened ``(heads, head_size)`` index of unit ``(i, s)`` taken from ``(heads[i], within[s])``."""
    return (heads[:, None] * len(within) + within[None, :]).ravel()


def permute_vit(model: ViT, seed: int) -> ViT:
    """A copy of ``model`` computing the same function with permuted hidden units and heads."""
    cfg = model.config
    rng = np.random.default_rng(seed)
    resid = rng.permutation(cfg.hidden_dim)
    p = read_params(model, tensor_specs(model))
    for name in ("patch_embed.proj.weight", "patch_embed.proj.bias", "cls_token", "pos_embed", "ln_final.weight",
                 "ln_final.bias"):
        p[name] = p[name][resid]
    p["head.weight"] = p["head.weight"][:, resid]
    head_size = cfg.hidden_dim // cfg.num_heads
    for layer in range(cfg.num_layers):
        n = lambda group: f"blocks.{layer}.{group}"  # noqa: E731
        heads = rng.permutation(cfg.num_heads)
        qk = _head_index(heads, rng.permutation(head_size))
        v = _head_index(heads, rng.permutation(head_size))
        mlp = rng.permutation(cfg.mlp_dim)
        for group in ("ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias", "attn.o_proj.bias", "mlp.fc2.bias"):
            p[n(group)] = p[n(group)][resid]
        for proj, units in (("q_proj", qk), ("k_proj", qk), ("v_proj", v)):
            p[n(f"attn.{proj}.weight")] = p[n(f"attn.{proj}.weight")][units][:, resid]
            p[n(f"attn.{proj}.bias")] = p[n(f"attn.{proj}.bias")][units]
        p[n("attn.o_proj.weight")] = p[n("attn.o_proj.weight")][resid][:, v]
        p[n("mlp.fc1.weight")] = p[n("mlp.fc1.weight")][mlp][:, resid]
        p[n("mlp.fc1.bias")] = p[n("mlp.fc1.bias")][mlp]
        p[n("mlp.fc2.weight")] = p[n("mlp.fc2.weight")][resid][:, mlp]
    return write_params(model, tensor_specs(model), p)


def widen_mlp(model: ViT, factor: int, seed: int) -> ViT:
    """A ViT with ``factor`` times the MLP width computing the same function (net2net, units shuffled)."""
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    cfg = model.config
    wide_cfg = dataclasses.replace(cfg, mlp_dim=cfg.mlp_dim * factor)
    template = wide_cfg.build(key=jax.random.PRNGKey(0))
    p = read_params(model, tensor_specs(model))
    for layer in range(cfg.num_layers):
        n = lambda group: f"blocks.{layer}.{group}"  # noqa: E731
        shuffle = np.random.default_rng([seed, layer]).permutation(wide_cfg.mlp_dim)
        units = np.tile(np.arange(cfg.mlp_dim), factor)[shuffle]
        p[n("mlp.fc1.weight")] = p[n("mlp.fc1.weight")][units]
        p[n("mlp.fc1.bias")] = p[n("mlp.fc1.bias")][units]
        p[n("mlp.fc2.weight")] = p[n("mlp.fc2.weight")][:, units] / factor
    return write_params(template, tensor_specs(template), p)
