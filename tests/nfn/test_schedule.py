"""The per-epoch learning rate equals torch's LinearLR + CosineAnnealingLR chained as the reference does (issue 13.1)."""

import warnings

import jax.numpy as jnp
import numpy as np
import pytest
import torch

from nfn_jax.schedule import per_step_schedule, warmup_cosine_lr


def torch_epoch_lrs(lr: float, epochs: int, warmup: int, min_lr: float) -> list[float]:
    """The reference's loop: both schedulers on one optimizer, LinearLR stepped after warm-up epochs, cosine after."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        linear = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1 / warmup, end_factor=1.0,
                                                   total_iters=warmup - 1)
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs - warmup, eta_min=min_lr)
    out = []
    with warnings.catch_warnings():  # stepping a scheduler without an optimizer step warns; only the rates matter
        warnings.simplefilter("ignore")
        for epoch in range(epochs):
            out.append(optimizer.param_groups[0]["lr"])
            (linear if epoch < warmup else cosine).step()
    return out


@pytest.mark.parametrize("epochs,warmup", [(100, 10), (20, 2), (30, 3), (12, 1), (6, 5)])
def test_epoch_lr_equals_torch(epochs, warmup):
    base = np.asarray([3e-4, 1e-3, 5e-2, 1e-6])  # per-model base rates (the zoo); 1e-6 lies below min_lr
    expected = np.asarray([torch_epoch_lrs(float(b), epochs, warmup, 1e-5) for b in base])  # [models, epochs]
    got = np.stack([warmup_cosine_lr(base, e, epochs=epochs, warmup_epochs=warmup, min_lr=1e-5) for e in range(epochs)], 1)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=0)
    assert got[1, warmup - 1] == pytest.approx(1e-3, rel=1e-12)  # the full rate at epoch index W-1 (issue 13.1)


def test_per_step_schedule_holds_each_epoch_rate():
    steps_per_epoch, epochs, warmup = 7, 30, 3
    schedule = per_step_schedule(1e-3, steps_per_epoch, epochs=epochs, warmup_epochs=warmup, min_lr=1e-5)
    steps = jnp.arange(epochs * steps_per_epoch)
    expected = np.repeat(torch_epoch_lrs(1e-3, epochs, warmup, 1e-5), steps_per_epoch)
    np.testing.assert_allclose(np.asarray(schedule(steps)), expected, rtol=1e-6, atol=0)


def test_no_warmup_is_cosine_from_epoch_zero():
    lrs = [warmup_cosine_lr(1e-3, e, epochs=4, warmup_epochs=0, min_lr=0.0) for e in range(4)]
    np.testing.assert_allclose(lrs, 1e-3 * (1 + np.cos(np.pi * np.arange(4) / 4)) / 2, rtol=1e-12)
    with pytest.raises(ValueError, match="warmup_epochs"):
        warmup_cosine_lr(1e-3, 0, epochs=4, warmup_epochs=4)
