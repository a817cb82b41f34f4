"""Fitting any Equinox model on levanter's Trainer (the ``common_jax.main.train_classifier`` pattern):
one run id per sub-run, json metrics, checkpoints and exact resume through ``iter_from_step``."""

import dataclasses
import logging
import time

import haliax as hax
import jax
import jax.numpy as jnp
import levanter
from haliax import NamedArray
from levanter.data import AsyncDataset
from levanter.metrics import Metric, ReductionType
from levanter.optim import OptimizerConfig
from levanter.trainer import Trainer, TrainerConfig
from levanter.utils.jax_utils import parameter_count

from common_jax.data.images import EpochShuffledDataset
from common_jax.training.run_setup import metrics_jsonl, run_dir

logger = logging.getLogger(__name__)


def weighted_mean(values, weight: NamedArray) -> Metric:
    """A metric folding to sum(values·weight)/sum(weight) over batches (loader padding has weight 0)."""
    return Metric(_value=jnp.sum(values * weight.array), _count=jnp.sum(weight.array), reduction=ReductionType.MEAN)


def scalar_loss(per_example, weight: NamedArray):
    """The weighted mean of per-example losses [B] as the scalar levanter's trainer expects."""
    named = hax.named(per_example, weight.axes)
    return (hax.sum(named * weight) / hax.maximum(hax.sum(weight), 1.0)).scalar()


def example_keys(key, batch_size: int):
    return None if key is None else jax.random.split(key, batch_size)


def sub_run(trainer: TrainerConfig, suffix: str, steps: int | None = None) -> TrainerConfig:
    """The trainer config of one sub-run: run id ``<id>-<suffix>`` and optionally its own step count."""
    changes = {"id": f"{trainer.id}-{suffix}"}
    if steps is not None:
        changes["num_train_steps"] = steps
    return dataclasses.replace(trainer, **changes)


def fit(trainer_config: TrainerConfig, optimizer: OptimizerConfig, loss_fn, model, train: AsyncDataset,
        data_seed: int, key) -> tuple[object, float]:
    """Train ``model`` on an endless shuffled stream of ``train``; returns (trained model, wall seconds).

    ``loss_fn(model, batch, *, key) -> (loss, metrics)``. Resumes from the run's latest checkpoint.
    """
    start = time.time()
    opt = optimizer.build(trainer_config.num_train_steps)
    with metrics_jsonl(run_dir(trainer_config) / "metrics.jsonl"), Trainer(trainer_config, opt, loss_fn) as trainer:
        state = trainer.initial_state(key, model_init=lambda: model)
        levanter.tracker.log_summary({"parameter_count": parameter_count(state.model)})
        loader = trainer.data_loader(EpochShuffledDataset(train, data_seed)).iter_from_step(int(state.step))
        info = trainer.train(state, loader)
        trained = info.eval_model
    trainer.tracker.finish()
    return trained, time.time() - start
