"""Relaxed equivariance over a vocabulary (R-EquiGPT2 of the ancestor EquiNLG code, spec §6.3 "relaxed variants").

The wrapper's (equivariant) scores are kept for the ``equivariant_ids`` of the last axis — the swapped words and
the "neutral" words that must be treated alike — and every other ("general") token takes the base model's own
score M(x). EquiNLG computes this by masking the pulled-back logits of each group element (the identity keeps
every token, scaled by |G|; the other elements keep only the non-general ones) and averaging; the result is the same.

For :class:`Equitune`, M(x) is the identity element's branch (free: the identity is element 0 of every group); for
any other wrapper (e.g. design 2's :class:`MultiEquitune`, whose branches run on collapsed inputs) it costs one more
pass. Equivariance then holds exactly on the ``equivariant_ids`` only.
"""

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .equitune_wrapper import Equitune
from .orbit import accepts_key, aggregate_outputs


class RelaxedEquivariant(eqx.Module):
    wrapper: eqx.Module
    equivariant_ids: tuple[int, ...] = eqx.field(static=True)
    vocab_size: int = eqx.field(static=True)
    model_takes_key: bool | None = eqx.field(static=True, default=None)

    def __post_init__(self):
        if self.model_takes_key is None:
            self.model_takes_key = accepts_key(self.wrapper.model)

    def __check_init__(self):
        ids = np.asarray(self.equivariant_ids)
        if ids.size and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"relaxed equivariant ids must lie in [0, {self.vocab_size}), got {sorted(set(ids))}")

    @property
    def forward_passes(self) -> int:
        extra = 0 if isinstance(self.wrapper, Equitune) else 1
        return self.wrapper.forward_passes + extra

    def _mask(self):
        mask = np.zeros(self.vocab_size, bool)
        mask[list(self.equivariant_ids)] = True
        return jnp.asarray(mask)

    def __call__(self, x, *, key=None):
        k_wrap, k_own = (None, None) if key is None else jax.random.split(key)
        if isinstance(self.wrapper, Equitune):
            branches = self.wrapper.branch_outputs(x, key=k_wrap)
            equivariant = jax.tree.map(lambda leaf: jnp.mean(leaf, axis=0), branches)
            own = jax.tree.map(lambda leaf: leaf[0], branches)
        else:
            equivariant = self.wrapper(x, key=k_wrap)
            model = self.wrapper.model
            raw = model(x, key=k_own) if self.model_takes_key else model(x)
            own = aggregate_outputs(raw, self.wrapper.aggregate)
        return jnp.where(self._mask(), equivariant, own)


def relaxed(wrapper, equivariant_ids: Sequence[int], vocab_size: int) -> RelaxedEquivariant:
    """R-variant of ``wrapper`` (an :class:`Equitune` or any wrapper with ``.model`` and ``.aggregate``)."""
    return RelaxedEquivariant(wrapper, tuple(sorted({int(i) for i in equivariant_ids})), int(vocab_size))
