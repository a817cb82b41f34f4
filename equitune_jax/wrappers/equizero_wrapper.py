"""Equizero (spec §2): the branch that minimises a proxy loss, g* = argmin_g L(M(g·x)).

- ``mode="select"``: output ρ_Y(g*)⁻¹ M(g*·x) (equivariant).
- ``mode="classwise_max"``: the reference CLIP variant, the per-class max over g of the pulled-back outputs
  (invariant outputs only; not a single-g* selection).
- ``straight_through=True`` (training form): equitune + stop_gradient(equizero − equitune), so the forward
  value is equizero's and the gradient is equitune's.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from ..groups import Group
from .orbit import accepts_key, aggregate_outputs, batched_call, check_aggregate, pull_back_all, tree_mean

EQUIZERO_MODES = ("select", "classwise_max")


def entropy_loss(y):
    """Entropy of softmax(y) over the last axis, summed over any leading axes."""
    logp = jax.nn.log_softmax(y, axis=-1)
    return -jnp.sum(jnp.exp(logp) * logp)


def neg_max_prob_loss(y):
    """−max softmax(y) over the last axis, summed over any leading axes."""
    return -jnp.sum(jnp.max(jax.nn.softmax(y, axis=-1), axis=-1))


PROXY_LOSSES = {"entropy": entropy_loss, "neg_max_prob": neg_max_prob_loss}


class Equizero(eqx.Module):
    """Equizero of any callable ``model(x) -> y`` or ``model(x, *, key) -> y`` (see the module docstring)."""

    model: Callable
    group: Group = eqx.field(static=True)
    proxy_loss: Callable = eqx.field(static=True, default=entropy_loss)
    mode: str = eqx.field(static=True, default="select")
    aggregate: str = eqx.field(static=True, default="logits")
    straight_through: bool = eqx.field(static=True, default=False)
    model_takes_key: bool | None = eqx.field(static=True, default=None)

    def __post_init__(self):
        if self.model_takes_key is None:
            self.model_takes_key = accepts_key(self.model)

    def __check_init__(self):
        check_aggregate(self.aggregate)
        if self.mode not in EQUIZERO_MODES:
            raise ValueError(f"equizero_mode must be one of {EQUIZERO_MODES}, got {self.mode!r}")

    @property
    def forward_passes(self) -> int:
        return self.group.size

    def __call__(self, x, *, key=None):
        raw = batched_call(self.model, self.group.orbit(x), key, self.model_takes_key)
        losses = jax.vmap(self.proxy_loss)(raw)
        ys = pull_back_all(self.group, aggregate_outputs(raw, self.aggregate))
        if self.mode == "select":
            best = jnp.argmin(losses)
            chosen = jax.tree.map(lambda leaf: leaf[best], ys)
        else:
            chosen = jax.tree.map(lambda leaf: jnp.max(leaf, axis=0), ys)
        if not self.straight_through:
            return chosen
        mean = tree_mean(ys)
        return jax.tree.map(lambda m, c: m + jax.lax.stop_gradient(c - m), mean, chosen)


def equizero(model, group: Group, proxy_loss="entropy", mode="select", aggregate="logits", straight_through=False):
    loss = PROXY_LOSSES[proxy_loss] if isinstance(proxy_loss, str) else proxy_loss
    return Equizero(model, group, loss, mode, aggregate, straight_through)
