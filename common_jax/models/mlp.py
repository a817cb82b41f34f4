"""The transformer feed-forward block: Linear -> activation -> dropout -> Linear."""

from typing import Callable

import equinox as eqx
import haliax.nn as hnn
from haliax import Axis, NamedArray
from haliax.jax_utils import maybe_rng_split


class Mlp(eqx.Module):
    """``fc2(dropout(act(fc1(x))))`` on the last ``embed`` axis; shapes ``[..., embed] -> [..., embed]``."""

    fc1: hnn.Linear  # embed -> mlp
    fc2: hnn.Linear  # mlp -> embed
    dropout: hnn.Dropout
    activation: Callable = eqx.field(static=True)

    @staticmethod
    def init(Embed: Axis, Mlp_: Axis, *, activation: Callable = hnn.gelu, dropout: float = 0.0, key):
        k1, k2 = maybe_rng_split(key, 2)
        return Mlp(
            hnn.Linear.init(In=Embed, Out=Mlp_, key=k1), hnn.Linear.init(In=Mlp_, Out=Embed, key=k2),
            hnn.Dropout(dropout), activation,
        )

    def __call__(self, x: NamedArray, *, key=None) -> NamedArray:
        return self.fc2(self.dropout(self.activation(self.fc1(x)), key=key))
