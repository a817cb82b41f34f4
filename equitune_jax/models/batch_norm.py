"""Batch normalisation for the multi-image CNN (spec §6.1), without mutable state in the training step.

levanter's Trainer threads no model state, so torch's running averages cannot be updated during training. Instead:

- training (``inference=False``): each example's call normalises with the *batch* statistics, averaged with
  ``jax.lax.pmean`` over the vmapped axes :data:`BATCH_AXES` (the example batch of the loss and the orbit axis of
  ``wrappers.orbit.batched_call``), so a batch's Σ|G_i|·B orbit images are normalised together, as the reference's
  ``siam_operators`` do; gradients flow through the statistics, as in torch;
- after training, :func:`population_statistics` averages the batch statistics (mean, unbiased variance) of training
  batches computed exactly as in training (augmentation, dropout, upstream layers on batch statistics) and writes
  them into ``mean``/``var``; inference (``eqx.nn.inference_mode``) uses those. torch's ``running_mean``/``var`` are an
  exponential average (momentum 0.1) of the same batch statistics, i.e. dominated by the last ~20 batches; here every
  calibration batch counts equally.
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from ..wrappers.orbit import ORBIT_AXIS

BATCH_AXIS = "batch"
BATCH_AXES = (BATCH_AXIS, ORBIT_AXIS)
NORMS = ("layer", "batch")


class BatchNorm(eqx.Module):
    """BatchNorm over channel axis 0 of one example ``[C, ...]`` (``BatchNorm2d`` on ``[C, H, W]``, ``BatchNorm1d`` on
    ``[C]``), learnable affine ``weight``/``bias``, stored ``mean``/``var`` for inference (module docstring). Build it
    with :func:`batch_norm` (the plain field constructor keeps ``dataclasses.replace`` working, which levanter's
    ``inference_mode`` uses)."""

    weight: jax.Array
    bias: jax.Array
    mean: jax.Array
    var: jax.Array
    eps: float = eqx.field(static=True, default=1e-5)
    inference: bool = False

    def _expand(self, v, x):
        return v.reshape((-1,) + (1,) * (x.ndim - 1))

    def batch_statistics(self, x):
        """(mean [C], biased variance [C], number of values per channel) over the batch axes and ``x``'s spatial axes;
        needs :data:`BATCH_AXES` bound by enclosing vmaps."""
        spatial = tuple(range(1, x.ndim))
        size = 1
        for d in spatial:
            size *= x.shape[d]
        mean = jax.lax.pmean(jnp.mean(x, axis=spatial), BATCH_AXES)
        var = jax.lax.pmean(jnp.mean(jnp.square(x - self._expand(mean, x)), axis=spatial), BATCH_AXES)
        return mean, var, jax.lax.psum(1, BATCH_AXES) * size

    def normalize(self, x, mean, var):
        scale = self.weight * jax.lax.rsqrt(var + self.eps)
        return (x - self._expand(mean, x)) * self._expand(scale, x) + self._expand(self.bias, x)

    def __call__(self, x, *, key=None):
        if self.inference:
            return self.normalize(x, jax.lax.stop_gradient(self.mean), jax.lax.stop_gradient(self.var))
        mean, var, _ = self.batch_statistics(x)
        return self.normalize(x, mean, var)

    def unbiased_statistics(self, x):
        """The training-mode (mean, unbiased variance) of ``x``'s batch, as torch accumulates them."""
        mean, var, count = self.batch_statistics(x)
        return mean, var * count / jnp.maximum(count - 1, 1)


def batch_norm(channels: int, eps: float = 1e-5) -> BatchNorm:
    """A fresh BatchNorm: weight 1, bias 0, population mean 0 and variance 1 (torch's initial values)."""
    ones, zeros = jnp.ones((channels,)), jnp.zeros((channels,))
    return BatchNorm(ones, zeros, zeros, ones, eps)


def batch_norms(model) -> list[BatchNorm]:
    """Every :class:`BatchNorm` of ``model``, in pytree (field declaration) order."""
    return [leaf for leaf in jax.tree.leaves(model, is_leaf=lambda x: isinstance(x, BatchNorm))
            if isinstance(leaf, BatchNorm)]


def population_statistics(model, batches, statistics_fn):
    """``model`` with every :class:`BatchNorm`'s ``mean``/``var`` replaced by the average over ``batches`` of
    ``statistics_fn(model, batch) -> [(mean, unbiased var)]``, one pair per BatchNorm in :func:`batch_norms` order."""
    total, count = None, 0
    for batch in batches:
        stats = statistics_fn(model, batch)
        total = stats if total is None else jax.tree.map(jnp.add, total, stats)
        count += 1
    if total is None:
        raise ValueError("population_statistics needs at least one batch")
    means = [jax.tree.map(lambda t: t / count, s) for s in total]
    if len(batch_norms(model)) != len(means):
        raise ValueError(f"statistics for {len(means)} BatchNorm layers, the model has {len(batch_norms(model))}")
    model = eqx.tree_at(lambda m: [n.mean for n in batch_norms(m)], model, [m for m, _ in means])
    return eqx.tree_at(lambda m: [n.var for n in batch_norms(m)], model, [v for _, v in means])
