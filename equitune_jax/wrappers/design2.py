"""Design 2 (spec §2.2): one input under a product group G_1×…×G_N at Σ|G_i| passes instead of Π|G_i|.

Y = Σ_i w_i S_{G_{-i}}[ M^Eq_{G_i}( I_{G_{-i}}(x) ) ]

- I_{G_{-i}} (``invariant_maps[i]``) is G_{-i}-invariant and G_i-equivariant (``invariant_maps.py``);
- M^Eq_{G_i} is equitune over factor i alone; S_{G_{-i}} = ∘_{j≠i} S_{G_j} symmetrises the output;
- ``branch_weighting``: ``per_group`` (w_i = 1/N, the paper's average of the N branch means) or ``flat``
  (w_i = |G_i| / Σ_j |G_j|: one mean over all Σ|G_i| branch outputs, what the reference CLIP code computes, e.g.
  4/6 and 2/6 for rot90 × flip). Both are exact: the weights do not depend on the input.

Exact when the factor actions commute (a direct product) — checked before anything compiles — or, with
``allow_noncommuting=True``, when every I canonicalises over the whole group (CLIP rot90 × vflip, spec §4).
All Σ|G_i| branch inputs go through the base model (any callable) in ONE vmapped call.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from ..groups import Group, commute, default_probe, reynolds
from .orbit import accepts_key, aggregate_outputs, batched_call, check_aggregate, pull_back_all, tree_mean

BRANCH_WEIGHTINGS = ("per_group", "flat")


def _segment(tree, start: int, size: int):
    return jax.tree.map(lambda leaf: leaf[start:start + size], tree)


class MultiEquitune(eqx.Module):
    model: Callable
    groups: tuple[Group, ...] = eqx.field(static=True)
    invariant_maps: tuple[Callable | None, ...] = eqx.field(static=True)
    aggregate: str = eqx.field(static=True, default="features")
    symmetrize: bool = eqx.field(static=True, default=True)
    reduce: str = eqx.field(static=True, default="mean")
    branch_weighting: str = eqx.field(static=True, default="per_group")
    model_takes_key: bool | None = eqx.field(static=True, default=None)

    def __post_init__(self):
        if self.model_takes_key is None:
            self.model_takes_key = accepts_key(self.model)

    def __check_init__(self):
        check_aggregate(self.aggregate)
        if self.reduce not in ("mean", "classwise_max"):
            raise ValueError(f"reduce must be 'mean' or 'classwise_max' (multi_equizero), got {self.reduce!r}")
        if self.branch_weighting not in BRANCH_WEIGHTINGS:
            raise ValueError(f"branch_weighting must be one of {BRANCH_WEIGHTINGS}, got {self.branch_weighting!r}")
        if len(self.invariant_maps) != len(self.groups):
            raise ValueError(f"need one invariant map per factor: {len(self.groups)} groups, "
                             f"{len(self.invariant_maps)} maps")

    @property
    def forward_passes(self) -> int:
        """Σ_i |G_i|."""
        return sum(g.size for g in self.groups)

    def branch_weights(self) -> tuple[float, ...]:
        """w_i of each factor's branch mean (they sum to 1)."""
        if self.branch_weighting == "flat":
            return tuple(g.size / self.forward_passes for g in self.groups)
        return (1.0 / len(self.groups),) * len(self.groups)

    def branch_inputs(self, x):
        """[Σ|G_i|, ...]: factor i's orbit of I_{G_{-i}}(x), concatenated over i."""
        stacks = [g.orbit(x if m is None else m(x)) for g, m in zip(self.groups, self.invariant_maps)]
        return jax.tree.map(lambda *leaves: jnp.concatenate(leaves), *stacks)

    def __call__(self, x, *, key=None):
        raw = batched_call(self.model, self.branch_inputs(x), key, self.model_takes_key)
        ys = aggregate_outputs(raw, self.aggregate)
        if self.reduce == "classwise_max":  # reference "multi_equizero": max over all branch outputs (invariant)
            pulled, start = [], 0
            for group in self.groups:
                pulled.append(pull_back_all(group, _segment(ys, start, group.size)))
                start += group.size
            return jax.tree.map(lambda *leaves: jnp.max(jnp.concatenate(leaves), axis=0), *pulled)
        total, start = None, 0
        for i, (group, weight) in enumerate(zip(self.groups, self.branch_weights())):
            branch = tree_mean(pull_back_all(group, _segment(ys, start, group.size)))
            start += group.size
            if self.symmetrize:
                for j, other in enumerate(self.groups):
                    if j != i:
                        branch = reynolds(other, branch)
            branch = jax.tree.map(lambda leaf, w=weight: w * leaf, branch)
            total = branch if total is None else jax.tree.map(jnp.add, total, branch)
        return total


def multi_equitune(model, groups, invariant_maps, aggregate: str = "features", symmetrize: bool = True,
                   probe=None, allow_noncommuting: bool = False, reduce: str = "mean",
                   branch_weighting: str = "per_group") -> MultiEquitune:
    """Design 2. Raises ValueError if two factors do not commute on ``probe = (input, output)`` (default: a
    generic probe of each factor's kind), unless ``allow_noncommuting``."""
    groups = tuple(groups)
    if not allow_noncommuting:
        probe_in, probe_out = probe if probe is not None else default_probe(groups)
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                if not commute(groups[a], groups[b], probe_in, probe_out):
                    raise ValueError(f"group factors {groups[a].name} and {groups[b].name} do not commute: design 2 "
                                     "needs a direct product (or allow_noncommuting with a full-group canonicaliser)")
    return MultiEquitune(model, groups, tuple(invariant_maps), aggregate, symmetrize, reduce, branch_weighting)
