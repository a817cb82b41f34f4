"""λ-equitune (spec §2): a learned λ(g·x) weights the orbit; exactly equivariant for any λ.

Two forms, ``weighting``:

- ``"outputs"`` (the λ-equitune formula): M^λ_G(x) = Σ_g λ(g·x) ρ_Y(g)⁻¹ A(M(g·x)) / Σ_g λ(g·x), with λ ≥ 0 and ``A``
  the ``aggregate`` (``normalize=False`` divides by |G| instead of Σ_g λ(g·x));
- ``"feature_scale"`` (what the reference CLIP code computes, basusourya/lambda_equitune ``eval_clip``): λ(g·x)
  multiplies the model's output *before* the aggregate, M^λ_G(x) = (1/|G|) Σ_g ρ_Y(g)⁻¹ A(λ(g·x) · M(g·x)). For
  zero-shot CLIP, M = logit_factor · cos(image features, class embeddings), so this is λ scaling the normalised image
  features inside the softmax (a per-transform temperature), and the softmaxes are averaged plainly; λ is the raw
  output of an MLP and may be negative. ``normalize`` does not apply.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from ..groups import Group
from .orbit import accepts_key, aggregate_outputs, batched_call, check_aggregate, pull_back_all, tree_mean

LAMBDA_WEIGHTINGS = ("outputs", "feature_scale")


class LambdaEquitune(eqx.Module):
    """λ-equitune of any callable ``model``; ``weight_net(g·x) -> λ`` (a scalar, any callable) scores each
    transformed input. Both callables get a ``key`` only if their signature takes one."""

    model: Callable
    weight_net: Callable
    group: Group = eqx.field(static=True)
    aggregate: str = eqx.field(static=True, default="features")
    normalize: bool = eqx.field(static=True, default=True)
    weighting: str = eqx.field(static=True, default="outputs")
    model_takes_key: bool | None = eqx.field(static=True, default=None)
    weight_net_takes_key: bool | None = eqx.field(static=True, default=None)

    def __post_init__(self):
        if self.model_takes_key is None:
            self.model_takes_key = accepts_key(self.model)
        if self.weight_net_takes_key is None:
            self.weight_net_takes_key = accepts_key(self.weight_net)

    def __check_init__(self):
        check_aggregate(self.aggregate)
        if self.weighting not in LAMBDA_WEIGHTINGS:
            raise ValueError(f"lambda weighting must be one of {LAMBDA_WEIGHTINGS}, got {self.weighting!r}")

    @property
    def forward_passes(self) -> int:
        return self.group.size

    def weights(self, xs, *, key=None):
        """[|G|]: λ of every transformed input (``xs`` has the orbit on its leading axis)."""
        lam = batched_call(self.weight_net, xs, key, self.weight_net_takes_key)
        return jnp.reshape(lam, (self.group.size,))

    def __call__(self, x, *, key=None):
        k_model, k_weight = (None, None) if key is None else jax.random.split(key)
        xs = self.group.orbit(x)
        raw = batched_call(self.model, xs, k_model, self.model_takes_key)
        weights = self.weights(xs, key=k_weight)
        if self.weighting == "feature_scale":
            scaled = jax.tree.map(lambda leaf: leaf * jnp.reshape(weights, (-1,) + (1,) * (leaf.ndim - 1)), raw)
            return tree_mean(pull_back_all(self.group, aggregate_outputs(scaled, self.aggregate)))
        ys = pull_back_all(self.group, aggregate_outputs(raw, self.aggregate))
        total = jnp.sum(weights) if self.normalize else self.group.size
        return jax.tree.map(lambda leaf: jnp.tensordot(weights, leaf, axes=1) / total, ys)


def lambda_equitune(model, group: Group, weight_net, aggregate: str = "features", normalize: bool = True,
                    weighting: str = "outputs") -> LambdaEquitune:
    return LambdaEquitune(model, weight_net, group, aggregate, normalize, weighting)
