"""A function-preserving permutation of BERT (spec fusion.md §16 test 2 for the BERT adapter).

The residual permutation acts on the embedding tables' columns, every LayerNorm, Q/K/V/fc1/transform input
columns, O/fc2 output rows and the transform output (whose basis the tied decoder shares with the word table);
one head permutation is shared by Q, K and V, within-head permutations by Q and K and by V and O's inputs.
"""

import numpy as np

from common_jax.models.bert import BertMlm

from ..params import read_params, write_params
from .bert import tensor_specs
from .block_permutation import permute_blocks


def permute_bert(model: BertMlm, seed: int) -> BertMlm:
    cfg = model.config
    rng = np.random.default_rng(seed)
    resid = rng.permutation(cfg.hidden_dim)
    p = read_params(model, tensor_specs(model))
    for name in ("embeddings.word", "embeddings.position", "embeddings.token_type", "embeddings.ln.weight",
                 "embeddings.ln.bias", "transform.bias", "transform_ln.weight", "transform_ln.bias"):
        p[name] = p[name][resid]
    p["transform.weight"] = p["transform.weight"][resid][:, resid]
    permute_blocks(p, "layers", cfg, resid, rng)
    return write_params(model, tensor_specs(model), p)
