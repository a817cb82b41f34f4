"""The registry of fusion tasks (``task: {type: image | mlm, ...}`` in a fusion YAML)."""

import abc
import dataclasses

import draccus
import equinox as eqx
import jax
from levanter.trainer import Trainer

from common_jax.data.images import EpochShuffledDataset
from common_jax.training.run_setup import metrics_jsonl, run_dir


class LoadedTask(abc.ABC):
    """A task with its data read: probe inputs, metrics, and fine-tuning on levanter's Trainer.

    ``primary`` names the metric reported for every model (accuracy for classifiers, masked-token loss for
    MLM); ``higher_is_better`` says which way it points.
    """

    primary = "accuracy"
    higher_is_better = True

    @abc.abstractmethod
    def probe(self, num_samples: int, seed: int, sampling: str):
        """``num_samples`` inputs of the training split chosen by ``sampling`` with ``seed``
        (``fusion_jax.probes.probe_indices``), for the activation cost."""

    @abc.abstractmethod
    def check_model(self, model, name: str) -> None:
        """``ConfigError`` naming ``name`` if ``model`` (e.g. an imported parent) does not fit the task's data."""

    @abc.abstractmethod
    def evaluate(self, model) -> dict[str, float]: ...

    @abc.abstractmethod
    def evaluate_ensemble(self, models: list) -> dict[str, float]: ...

    @abc.abstractmethod
    def loss(self, model, batch, *, key=None):
        """The training loss levanter's Trainer minimises when fine-tuning."""

    @abc.abstractmethod
    def train_set(self):
        """The training split as a levanter ``AsyncDataset``."""

    @abc.abstractmethod
    def evaluate_trained(self, trainer: Trainer, model) -> dict[str, float]:
        """The task's metrics of ``model`` computed with the fine-tuning ``trainer`` (its mesh and batches)."""

    def finetune(self, model, trainer_config, optimizer_config, steps: int, seed: int) -> tuple[object, dict]:
        """Train ``model`` for ``steps`` steps on levanter's Trainer; ``(trained model, metrics)``."""
        trainer_config = dataclasses.replace(trainer_config, num_train_steps=steps)
        optimizer = optimizer_config.build(steps)
        with metrics_jsonl(run_dir(trainer_config) / "metrics.jsonl"), \
                Trainer(trainer_config, optimizer, self.loss) as trainer:
            state = trainer.initial_state(jax.random.PRNGKey(seed), model=model)
            loader = trainer.data_loader(EpochShuffledDataset(self.train_set(), seed)).iter_from_step(int(state.step))
            info = trainer.train(state, loader)
            metrics = self.evaluate_trained(trainer, info.eval_model)
        return info.eval_model, metrics


class FusionTaskConfig(draccus.ChoiceRegistry, abc.ABC):
    """Parents' architectures and data of one fusion experiment."""

    @classmethod
    def default_choice_name(cls) -> str | None:
        return "image"

    @abc.abstractmethod
    def num_parents(self) -> int: ...

    @abc.abstractmethod
    def abstract_model(self, index: int) -> eqx.Module:
        """Parent ``index``'s structure (for reading its checkpoint)."""

    @abc.abstractmethod
    def load(self) -> LoadedTask: ...
