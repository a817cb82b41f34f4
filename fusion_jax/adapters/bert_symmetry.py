"""A function-preserving permutation of BERT (spec fusion.md §16 test 2 for the BERT adapter).

The residual permutation acts on the embedding tables' columns, every LayerNorm, Q/K/V/fc1/transform input
columns, O/fc2 output rows and the transform output (whose basis the tied decoder shares with the word table);
one head permutation is shared by Q, K and V, within-head permutations by Q and K and by V and O's inputs.
"""

import numpy as np

from common_jax.models.bert import BertMlm

from ..params import read_params, write_params
from .bert import tensor_specs
from .vit_symmetry import _head_index


def permute_bert(model: BertMlm, seed: int) -> BertMlm:
    cfg = model.config
    rng = np.random.default_rng(seed)
    resid = rng.permutation(cfg.hidden_dim)
    p = read_params(model, tensor_specs(model))
    for name in ("embeddings.word", "embeddings.position", "embeddings.token_type", "embeddings.ln.weight",
                 "embeddings.ln.bias", "transform.bias", "transform_ln.weight", "transform_ln.bias"):
        p[name] = p[name][resid]
    p["transform.weight"] = p["transform.weight"][resid][:, resid]
    head_size = cfg.hidden_dim // cfg.num_heads
    for layer in range(cfg.num_layers):
        n = lambda group: f"layers.{layer}.{group}"  # noqa: E731
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
