"""Many zoo members trained in ONE jitted, vmapped step, sharded along a model axis (nfn.md §5.2, §9.1).

A chunk is a set of runs sharing the optimiser and train fraction, hence (seed 3) one data stream. Per-model
scalars (lr, coupled L2, dropout, init std) are arrays along the leading model axis. Each model's gradient is its
own (vmap of ``value_and_grad`` = gradient of the sum of per-model mean cross-entropies). Optimiser per model::

    add_decayed_weights(l2)  ->  Adam | RMSprop | SGD | SGD+momentum 0.9 (PyTorch constants)  ->  scale(-lr_epoch)

``lr_epoch``: linear warm-up from lr/10 to lr over ``warmup_epochs``, then cosine to ``min_lr`` (per epoch).
"""

import math
from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import AxisType, NamedSharding, PartitionSpec

from .data import ZooData
from .model import ZooArchitecture, init_params, logits

OPTIMIZERS = ("adam", "rmsprop", "sgd", "momentum")


@dataclass(frozen=True)
class RunSpec:
    """One zoo member's hyper-parameters (``run_id`` is deterministic: its index in the full grid)."""

    run_id: str
    optimizer: str
    lr: float
    init_std: float
    weight_decay: float
    train_fraction: float
    dropout: float


@dataclass(frozen=True)
class ChunkSchedule:
    epochs: int
    warmup_epochs: int
    batch_size: int
    min_lr: float = 1e-5
    seed: int = 3
    per_run_init: bool = False  # False: every run starts from the same draw (the reference's shared seed 3)
    crop_padding: int = 0  # image task: RandomCrop(size, padding) at train time


def epoch_lr(lr: np.ndarray, epoch: int, schedule: ChunkSchedule) -> np.ndarray:
    """Per-model learning rate of ``epoch`` (0-based), nfn.md §5.2."""
    w = schedule.warmup_epochs
    if epoch < w:
        return lr / 10 + (lr - lr / 10) * epoch / w
    span = max(schedule.epochs - w, 1)
    return schedule.min_lr + (lr - schedule.min_lr) * 0.5 * (1 + math.cos(math.pi * (epoch - w) / span))


def base_optimizer(name: str) -> optax.GradientTransformation:
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
    return {"adam": lambda: optax.scale_by_adam(0.9, 0.999, 1e-8),
            "rmsprop": lambda: optax.scale_by_rms(decay=0.99, eps=1e-8, eps_in_sqrt=False),
            "sgd": optax.identity, "momentum": lambda: optax.trace(decay=0.9)}[name]()


def _transform(name: str, lr, weight_decay) -> optax.GradientTransformation:
    return optax.chain(optax.add_decayed_weights(weight_decay), base_optimizer(name), optax.scale(-lr))


def train_subset(n: int, fraction: float, task: str, seed: int) -> np.ndarray:
    """Indices of the training subset: seeded random subset (images) or the first fraction (text), nfn.md §5.1."""
    size = int(round(fraction * n))
    return np.random.default_rng(seed).permutation(n)[:size] if task == "image" else np.arange(size)


def _random_crop(images: np.ndarray, padding: int, rng: np.random.Generator) -> np.ndarray:
    if padding == 0:
        return images
    B, H, W, _ = images.shape
    padded = np.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)), constant_values=-1.0)
    oy, ox = rng.integers(0, 2 * padding + 1, B), rng.integers(0, 2 * padding + 1, B)
    return np.stack([padded[b, oy[b] : oy[b] + H, ox[b] : ox[b] + W] for b in range(B)])


