"""λ-equitune: M^λ_G(x) = Σ_g λ(g·x) ρ_Y(g)⁻¹ M(g·x) / Σ_g λ(g·x) (spec §2), exact for any λ ≥ 0."""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from ..groups import Group
from .orbit import aggregate_outputs, batched_call, check_aggregate, pull_back_all


class LambdaEquitune(eqx.Module):
    """Weighted equitune; ``weight_net(x, *, key) -> λ ≥ 0`` (a scalar) scores each transformed input.

    ``normalize=True`` (default) divides by Σ_g λ(g·x); ``normalize=False`` is the reference's unnormalised
    form, (1/|G|) Σ_g λ(g·x) ρ_Y(g)⁻¹ M(g·x) (config ``lambda_normalize: false``). Both are equivariant.
    """

    model: Callable
    weight_net: Callable
    group: Group = eqx.field(static=True)
    aggregate: str = eqx.field(static=True, default="features")
    normalize: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        check_aggregate(self.aggregate)

    @property
    def forward_passes(self) -> int:
        return self.group.size

    def __call__(self, x, *, key=None):
        k_model, k_weight = (None, None) if key is None else jax.random.split(key)
        xs = self.group.orbit(x)
        ys = pull_back_all(self.group, aggregate_outputs(batched_call(self.model, xs, k_model), self.aggregate))
        weights = jnp.reshape(batched_call(self.weight_net, xs, k_weight), (self.group.size,))
        total = jnp.sum(weights) if self.normalize else self.group.size

        def combine(leaf):
            return jnp.tensordot(weights, leaf, axes=1) / total

        return jax.tree.map(combine, ys)


def lambda_equitune(model, group: Group, weight_net, aggregate: str = "features", normalize: bool = True):
    return LambdaEquitune(model, weight_net, group, aggregate, normalize)
