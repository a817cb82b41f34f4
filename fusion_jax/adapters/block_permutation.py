"""The function-preserving permutation of one stacked encoder block's units (shared by the ViT and BERT
symmetry rewrites): one head permutation shared by Q, K and V, within-head permutations shared by Q and K and by
V and O's inputs, the MLP units, and the residual stream ``resid`` on every input column and output row."""

import numpy as np


def head_index(heads: np.ndarray, within: np.ndarray) -> np.ndarray:
    """Flattened ``(heads, head_size)`` index of unit ``(i, s)`` taken from ``(heads[i], within[s])``."""
    return (heads[:, None] * len(within) + within[None, :]).ravel()


def permute_blocks(p: dict[str, np.ndarray], prefix: str, config, resid: np.ndarray, rng) -> None:
    """Permute, in place, every ``{prefix}.{layer}.*`` tensor of ``p`` (canonical ``[units, features]`` layout)
    of a model with ``config.num_layers``, ``num_heads``, ``hidden_dim`` and ``mlp_dim``."""
    head_size = config.hidden_dim // config.num_heads
    for layer in range(config.num_layers):
        n = lambda group: f"{prefix}.{layer}.{group}"  # noqa: E731
        heads = rng.permutation(config.num_heads)
        qk = head_index(heads, rng.permutation(head_size))
        v = head_index(heads, rng.permutation(head_size))
        mlp = rng.permutation(config.mlp_dim)
        for group in ("ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias", "attn.o_proj.bias", "mlp.fc2.bias"):
            p[n(group)] = p[n(group)][resid]
        for proj, units in (("q_proj", qk), ("k_proj", qk), ("v_proj", v)):
            p[n(f"attn.{proj}.weight")] = p[n(f"attn.{proj}.weight")][units][:, resid]
            p[n(f"attn.{proj}.bias")] = p[n(f"attn.{proj}.bias")][units]
        p[n("attn.o_proj.weight")] = p[n("attn.o_proj.weight")][resid][:, v]
        p[n("mlp.fc1.weight")] = p[n("mlp.fc1.weight")][mlp][:, resid]
        p[n("mlp.fc1.bias")] = p[n("mlp.fc1.bias")][mlp]
        p[n("mlp.fc2.weight")] = p[n("mlp.fc2.weight")][resid][:, mlp]
