"""The registry of image-classifier configs that ``common_jax.main.train_classifier`` trains.

A YAML selects the model by ``model: {type: vit, ...}`` (the default) or any type a package registers with
``@ImageClassifierConfig.register_subclass("name")``, as levanter does for ``LmConfig``.
"""

import abc

import draccus
import equinox as eqx


class ImageClassifierConfig(draccus.ChoiceRegistry, abc.ABC):
    """A config that builds ``model(images [..., height, width, channel], *, key=None) -> logits [..., classes]``."""

    image_size: int
    num_channels: int
    num_classes: int

    @classmethod
    def default_choice_name(cls) -> str | None:
        return "vit"

    @abc.abstractmethod
    def build(self, *, key) -> eqx.Module:
        """A freshly initialised model."""
