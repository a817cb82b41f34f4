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
from .block_permutation import permute_blocks
from .vit import tensor_specs


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
    permute_blocks(p, "blocks", cfg, resid, rng)
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
