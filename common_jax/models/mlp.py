"""The transformer feed-forward block: Linear -> activation -> dropout -> Linear, and its activations by name."""

from collections.abc import Callable

import equinox as eqx
import haliax.nn as hnn
from haliax import Axis, NamedArray
from haliax.jax_utils import maybe_rng_split


def gelu_exact(x: NamedArray) -> NamedArray:
    """GELU with the exact erf, ``x * Phi(x)`` (torch's ``nn.GELU()``, HF's ``"gelu"``)."""
    return hnn.gelu(x, approximate=False)


# A config's ``activation`` name -> the function. Module-level functions (not partials) so that two models built
# from equal configs have equal static fields. ``gelu_tanh`` is haliax's default ``hnn.gelu`` (tanh approximation).
ACTIVATIONS: dict[str, Callable[[NamedArray], NamedArray]] = {
    "gelu": gelu_exact,
    "gelu_tanh": hnn.gelu,
    "quick_gelu": hnn.quick_gelu,  # x * sigmoid(1.702 x), CLIP's
    "relu": hnn.relu,
}


def check_activation(field: str, name: str) -> None:
    """``ValueError`` naming ``field`` unless ``name`` is a key of :data:`ACTIVATIONS`."""
    if name not in ACTIVATIONS:
        raise ValueError(f"{field} must be one of {tuple(ACTIVATIONS)}, got {name!r}")


class Mlp(eqx.Module):
    """``fc2(dropout(act(fc1(x))))`` on the last ``embed`` axis; shapes ``[..., embed] -> [..., embed]``."""

    fc1: hnn.Linear  # embed -> mlp
    fc2: hnn.Linear  # mlp -> embed
    dropout: hnn.Dropout
    activation: Callable = eqx.field(static=True)

    @staticmethod
    def init(Embed: Axis, Mlp_: Axis, *, activation: str = "gelu_tanh", dropout: float = 0.0, key):
        """``activation`` is a name of :data:`ACTIVATIONS`."""
        check_activation("activation", activation)
        k1, k2 = maybe_rng_split(key, 2)
        return Mlp(
            hnn.Linear.init(In=Embed, Out=Mlp_, key=k1), hnn.Linear.init(In=Mlp_, Out=Embed, key=k2),
            hnn.Dropout(dropout), ACTIVATIONS[activation],
        )

    def __call__(self, x: NamedArray, *, key=None) -> NamedArray:
        return self.fc2(self.dropout(self.activation(self.fc1(x)), key=key))
