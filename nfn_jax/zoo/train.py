"""Many zoo members trained in ONE jitted, vmapped step, sharded along a model axis (nfn.md §5.2, §9.1).

A chunk is a set of runs sharing the optimiser and train fraction, hence (seed 3) one data stream. Per-model
scalars (lr, coupled L2, dropout, init std) are arrays along the leading model axis. Each model's gradient is its
own (vmap of ``value_and_grad`` = gradient of the sum of per-model mean cross-entropies). Optimiser per model::

    add_decayed_weights(l2)  ->  Adam | RMSprop | SGD | SGD+momentum 0.9 (PyTorch constants)  ->  scale(-lr_epoch)

``lr_epoch``: the reference's torch ``LinearLR`` warm-up then ``CosineAnnealingLR``, per epoch
(:func:`nfn_jax.schedule.warmup_cosine_lr`).

The reference seeds every run with 3, so runs of one chunk see the same batches, crops and dropout noise (each
thresholds the noise at its own rate). The step therefore draws one noise tensor per step for the whole chunk
(``init_seed_policy: per_run``: one per model) and gathers and crops the batch on the device from the training set
held there; the host only draws the epoch's order and crop offsets (NumPy, seeded by ``(seed, epoch)``).
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import AxisType, NamedSharding, PartitionSpec

from ..schedule import warmup_cosine_lr
from .data import ZooData
from .model import ZooArchitecture, dropout_noise, init_params, logits

OPTIMIZERS = ("adam", "rmsprop", "sgd", "momentum")
WIDTH_MULTIPLE = 16  # text batches are stored this many tokens wide (rounded up): one compilation per width
EVAL_BATCHES = 8  # test examples per evaluation call, in units of the training batch size


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

    def epoch_lr(self, base_lr: np.ndarray, epoch: int) -> np.ndarray:
        """Per-model learning rate during 0-based ``epoch`` (nfn.md §5.2)."""
        return warmup_cosine_lr(base_lr, epoch, epochs=self.epochs, warmup_epochs=self.warmup_epochs,
                                min_lr=self.min_lr)


def base_optimizer(name: str) -> optax.GradientTransformation:
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")
    return {"adam": lambda: optax.scale_by_adam(0.9, 0.999, 1e-8),
            "rmsprop": lambda: optax.scale_by_rms(decay=0.99, eps=1e-8, eps_in_sqrt=False),
            "sgd": optax.identity, "momentum": lambda: optax.trace(decay=0.9)}[name]()


def _transform(name: str, lr, weight_decay) -> optax.GradientTransformation:
    return optax.chain(optax.add_decayed_weights(weight_decay), base_optimizer(name), optax.scale(-lr))


def train_subset(n: int, fraction: float, task: str, seed: int) -> np.ndarray:
    """Indices of the training subset, ``int(fraction * n)`` of them as the reference: for images its
    ``np.random.choice(n, size, replace=False)`` after ``np.random.seed(seed)``, for texts the first ones
    (nfn.md §5.1)."""
    size = int(fraction * n)
    return np.random.RandomState(seed).choice(n, size, replace=False) if task == "image" else np.arange(size)


def _padded_width(length: int, limit: int) -> int:
    return min(-(-length // WIDTH_MULTIPLE) * WIDTH_MULTIPLE, limit)


def reference_batch_lengths(lengths: np.ndarray, batch_size: int) -> np.ndarray:
    """Per example, the length of the longest text in its batch of the reference's unshuffled loader (consecutive
    ``batch_size`` chunks, last one partial): the width the reference pads it to at evaluation."""
    out = np.empty_like(lengths)
    for start in range(0, len(lengths), batch_size):
        out[start : start + batch_size] = lengths[start : start + batch_size].max()
    return np.maximum(out, 1)


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
        inputs = data.train_inputs
        if arch.task == "image" and schedule.crop_padding:
            pad = schedule.crop_padding
            inputs = np.pad(inputs, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=-1.0)
        self.train_inputs, self.train_labels = self._replicate((jnp.asarray(inputs), jnp.asarray(data.train_labels)))
        self.test_lengths = (None if data.test_lengths is None
                             else reference_batch_lengths(data.test_lengths, schedule.batch_size))
        self._step = jax.jit(self._chunk_step, donate_argnums=(0, 1), static_argnames=("width",))
        self._correct = jax.jit(jax.vmap(self._one_correct, in_axes=(0, None, None, None)))

    def _loss(self, params, x, y, dropout_rate, noise, lengths):
        out = logits(self.arch, {**params, **self.buffers}, x, self.table, dropout_rate=dropout_rate, noise=noise,
                     lengths=lengths)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(out), y[:, None], axis=1))

    def _one_step(self, params, opt_state, lr, weight_decay, dropout_rate, noise, x, y, lengths):
        loss, grads = jax.value_and_grad(self._loss)(params, x, y, dropout_rate, noise, lengths)
        updates, opt_state = _transform(self.optimizer, lr, weight_decay).update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    def _chunk_step(self, params, opt_state, lr, weight_decay, dropout_rate, run_indices, train_inputs, train_labels,
                    epoch, batch, idx, offsets, length, *, width):
        """One optimiser step of every model on the batch ``idx`` (crops at ``offsets``; texts ``length`` long, stored
        ``width`` wide). Returns the new params, optimiser states and per-model losses ``[M]``."""
        s = self.schedule
        x, y = train_inputs[idx], train_labels[idx]
        if self.arch.task == "image" and s.crop_padding:
            H, W = x.shape[1] - 2 * s.crop_padding, x.shape[2] - 2 * s.crop_padding
            x = jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (H, W, im.shape[-1])))(x, offsets)
        elif self.arch.task == "text":
            x = x[:, :width]
        lengths = None if length is None else jnp.full(len(idx), length)
        tokens = self.arch.num_tokens if self.arch.task == "image" else x.shape[1]
        key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(s.seed), epoch), batch)
        draw = partial(dropout_noise, self.arch, batch=len(idx), tokens=tokens)
        if s.per_run_init:
            noise, noise_axis = jax.vmap(lambda i: draw(jax.random.fold_in(key, i)))(run_indices), 0
        else:
            noise, noise_axis = draw(key), None
        step = jax.vmap(self._one_step, in_axes=(0, 0, 0, 0, 0, noise_axis, None, None, None))
        return step(params, opt_state, lr, weight_decay, dropout_rate, noise, x, y, lengths)

    def _one_correct(self, params, x, y, lengths):
        out = logits(self.arch, {**params, **self.buffers}, x, self.table, lengths=lengths)
        return jnp.sum(jnp.argmax(out, -1) == y)

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

    def epoch_batches(self, epoch: int, subset: np.ndarray):
        """The epoch's batches as the host draws them: ``(indices [B], crop offsets [B, 2] or None)`` per batch, in
        the epoch's seeded order, ``batch_size`` each with drop_last (the reference's loader)."""
        s = self.schedule
        rng = np.random.default_rng([s.seed, epoch])
        order = subset[rng.permutation(len(subset))]
        crop = self.arch.task == "image" and s.crop_padding > 0
        for b in range(len(order) // s.batch_size):
            idx = order[b * s.batch_size : (b + 1) * s.batch_size]
            if crop:
                oy, ox = (rng.integers(0, 2 * s.crop_padding + 1, s.batch_size) for _ in range(2))
                yield idx, np.stack([oy, ox], 1).astype(np.int32)
            else:
                yield idx, None

    def train_epoch(self, params, opt_state, runs: list[RunSpec], run_indices: np.ndarray, epoch: int, subset: np.ndarray):
        """One epoch over ``subset`` (:meth:`epoch_batches`). Returns params, optimiser states and the mean loss [M].
        ``params`` and ``opt_state`` are donated: use the returned ones."""
        lr = self._shard(jnp.asarray(self.schedule.epoch_lr(np.asarray([r.lr for r in runs]), epoch), jnp.float32))
        wd = self._shard(jnp.asarray([r.weight_decay for r in runs], jnp.float32))
        rate = self._shard(jnp.asarray([r.dropout for r in runs], jnp.float32))
        indices = self._shard(jnp.asarray(run_indices, jnp.int32))
        lengths = self.data.train_lengths
        losses = []
        for b, (idx, offsets) in enumerate(self.epoch_batches(epoch, subset)):
            length = width = None
            if lengths is not None:
                length = max(int(lengths[idx].max()), 1)
                width = _padded_width(length, self.data.train_inputs.shape[1])
            params, opt_state, loss = self._step(params, opt_state, lr, wd, rate, indices, self.train_inputs,
                                                 self.train_labels, epoch, b, idx, offsets, length, width=width)
            losses.append(loss)
        return params, opt_state, (np.mean(np.stack(jax.device_get(losses)), 0) if losses else None)

    def test_accuracy(self, params) -> np.ndarray:
        """Top-1 test accuracy of every model ``[M]`` (exact over the whole test split). Texts are padded as the
        reference's test loader pads them (each batch of ``batch_size`` to its longest text)."""
        correct = np.zeros(self.num_models, np.int64)
        x_all, y_all = self.data.test_inputs, self.data.test_labels
        step = EVAL_BATCHES * self.schedule.batch_size
        for start in range(0, len(y_all), step):
            x, lengths = x_all[start : start + step], None
            if self.test_lengths is not None:
                lengths = self.test_lengths[start : start + step]
                x = x[:, : _padded_width(int(lengths.max()), x.shape[1])]
            x, y, lengths = self._replicate((jnp.asarray(x), jnp.asarray(y_all[start : start + step]),
                                             None if lengths is None else jnp.asarray(lengths)))
            correct += np.asarray(jax.device_get(self._correct(params, x, y, lengths)), np.int64)
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
