"""Joint step-wise greedy decoding and exact match for seq2seq models and their wrappers (spec §4).

At step t the (wrapped) model scores the common prefix; for a wrapper every branch sees its own transformed
copy of that prefix, the log-probs are pulled back, symmetrised and averaged, and the argmax becomes the next
common token. Exact: decode(h·x) = h·decode(x) for every group element h.
"""

import jax
import jax.numpy as jnp

from .data.scan import OUT_EOS, SOS


def greedy_decode(model, source, max_target: int):
    """[max_target] output ids from ``model((source, prefix)) -> scores [T, V]`` (argmax per step)."""
    prefix = jnp.zeros((max_target,), jnp.int32).at[0].set(SOS)
    out = jnp.zeros((max_target,), jnp.int32)

    def step(t, state):
        prefix, out = state
        token = jnp.argmax(model((source, prefix))[t]).astype(jnp.int32)
        out = out.at[t].set(token)
        prefix = jnp.where(jnp.arange(max_target) == t + 1, token, prefix)
        return prefix, out

    return jax.lax.fori_loop(0, max_target, step, (prefix, out))[1]


def exact_match(predicted, target):
    """1.0 where ``predicted`` equals ``target`` up to and including the target's first <eos>, else 0.0."""
    eos_at = jnp.argmax(target == OUT_EOS, axis=-1)
    relevant = jnp.arange(target.shape[-1]) <= eos_at[..., None]
    return jnp.all((predicted == target) | ~relevant, axis=-1).astype(jnp.float32)
