"""Small DiffEqFormer models for the unit tests (float64 where a test needs exactness)."""

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np
from haliax import Axis

from qkvflow_jax import DiffEqFormerConfig

VOCAB = Axis("vocab", 32)


def small_config(**overrides) -> DiffEqFormerConfig:
    base = dict(max_seq_len=8, hidden_dim=16, num_layers=4, num_heads=2, time_embed_dim=4, sinusoidal_dim=4,
                embed_pdrop=0.0, resid_pdrop=0.0, attn_pdrop=0.0, gradient_checkpointing=True)
    return DiffEqFormerConfig(**{**base, **overrides})


def random_model(config, std: float = 0.05, seed: int = 0, vocab: Axis = VOCAB):
    """The model structure of ``config`` with every float leaf ~ N(0, std^2) (LN_f gamma ~ 1 + N(0, std^2)).

    numpy fills an abstract model: initialising through jax.random compiles one program per array shape, which
    costs minutes on a loaded 2-core CI machine. Tests of the real initialisation call ``config.build``.
    """
    abstract = eqx.filter_eval_shape(lambda: config.build(vocab, key=jax.random.PRNGKey(0)))
    rng = np.random.default_rng(seed)
    leaves, treedef = jax.tree.flatten(abstract)
    filled = [jnp.asarray(rng.normal(size=leaf.shape) * std, jnp.result_type(float))
              if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.inexact) else leaf for leaf in leaves]
    model = jax.tree.unflatten(treedef, filled)
    if hasattr(model, "ln_f"):
        model = eqx.tree_at(lambda m: m.ln_f.weight, model, model.ln_f.weight + 1.0)
    return model


build = random_model


@eqx.filter_jit
def logits(model, ids, key=None):
    return model(ids, key=key)


@eqx.filter_jit
def activations(model, ids, num_steps=None):
    return model.activations(ids) if num_steps is None else model.activations(ids, num_steps=num_steps)


def token_ids(n: int = 8, seed: int = 3):
    return hax.named(jax.random.randint(jax.random.PRNGKey(seed), (n,), 0, VOCAB.size), "position")


def max_abs_diff(a, b) -> float:
    a = a.array if hasattr(a, "array") else a
    b = b.array if hasattr(b, "array") else b
    return float(jnp.max(jnp.abs(a - b)))
