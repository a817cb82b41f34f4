"""Image classification: ViT parents on an ImageDataConfig, test accuracy and cross-entropy."""

from dataclasses import dataclass, field

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import numpy as np

from common_jax.data.images import ImageDataConfig, ImageSplits
from common_jax.launch import ConfigError
from common_jax.main.train_classifier import check_model_matches_data
from common_jax.models import ImageClassifierConfig, ViTConfig
from common_jax.training.classification import classification_loss, evaluate_classifier

from ..probes import probe_indices
from .base import FusionTaskConfig, LoadedTask

AXES = ("batch", "height", "width", "channel")


@eqx.filter_jit
def _logits(model, images):
    return eqx.nn.inference_mode(model)(images).array


@FusionTaskConfig.register_subclass("image")
@dataclass(frozen=True)
class ImageTaskConfig(FusionTaskConfig):
    data: ImageDataConfig = field(default_factory=ImageDataConfig)
    parents: list[ImageClassifierConfig] = field(default_factory=lambda: [ViTConfig(), ViTConfig()])
    eval_batch_size: int = 250
    max_test_examples: int | None = None  # evaluate on the first N test images only (None: all)

    def __post_init__(self):
        if len(self.parents) < 2:
            raise ValueError(f"task.parents must list at least two models, got {len(self.parents)}")
        if self.eval_batch_size <= 0:
            raise ValueError(f"task.eval_batch_size must be positive, got {self.eval_batch_size}")

    def num_parents(self) -> int:
        return len(self.parents)

    def abstract_model(self, index: int):
        return eqx.filter_eval_shape(lambda: self.parents[index].build(key=jax.random.PRNGKey(0)))

    def load(self) -> "ImageTask":
        splits = self.data.load()
        for i, parent in enumerate(self.parents):
            try:
                check_model_matches_data(parent, splits.image_shape, splits.num_classes)
            except ValueError as e:
                raise ValueError(f"task.parents[{i}]: {e}") from None
        return ImageTask(splits, self.eval_batch_size, self.max_test_examples)


class ImageTask(LoadedTask):
    """Test accuracy / cross-entropy of classifiers (exact, over the test split or its first N images).

    ``test``: the evaluated images ``[n, H, W, C]`` (normalised, float32) and labels ``[n]``.
    """

    primary = "accuracy"
    higher_is_better = True

    def __init__(self, splits: ImageSplits, eval_batch_size: int, max_test_examples: int | None):
        self.splits, self.eval_batch_size = splits, eval_batch_size
        n = len(splits.test.source)
        self.test = _arrays(splits.test, np.arange(n if max_test_examples is None else min(max_test_examples, n)))

    def probe(self, num_samples: int, seed: int, sampling: str) -> np.ndarray:
        train = self.splits.train
        return _arrays(train, probe_indices(len(train.source), num_samples, seed, sampling))[0]

    def check_model(self, model, name: str) -> None:
        try:
            check_model_matches_data(model.config, self.splits.image_shape, self.splits.num_classes)
        except ValueError as e:
            raise ConfigError(f"{name}: {e}") from None

    def logits(self, model) -> np.ndarray:
        """The logits ``[n, classes]`` (float64) of ``model`` on :attr:`test`."""
        images, _ = self.test
        out = [np.asarray(_logits(model, hax.named(jnp.asarray(images[s : s + self.eval_batch_size]), AXES)))
               for s in range(0, len(images), self.eval_batch_size)]
        return np.concatenate(out).astype(np.float64)

    def _metrics(self, logits: np.ndarray) -> dict[str, float]:
        labels = self.test[1]
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return {"accuracy": float((logits.argmax(1) == labels).mean()),
                "cross_entropy": float(-log_probs[np.arange(len(labels)), labels].mean())}

    def evaluate(self, model) -> dict[str, float]:
        return self._metrics(self.logits(model))

    def evaluate_ensemble(self, models: list) -> dict[str, float]:
        """The logit ensemble: mean logits of the models."""
        return self._metrics(np.mean([self.logits(m) for m in models], axis=0))

    def loss(self, model, batch, *, key=None):
        return classification_loss(model, batch, key=key)

    def train_set(self):
        return self.splits.train

    def evaluate_trained(self, trainer, model) -> dict[str, float]:
        return evaluate_classifier(trainer, model, self.splits.test)


def _arrays(dataset, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised images ``[n, H, W, C]`` float32 and labels ``[n]`` of an ImageClassificationDataset."""
    images, labels = zip(*(dataset.source[int(i)] for i in index))
    pixels = (np.asarray(images, np.float32) / 255.0 - dataset.mean) / dataset.std
    return pixels.astype(np.float32), np.asarray(labels, np.int64)
