"""Collecting a model's activation taps for the activation cost (spec fusion.md §3.1, §13 "Taps").

Equinox has no hooks: each family's adapter has a jitted ``forward_with_taps(model, inputs, keep)`` that runs the
model in inference mode and returns, for every tap named in ``keep``, the tokens it keeps
``[batch, kept tokens, units]`` (the token filter is applied on the device, so only kept tokens reach the host).
:func:`collect_in_batches` runs it over all probe inputs in batches of ``acts.batch_size`` (by default every
probe in one pass), padding a last partial batch so the pass compiles once.

``keep``: ``{tap name: kept token indices (a tuple) or None for every token}``, static under jit.
"""

from collections.abc import Callable

import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np
from haliax import NamedArray

Keep = dict[str, tuple[int, ...] | None]


def select_tokens(tap: jnp.ndarray, tokens: tuple[int, ...] | None) -> jnp.ndarray:
    """``[batch, tokens, units]`` -> ``[batch, kept, units]``."""
    return tap if tokens is None else tap[:, np.asarray(tokens)]


def collect_in_batches(forward: Callable[[object, NamedArray, Keep], dict[str, jnp.ndarray]], model,
                       inputs: np.ndarray, axes: tuple[str, ...], dtype, keep: Keep,
                       batch_size: int) -> dict[str, np.ndarray]:
    """``forward`` over ``inputs [N, ...]`` (named ``axes``, cast to ``dtype``) in batches of ``batch_size``;
    numpy ``{tap: [N, kept tokens, units]}`` float32."""
    n = len(inputs)
    size = min(batch_size, n)
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, n, size):
        chunk = np.asarray(inputs[start : start + size])
        valid = len(chunk)
        if valid < size:  # pad: one compiled shape for every batch
            chunk = np.concatenate([chunk, np.zeros((size - valid, *chunk.shape[1:]), chunk.dtype)])
        taps = jax.device_get(forward(model, hax.named(jnp.asarray(chunk, dtype), axes), keep))
        for name, value in taps.items():
            parts.setdefault(name, []).append(np.asarray(value)[:valid])
    return {name: values[0] if len(values) == 1 else np.concatenate(values) for name, values in parts.items()}
