"""Equitune: M_G(x) = (1/|G|) Σ_g ρ_Y(g)⁻¹ M(ρ_X(g) x) (spec §2), exactly G-equivariant, |G| passes."""

from collections.abc import Callable

import equinox as eqx

from ..groups import Group
from .orbit import accepts_key, aggregate_outputs, batched_call, check_aggregate, pull_back_all, tree_mean


class Equitune(eqx.Module):
    """Equitune of any callable ``model(x) -> y`` or ``model(x, *, key) -> y``: the orbit of ``x`` in ONE vmapped
    call, outputs pulled back by ρ_Y(g)⁻¹ and averaged. ``x`` and ``y`` are single examples (vmap the wrapper over a
    batch). ``model_takes_key`` is read from the model's signature when the wrapper is built."""

    model: Callable
    group: Group = eqx.field(static=True)
    aggregate: str = eqx.field(static=True, default="features")
    pull_back: bool = eqx.field(static=True, default=True)
    model_takes_key: bool | None = eqx.field(static=True, default=None)

    def __post_init__(self):
        if self.model_takes_key is None:
            self.model_takes_key = accepts_key(self.model)

    def __check_init__(self):
        check_aggregate(self.aggregate)

    @property
    def forward_passes(self) -> int:
        """Base-model passes per example: |G|."""
        return self.group.size

    def branch_outputs(self, x, *, key=None):
        """[|G|, ...]: the aggregated outputs ρ_Y(g)⁻¹ M(g·x), one per element (in ``group.elements`` order, the
        identity first)."""
        ys = batched_call(self.model, self.group.orbit(x), key, self.model_takes_key)
        return pull_back_all(self.group, aggregate_outputs(ys, self.aggregate), self.pull_back)

    def __call__(self, x, *, key=None):
        return tree_mean(self.branch_outputs(x, key=key))


def equitune(model, group: Group, aggregate: str = "features", pull_back: bool = True) -> Equitune:
    return Equitune(model, group, aggregate, pull_back)
