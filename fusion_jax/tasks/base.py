"""The registry of fusion tasks (``task: {type: image | mlm, ...}`` in a fusion YAML)."""

import abc

import draccus
import equinox as eqx


class LoadedTask(abc.ABC):
    """A task with its data read: probe inputs, metrics, and fine-tuning on levanter's Trainer.

    ``primary`` names the metric reported for every model (accuracy for classifiers, masked-token loss for
    MLM); ``higher_is_better`` says which way it points.
    """

    primary = "accuracy"
    higher_is_better = True

    @abc.abstractmethod
    def probe(self, num_samples: int, seed: int):
        """``num_samples`` inputs of the training split, drawn with ``seed``, for the activation cost."""

    @abc.abstractmethod
    def evaluate(self, model) -> dict[str, float]: ...

    @abc.abstractmethod
    def evaluate_ensemble(self, models: list) -> dict[str, float]: ...

    @abc.abstractmethod
    def finetune(self, model, trainer_config, optimizer_config, steps: int, seed: int) -> tuple[object, dict]:
        """Train ``model`` for ``steps`` steps on levanter's Trainer; ``(trained model, metrics)``."""


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
