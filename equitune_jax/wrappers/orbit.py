"""Running a base model once over a whole orbit, and the per-branch output transforms (spec §2, §10).

Every wrapper stacks its transformed copies of the input on ONE leading axis and calls the base model once
through :func:`batched_call` (a ``jax.vmap``); the tests count these calls at trace time (T7).

The base model is any callable ``model(x) -> y``; when it takes a ``key`` keyword (an Equinox module with dropout,
``model(x, *, key)``), :func:`accepts_key` says so once, when the wrapper is built, and each copy gets its own key.
"""

import inspect

import jax
import jax.numpy as jnp

AGGREGATES = ("features", "logits", "log_softmax", "softmax")
ORBIT_AXIS = "orbit"  # the vmapped orbit axis' name (batch statistics, e.g. BatchNorm, reduce over it)


def accepts_key(model) -> bool:
    """Whether ``model`` takes a ``key`` keyword argument (or ``**kwargs``). A callable whose signature cannot be
    read (a C builtin) is called without one."""
    try:
        parameters = inspect.signature(model).parameters.values()
    except (TypeError, ValueError):
        return False
    return any((p.name == "key" and p.kind is not p.POSITIONAL_ONLY) or p.kind is p.VAR_KEYWORD for p in parameters)


def batched_call(model, xs, key=None, takes_key: bool = True):
    """``model(x, key=k)`` (or ``model(x)`` when not ``takes_key``) for every ``x`` on the leading axis of the pytree
    ``xs``, as ONE vmapped call over the axis named :data:`ORBIT_AXIS`.

    Each copy gets its own key (so train-mode dropout draws independent masks per branch, spec §4).
    """
    if not takes_key:
        return jax.vmap(model, axis_name=ORBIT_AXIS)(xs)
    n = jax.tree.leaves(xs)[0].shape[0]
    if key is None:
        return jax.vmap(lambda x: model(x, key=None), axis_name=ORBIT_AXIS)(xs)
    return jax.vmap(lambda x, k: model(x, key=k), axis_name=ORBIT_AXIS)(xs, jax.random.split(key, n))


def aggregate_outputs(y, aggregate: str):
    """The quantity averaged over the orbit: raw ``features``/``logits``, or the ``log_softmax``/``softmax``
    of the last axis (the reference averages log-softmax for SCAN, softmax for CLIP)."""
    if aggregate in ("features", "logits"):
        return y
    if aggregate == "log_softmax":
        return jax.nn.log_softmax(y, axis=-1)
    if aggregate == "softmax":
        return jax.nn.softmax(y, axis=-1)
    raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")


def pull_back_all(group, ys, pull_back: bool = True):
    """Stack of ρ_Y(g)⁻¹ y_g over the elements (``ys`` has the orbit on its leading axis).

    ``pull_back=False`` applies ρ_Y(g) instead: the reference's push-forward, correct only for involutions
    (spec §3 "Push-forward trap"); kept as a negative control.
    """
    outs = []
    for index, g in enumerate(group.elements):
        y = jax.tree.map(lambda leaf, i=index: leaf[i], ys)
        outs.append(group.act_output(group.inverse(g) if pull_back else g, y))
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *outs)


def tree_mean(ys):
    return jax.tree.map(lambda leaf: jnp.mean(leaf, axis=0), ys)


def check_aggregate(aggregate: str) -> None:
    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