class ChunkTrainer:
    """Compiled vmapped train step and evaluation for one architecture, optimiser and chunk size."""

    def __init__(self, arch: ZooArchitecture, optimizer: str, data: ZooData, schedule: ChunkSchedule, num_models: int,
                 devices=None):
        self.arch, self.optimizer, self.data, self.schedule, self.num_models = arch, optimizer, data, schedule, num_models
        self.buffers = {k: jnp.asarray(v) for k, v in arch.buffers().items()}
        self.table = None if data.table is None else jnp.asarray(data.table)
        devices = list(jax.devices() if devices is None else devices)
        self.mesh = None
        if len(devices) > 1 and num_models % len(devices) == 0:
            self.mesh = jax.make_mesh((len(devices),), ("model",), axis_types=(AxisType.Auto,), devices=devices)
        self._step = jax.jit(jax.vmap(self._one_step, in_axes=(0, 0, 0, 0, 0, 0, None, None)))
        self._correct = jax.jit(jax.vmap(self._one_correct, in_axes=(0, None, None)))

    def _loss(self, params, x, y, dropout, key):
        out = logits(self.arch, {**params, **self.buffers}, x, self.table, dropout=dropout, key=key)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(out), y[:, None], axis=1))

    def _one_step(self, params, opt_state, lr, weight_decay, dropout, key, x, y):
        loss, grads = jax.value_and_grad(self._loss)(params, x, y, dropout, key)
        updates, opt_state = _transform(self.optimizer, lr, weight_decay).update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    def _one_correct(self, params, x, y):
        return jnp.sum(jnp.argmax(logits(self.arch, {**params, **self.buffers}, x, self.table), -1) == y)

    def _shard(self, tree):
        if self.mesh is None:
            return tree
        return jax.device_put(tree, NamedSharding(self.mesh, PartitionSpec("model")))

    def _replicate(self, tree):
        if self.mesh is None:
            return tree
        return jax.device_put(tree, NamedSharding(self.mesh, PartitionSpec()))

    def init(self, runs: list[RunSpec], run_indices: np.ndarray):
        """Stacked initial parameters ``{name: [M, ...]}`` and optimiser states (sharded along ``model``)."""
        stds = jnp.asarray([r.init_std for r in runs], jnp.float32)
        base = jax.random.PRNGKey(self.schedule.seed)
        keys = (jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.asarray(run_indices)) if self.schedule.per_run_init
                else jnp.broadcast_to(base, (len(runs), *base.shape)))
        params = jax.jit(jax.vmap(lambda s, k: init_params(self.arch, s, k)))(stds, keys)
        opt_state = jax.vmap(_transform(self.optimizer, 0.0, 0.0).init)(params)
        return self._shard(params), self._shard(opt_state)

    def train_epoch(self, params, opt_state, runs: list[RunSpec], run_indices: np.ndarray, epoch: int, subset: np.ndarray):
        """One epoch over ``subset`` in the epoch's seeded order, batch_size with drop_last. Returns mean loss [M]."""
        s = self.schedule
        lr = self._shard(jnp.asarray(epoch_lr(np.asarray([r.lr for r in runs]), epoch, s), jnp.float32))
        wd = self._shard(jnp.asarray([r.weight_decay for r in runs], jnp.float32))
        dropout = self._shard(jnp.asarray([r.dropout for r in runs], jnp.float32))
        rng = np.random.default_rng([s.seed, epoch])
        order = subset[rng.permutation(len(subset))]
        losses = []
        for b in range(len(order) // s.batch_size):
            idx = order[b * s.batch_size : (b + 1) * s.batch_size]
            x = self.data.train_inputs[idx]
            if self.arch.task == "image":
                x = _random_crop(x, s.crop_padding, rng)
            key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(s.seed), epoch), b)
            keys = (jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.asarray(run_indices)) if s.per_run_init
                    else jnp.broadcast_to(key, (len(runs), *key.shape)))
            x, y = self._replicate((jnp.asarray(x), jnp.asarray(self.data.train_labels[idx])))
            params, opt_state, loss = self._step(params, opt_state, lr, wd, dropout, self._shard(keys), x, y)
            losses.append(loss)
        return params, opt_state, (np.mean(np.stack(jax.device_get(losses)), 0) if losses else None)

    def test_accuracy(self, params, batch_size: int = 1000) -> np.ndarray:
        """Top-1 test accuracy of every model ``[M]`` (exact over the whole test split)."""
        correct = np.zeros(self.num_models, np.int64)
        x_all, y_all = self.data.test_inputs, self.data.test_labels
        for start in range(0, len(y_all), batch_size):
            x, y = self._replicate((jnp.asarray(x_all[start : start + batch_size]), jnp.asarray(y_all[start : start + batch_size])))
            correct += np.asarray(jax.device_get(self._correct(params, x, y)), np.int64)
        return correct / len(y_all)


def train_chunk(trainer: ChunkTrainer, runs: list[RunSpec], run_indices: np.ndarray, checkpoint_epochs: tuple[int, ...],
                save_best: bool, on_epoch: Callable[[int], None] = lambda e: None):
    """Train a chunk; returns ``{epoch label: (params {name: np [M, ...]}, accuracy [M])}`` (labels "1", "50", "best")."""
    task = trainer.arch.task
    fraction = {r.train_fraction for r in runs}
    if len(fraction) != 1 or len({r.optimizer for r in runs}) != 1:
        raise ValueError("a chunk must share one optimizer and one train_fraction")
    subset = train_subset(len(trainer.data.train_labels), fraction.pop(), task, trainer.schedule.seed)
    params, opt_state = trainer.init(runs, run_indices)
    saved, best_acc, best_params = {}, np.full(len(runs), -1.0), None
    for epoch in range(trainer.schedule.epochs):
        params, opt_state, _ = trainer.train_epoch(params, opt_state, runs, run_indices, epoch, subset)
        done = epoch + 1
        if done in checkpoint_epochs or save_best:
            acc = trainer.test_accuracy(params)
            host = {k: np.asarray(v) for k, v in jax.device_get(params).items()}
            if done in checkpoint_epochs:
                saved[str(done)] = (host, acc)
            if save_best:
                better = acc > best_acc
                best_acc = np.where(better, acc, best_acc)
                best_params = host if best_params is None else {
                    k: np.where(better.reshape(-1, *[1] * (v.ndim - 1)), v, best_params[k]) for k, v in host.items()}
        on_epoch(done)
    if save_best:
        saved["best"] = (best_params, best_acc)
    return saved
