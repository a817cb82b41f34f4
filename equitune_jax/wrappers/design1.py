"""Design 1 (spec §2.1): N inputs, input i under its own group G_i, with invariant-symmetric (IS) coupling.

Y_i = M^Eq_{i,G_i}(X_i) + c · Σ_{j≠i} M^IS_{ji}(X_j)  (``fusion_rule="sum_others"``, the paper's formula), where

- M^Eq_{i,G_i}(X_i) = (1/|G_i|) Σ_g ρ'_i(g)⁻¹ φ(ρ_i(g) X_i)  (equitune of the shared net φ);
- M^IS_{ji}(X_j) = S_{G_i}[F_j] with F_j = (1/|G_j|) Σ_g ψ(ρ_j(g) X_j): invariant to G_j on its input (orbit mean)
  and symmetric under G_i on its output (Reynolds operator), so Y_i(g·X) = ρ'_i(g_i) Y_i(X) for all (g_1..g_N).

``fusion_rule="reference"`` is the rule the reference trains (its ``Gemini`` model):
Y_i = (E_i + c · (mean_j S_{G_i}[F_j] − E_i)) / (1 + c), the mean over all N inputs including i itself; equally exact,
since E_i is equivariant and the bracket's mean is G-invariant and G_i-symmetric.

One fusion net ψ serves every target ("total minus self": Σ_{j≠i} S_{G_i}[F_j] = S_{G_i}[Σ_j F_j − F_i]).
Cost: Σ_i |G_i| passes of φ plus Σ_j |G_j| of ψ, each in ONE vmapped call over all inputs' orbits. φ and ψ are any
callables; they get a ``key`` only if their signature takes one.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from ..groups import Group, reynolds
from .orbit import accepts_key, batched_call, pull_back_all, tree_mean

FUSION_RULES = ("sum_others", "reference")


def _orbits(groups, xs):
    """All inputs' orbits concatenated on one leading axis (Σ|G_i|), and each input's slice of it."""
    stacks = [g.orbit(x) for g, x in zip(groups, xs, strict=True)]
    slices, start = [], 0
    for g in groups:
        slices.append(slice(start, start + g.size))
        start += g.size
    return jax.tree.map(lambda *leaves: jnp.concatenate(leaves), *stacks), slices


def _take(tree, sl):
    return jax.tree.map(lambda leaf: leaf[sl], tree)


class ISBlock(eqx.Module):
    """M^IS_{ji}: ``x_j -> S_{G_i}[(1/|G_j|) Σ_g ψ(ρ_j(g) x_j)]``, invariant to G_j, symmetric under G_i."""

    model: Callable
    source_group: Group = eqx.field(static=True)
    target_group: Group = eqx.field(static=True)
    model_takes_key: bool | None = eqx.field(static=True, default=None)

    def __post_init__(self):
        if self.model_takes_key is None:
            self.model_takes_key = accepts_key(self.model)

    @property
    def forward_passes(self) -> int:
        return self.source_group.size

    def __call__(self, x, *, key=None):
        mean = tree_mean(batched_call(self.model, self.source_group.orbit(x), key, self.model_takes_key))
        return reynolds(self.target_group, mean)


class MultiInputEquivariant(eqx.Module):
    """Design 1 over an N-tuple of same-shaped inputs; returns the N-tuple (Y_1..Y_N).

    ``equivariant_model`` φ and ``fusion_model`` ψ (or None: no coupling) are shared across inputs; their
    outputs must lie in every Y_i's space (e.g. invariant feature vectors, or equal-shape feature maps).
    ``coupling`` c is learnable (init 0.1); ``fusion_rule`` is ``sum_others`` or ``reference`` (module docstring).
    """

    equivariant_model: Callable
    fusion_model: Callable | None
    coupling: jax.Array
    groups: tuple[Group, ...] = eqx.field(static=True)
    fusion_rule: str = eqx.field(static=True, default="sum_others")
    equivariant_takes_key: bool | None = eqx.field(static=True, default=None)
    fusion_takes_key: bool | None = eqx.field(static=True, default=None)

    def __post_init__(self):
        if self.equivariant_takes_key is None:
            self.equivariant_takes_key = accepts_key(self.equivariant_model)
        if self.fusion_takes_key is None:
            self.fusion_takes_key = self.fusion_model is not None and accepts_key(self.fusion_model)

    def __check_init__(self):
        if self.fusion_rule not in FUSION_RULES:
            raise ValueError(f"model.fusion_rule must be one of {FUSION_RULES}, got {self.fusion_rule!r}")

    @property
    def forward_passes(self) -> int:
        """Σ_i |G_i| for φ, plus Σ_j |G_j| for ψ when there is one."""
        total = sum(g.size for g in self.groups)
        return total * (2 if self.fusion_model is not None else 1)

    def orbit_inputs(self, xs):
        """[Σ|G_i|, ...]: every input's orbit, concatenated (what φ and ψ each see in one call)."""
        return _orbits(self.groups, xs)[0]

    def __call__(self, xs, *, key=None):
        k_eq, k_fuse = (None, None) if key is None else jax.random.split(key)
        stacked, slices = _orbits(self.groups, xs)
        ys = batched_call(self.equivariant_model, stacked, k_eq, self.equivariant_takes_key)
        outs = [tree_mean(pull_back_all(g, _take(ys, sl))) for g, sl in zip(self.groups, slices)]
        if self.fusion_model is None:
            return tuple(outs)
        zs = batched_call(self.fusion_model, stacked, k_fuse, self.fusion_takes_key)
        own = [tree_mean(_take(zs, sl)) for sl in slices]  # F_j, G_j-invariant
        total = jax.tree.map(lambda *leaves: sum(leaves), *own)
        c, n = self.coupling, len(self.groups)
        result = []
        for g, eq, f in zip(self.groups, outs, own):
            if self.fusion_rule == "sum_others":
                others = reynolds(g, jax.tree.map(lambda t, s: t - s, total, f))
                result.append(jax.tree.map(lambda e, o: e + c * o, eq, others))
            else:
                mean = reynolds(g, jax.tree.map(lambda t: t / n, total))
                result.append(jax.tree.map(lambda e, m: (e + c * (m - e)) / (1 + c), eq, mean))
        return tuple(result)


def multi_input_equivariant(equivariant_model, groups, fusion_model=None, coupling: float = 0.1,
                            fusion_rule: str = "sum_others") -> MultiInputEquivariant:
    return MultiInputEquivariant(equivariant_model, fusion_model, jnp.asarray(coupling, jnp.float32), tuple(groups),
                                 fusion_rule)
