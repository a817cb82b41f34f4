"""Invariant-input maps I_{G_{-i}} for design 2 (spec §2.2): G_{-i}-invariant and G_i-equivariant.

- :class:`OrbitCollapse` (tokens): every word of a factor's orbit -> that factor's representative word, on
  inputs and on the teacher-forcing prefix. A many-to-one projection; which words represent is config.
- :class:`TemplateCanonicalizer` (images): the group element maximising ⟨ρ(g)x, W⟩ for a fixed template W
  drawn uniform on [0, 1) from ``seed`` (the reference redraws W every call; here it is seeded).
- :class:`OrbitAverage` (Euclidean): (1/|G_{-i}|) Σ_g ρ(g) x; exact under commuting actions.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from .groups import Group, ImageGroup, Moves, PermutationGroup, _dense, _sparse


def _orbits(perms: Sequence[np.ndarray]) -> list[set[int]]:
    """The non-trivial orbits of the ids under a set of permutations (the group's elements)."""
    seen, orbits = set(), []
    for v in range(len(perms[0])):
        if v in seen:
            continue
        orbit = {int(p[v]) for p in perms}
        seen |= orbit
        if len(orbit) > 1:
            orbits.append(orbit)
    return orbits


def _collapse_moves(factor: PermutationGroup, rep_in: int, rep_out: int) -> tuple[Moves, Moves]:
    result = []
    for perm_of, size, rep, side in ((factor.in_perm, factor.in_vocab_size, rep_in, "input"),
                                     (factor.out_perm, factor.out_vocab_size, rep_out, "output")):
        mapping = np.arange(size)
        for orbit in _orbits([perm_of(g) for g in factor.elements]):
            if rep not in orbit:
                raise ValueError(f"representatives: the {side} representative id {rep} of group {factor.name!r} is "
                                 f"not in its orbit {sorted(orbit)}")
            mapping[sorted(orbit)] = rep
        result.append(_sparse(mapping))
    return result[0], result[1]


@dataclass(frozen=True)
class OrbitCollapse:
    """Maps ids ``x -> m_in[x]`` (or ``(source, prefix) -> (m_in[source], m_out[prefix])``) where ``m`` sends
    every word of each collapsed factor's orbit to its representative."""

    in_moves: Moves
    out_moves: Moves
    in_vocab_size: int
    out_vocab_size: int

    @staticmethod
    def of(factors: Sequence[PermutationGroup], rep_in_ids: Sequence[int], rep_out_ids: Sequence[int]) -> "OrbitCollapse":
        """Collapse each factor's orbits onto its representative (one input and one output id per factor)."""
        if not factors:
            raise ValueError("OrbitCollapse needs at least one factor")
        m_in, m_out = np.arange(factors[0].in_vocab_size), np.arange(factors[0].out_vocab_size)
        for factor, r_in, r_out in zip(factors, rep_in_ids, rep_out_ids, strict=True):
            moves_in, moves_out = _collapse_moves(factor, int(r_in), int(r_out))
            m_in = _dense(moves_in, len(m_in))[m_in]
            m_out = _dense(moves_out, len(m_out))[m_out]
        return OrbitCollapse(_sparse(m_in), _sparse(m_out), len(m_in), len(m_out))

    def __call__(self, x):
        m_in = jnp.asarray(_dense(self.in_moves, self.in_vocab_size))
        if isinstance(x, tuple):
            source, prefix = x
            return m_in[source], jnp.asarray(_dense(self.out_moves, self.out_vocab_size))[prefix]
        return m_in[x]


@dataclass(frozen=True)
class TemplateCanonicalizer:
    """c(x) = ρ(g*) x with g* = argmax_g ⟨ρ(g) x, W⟩, W ~ U[0, 1) of ``shape`` drawn from ``seed``.

    Invariant to every element of ``group`` for generic x; a tie (e.g. a rotation-symmetric image with a
    symmetric W response) picks the first maximiser and breaks invariance.
    """

    group: ImageGroup
    shape: tuple[int, ...]
    seed: int = 0

    def template(self) -> np.ndarray:
        return np.random.default_rng(self.seed).uniform(size=self.shape).astype(np.float32)

    def canonical_index(self, x):
        """The index in ``group.elements`` of g* (the first maximiser on ties)."""
        if tuple(x.shape) != tuple(self.shape):
            raise ValueError(f"canonicaliser template has shape {self.shape} but the input has {tuple(x.shape)}")
        candidates = self.group.orbit(x)
        scores = jnp.sum(candidates * jnp.asarray(self.template(), x.dtype), axis=tuple(range(1, candidates.ndim)))
        return jnp.argmax(scores)

    def __call__(self, x):
        return self.group.orbit(x)[self.canonical_index(x)]


@dataclass(frozen=True)
class OrbitAverage:
    """(1/|G|) Σ_g ρ(g) x over ``group`` (the other factors' product)."""

    group: Group

    def __call__(self, x):
        return jnp.mean(self.group.orbit(x), axis=0)
