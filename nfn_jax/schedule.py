"""The reference's per-epoch learning rate: linear warm-up, then cosine decay (nfn.md §5.2, §6).

The reference (zoo members and the NFN alike) builds two torch schedulers on one optimizer and steps one of them
after each epoch::

    LinearLR(start_factor=1/W, end_factor=1, total_iters=W-1)   stepped after epochs 0 .. W-1
    CosineAnnealingLR(T_max=E-W, eta_min=min_lr)               stepped after epochs W .. E-1

so the learning rate in force during 0-based epoch ``e`` of ``E`` epochs with ``W`` warm-up epochs is

    e <  W:  lr · (1/W + (1 - 1/W) · e / (W - 1))              (lr/W at e = 0, the full lr at e = W - 1; lr if W = 1)
    e >= W:  min_lr + (lr - min_lr) · (1 + cos(π (e - W) / (E - W))) / 2     (the full lr again at e = W)

``W = 0`` (no warm-up; the reference cannot express it, ``1/W`` fails there) is the cosine alone from epoch 0.

API (both pure):

- :func:`warmup_cosine_lr` ``(base_lr, epoch, *, epochs, warmup_epochs, min_lr) -> lr``: ``base_lr`` a scalar or
  an array of per-model base rates (the zoo), ``epoch`` a 0-based int. NumPy in, float64 NumPy out; a JAX array
  (or tracer) in either argument computes in JAX instead.
- :func:`per_step_schedule` ``(base_lr, steps_per_epoch, *, epochs, warmup_epochs, min_lr) -> optax.Schedule``:
  the same rate held constant through the ``steps_per_epoch`` optimiser steps of each epoch.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax


def _check(epochs: int, warmup_epochs: int) -> None:
    if not 0 <= warmup_epochs < epochs:
        raise ValueError(f"warmup_epochs must be in [0, epochs), got {warmup_epochs} with epochs {epochs}")


def warmup_cosine_lr(base_lr, epoch, *, epochs: int, warmup_epochs: int, min_lr: float = 1e-5):
    """Learning rate during 0-based ``epoch``: torch ``LinearLR`` then ``CosineAnnealingLR`` as the reference chains
    them (module docstring). Shape: that of ``base_lr`` (broadcast with ``epoch``)."""
    _check(epochs, warmup_epochs)
    xp = jnp if isinstance(base_lr, jax.Array) or isinstance(epoch, jax.Array) else np
    base_lr = xp.asarray(base_lr, dtype=None if xp is jnp else np.float64)
    w = warmup_epochs
    e = xp.asarray(epoch, dtype=base_lr.dtype)
    warm = base_lr * (1.0 / max(w, 1) + (1.0 - 1.0 / max(w, 1)) * e / max(w - 1, 1))
    # (1 + cos θ) / 2 written as cos²(θ / 2): no cancellation near the end of training in float32
    cosine = min_lr + (base_lr - min_lr) * xp.cos(0.5 * np.pi * (e - w) / (epochs - w)) ** 2
    return xp.where(e < w, warm, cosine)


def per_step_schedule(base_lr: float, steps_per_epoch: int, *, epochs: int, warmup_epochs: int,
                      min_lr: float = 1e-5) -> optax.Schedule:
    """``step -> lr`` for an optimiser stepped ``steps_per_epoch`` times per epoch (the epoch's rate throughout)."""
    _check(epochs, warmup_epochs)
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be positive, got {steps_per_epoch}")

    def schedule(step):
        epoch = jnp.asarray(step) // steps_per_epoch
        return warmup_cosine_lr(jnp.asarray(base_lr, jnp.float32), epoch, epochs=epochs, warmup_epochs=warmup_epochs,
                                min_lr=min_lr)

    return schedule
