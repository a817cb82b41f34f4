"""Greedy decoding and exact match for seq2seq models and their wrappers (spec §4 "Decoding", §6.2).

Two ways to decode a wrapper (``decode_mode``):

- ``joint`` (default, exact): at step t the wrapper scores the common prefix; every branch sees its own transformed
  copy of that prefix, the log-probs are pulled back, symmetrised and averaged, and the argmax becomes the next common
  token. decode(h·x) = h·decode(x) for every group element h.
- ``independent`` (the reference): every branch decodes free-running on its own transformed command
  (:class:`FreeRunning`), its rows of log-probs are pulled back, symmetrised and averaged, and the prediction is the
  row-wise argmax. Also equivariant, but it averages the scores of misaligned prefixes.

:class:`FreeRunning` also gives the training loss when teacher forcing is off (the reference's ratio 0.5).
"""

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp

from .data.scan import OUT_EOS, SOS
from .wrappers.orbit import accepts_key

DECODE_MODES = ("joint", "independent")


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


def _free_running_logits(model, source, length: int, key, takes_key: bool):
    """[length, V] logits of free-running greedy decoding: the model's own ``greedy`` when it has one (an RNN steps
    once per token), else the whole prefix re-scored at every step."""
    if hasattr(model, "greedy"):
        return model.greedy(source, length, key=key)

    def call(prefix):
        return model((source, prefix), key=key) if takes_key else model((source, prefix))

    prefix = jnp.zeros((length,), jnp.int32).at[0].set(SOS)
    shape = jax.eval_shape(call, prefix)

    def step(t, state):
        prefix, rows = state
        scores = call(prefix)[t]
        token = jax.lax.stop_gradient(jnp.argmax(scores)).astype(jnp.int32)
        return jnp.where(jnp.arange(length) == t + 1, token, prefix), rows.at[t].set(scores)

    return jax.lax.fori_loop(0, length, step, (prefix, jnp.zeros(shape.shape, shape.dtype)))[1]


class FreeRunning(eqx.Module):
    """``source [S] -> log-probs [T, V]`` of free-running greedy decoding by ``model`` (the reference's forward with
    ``use_teacher_forcing=False``): rows after the model's own first <eos> are zeros, as the reference's
    ``decoder_outputs`` buffer after its ``break``."""

    model: eqx.Module
    length: int = eqx.field(static=True)
    model_takes_key: bool | None = eqx.field(static=True, default=None)

    def __post_init__(self):
        if self.model_takes_key is None:
            self.model_takes_key = accepts_key(self.model)

    def __call__(self, source, *, key=None):
        logits = _free_running_logits(self.model, source, self.length, key, self.model_takes_key)
        logp = jax.nn.log_softmax(logits, axis=-1)
        eos = jnp.argmax(logp, axis=-1) == OUT_EOS
        first = jnp.where(jnp.any(eos), jnp.argmax(eos), self.length)
        return jnp.where((jnp.arange(self.length) <= first)[:, None], logp, 0.0)


def is_wrapper(model) -> bool:
    """An equitune-family wrapper (it averages ``aggregate`` outputs of its ``model`` over branches)."""
    return hasattr(model, "aggregate") and hasattr(model, "model") and hasattr(model, "forward_passes")


def free_running(model, length: int):
    """``source -> log-probs [T, V]`` decoding free-running: the model itself, or for a wrapper every branch
    independently (the wrapper around :class:`FreeRunning`, averaging its log-probs as they are)."""
    if not is_wrapper(model):
        return FreeRunning(model, length)
    return dataclasses.replace(model, model=FreeRunning(model.model, length), aggregate="features",
                               model_takes_key=None)


def predict(model, source, max_target: int, decode_mode: str = "joint"):
    """[max_target] predicted ids of ``model`` on one command under ``decode_mode``."""
    if decode_mode == "joint":
        return greedy_decode(model, source, max_target)
    if decode_mode == "independent":
        return jnp.argmax(free_running(model, max_target)(source), axis=-1).astype(jnp.int32)
    raise ValueError(f"decode_mode must be one of {DECODE_MODES}, got {decode_mode!r}")


def exact_match(predicted, target):
    """1.0 where ``predicted`` equals ``target`` up to and including the target's first <eos>, else 0.0."""
    eos_at = jnp.argmax(target == OUT_EOS, axis=-1)
    relevant = jnp.arange(target.shape[-1]) <= eos_at[..., None]
    return jnp.all((predicted == target) | ~relevant, axis=-1).astype(jnp.float32)
