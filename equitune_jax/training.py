"""Fitting any Equinox model on levanter's Trainer (the ``common_jax.main.train_classifier`` pattern):
one run id per sub-run, json metrics, checkpoints and exact resume through ``iter_from_step``; an optional per-step
hook (e.g. :class:`KeepBest`, best-on-validation model selection)."""

import dataclasses
import logging
import time
from collections.abc import Callable

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import levanter
from haliax import NamedArray
from levanter.callbacks import StepInfo
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


class KeepBest:
    """A per-step hook for :func:`fit`: after update ``u`` (``u >= first_step`` and ``(u - first_step) % every == 0``)
    it scores the model with ``score_fn(model) -> float``, logs the score as ``<name>/score`` and keeps a copy of the
    model if it scores strictly better than every earlier check (starting from 0, as the SCAN reference's
    ``best_acc = 0.``). ``best_model`` stays None when no check scores above 0.

    levanter runs hooks from the third update on, so a check scheduled after update 1 or 2 (the SCAN reference's
    fine-tuning validates after its first update) is made on the model before training instead (:meth:`before`).
    """

    def __init__(self, score_fn: Callable[[object], float], first_step: int, every: int, name: str = "validation"):
        self.score_fn, self.first_step, self.every, self.name = score_fn, first_step, every, name
        self.best_score, self.best_step, self.best_model = 0.0, None, None
        self.history: list[tuple[int, float]] = []

    def before(self, model) -> None:
        """The check of an early schedule (``first_step`` <= 2) on the untrained model, as update 0."""
        if self.first_step <= 2:
            self._check(0, model, step=0)

    def __call__(self, info: StepInfo):
        updates = info.step + 1
        if updates < self.first_step or (updates - self.first_step) % self.every:
            return
        if self.history and self.history[-1][0] == updates:  # levanter forces the hooks again after the last step
            return
        self._check(updates, info.eval_model, info.step)

    def _check(self, updates: int, model, step: int) -> None:
        score = float(self.score_fn(model))
        self.history.append((updates, score))
        levanter.tracker.log({f"{self.name}/score": score}, step=step)
        if score > self.best_score:
            self.best_score, self.best_step = score, updates
            self.best_model = jax.tree.map(lambda x: jnp.array(x, copy=True) if eqx.is_array(x) else x, model)
        logger.info("%s after %d updates: %.4f (best %.4f at %s)", self.name, updates, score, self.best_score,
                    self.best_step)

    def summary(self) -> dict:
        return {"best_score": self.best_score, "best_step": self.best_step, "history": self.history}


def fit(trainer_config: TrainerConfig, optimizer: OptimizerConfig, loss_fn, model, train: AsyncDataset,
        data_seed: int, key, on_step: Callable[[StepInfo], None] | None = None) -> tuple[object, float]:
    """Train ``model`` on an endless shuffled stream of ``train``; returns (trained model, wall seconds).

    ``loss_fn(model, batch, *, key) -> (loss, metrics)``; ``on_step(info)`` runs after every update. Resumes from the
    run's latest checkpoint.
    """
    start = time.time()
    opt = optimizer.build(trainer_config.num_train_steps)
    with metrics_jsonl(run_dir(trainer_config) / "metrics.jsonl"), Trainer(trainer_config, opt, loss_fn) as trainer:
        if on_step is not None:
            trainer.add_hook(on_step, every=1)
        state = trainer.initial_state(key, model_init=lambda: model)
        if hasattr(on_step, "before") and int(state.step) == 0:
            on_step.before(state.model)
        levanter.tracker.log_summary({"parameter_count": parameter_count(state.model)})
        loader = trainer.data_loader(EpochShuffledDataset(train, data_seed)).iter_from_step(int(state.step))
        info = trainer.train(state, loader)
        trained = info.eval_model
    trainer.tracker.finish()
    return trained, time.time() - start
