"""Image classification objective and exact evaluation on levanter's Trainer."""

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
from haliax import NamedArray
from levanter.callbacks import eval_loss_loop
from levanter.metrics import Metric, ReductionType

from ..data.augment import AugmentConfig
from ..data.images import ImageExample


def _weighted_mean(values: NamedArray, weight: NamedArray) -> Metric:
    """A metric that folds to ``sum(values * weight) / sum(weight)`` across batches (padding has weight 0)."""
    return Metric(_value=hax.sum(values * weight).array, _count=hax.sum(weight).array, reduction=ReductionType.MEAN)


def classification_loss(
    model, batch: ImageExample, *, key=None, label_smoothing: float = 0.0, augment: AugmentConfig | None = None
):
    """Label-smoothed softmax cross-entropy over the ``classes`` axis, averaged over real examples.

    With a ``key`` (training) the images first go through ``augment``; evaluation passes ``key=None``.
    Returns ``(loss, {"accuracy", "cross_entropy"})``; the metrics are exact weighted means when folded.
    """
    labels, weight, images = batch.label, batch.weight, batch.image
    if augment is not None and augment.enabled and key is not None:
        k_augment, key = jax.random.split(key)
        images = augment(images, k_augment)
    logits = model(images, key=key).astype(jnp.float32)
    Classes = logits.resolve_axis("classes")
    targets = hax.nn.one_hot(labels, Classes, dtype=jnp.float32)
    log_probs = hax.nn.log_softmax(logits, axis=Classes)
    cross_entropy = -hax.sum(targets * log_probs, axis=Classes)
    smoothed = (1.0 - label_smoothing) * cross_entropy - label_smoothing * hax.mean(log_probs, axis=Classes)
    loss = (hax.sum(smoothed * weight) / hax.maximum(hax.sum(weight), 1.0)).scalar()
    correct = (hax.argmax(logits, Classes) == labels).astype(jnp.float32)
    return loss, {"accuracy": _weighted_mean(correct, weight), "cross_entropy": _weighted_mean(cross_entropy, weight)}


def evaluate_classifier(trainer, model, dataset, name: str = "test") -> dict[str, float]:
    """Exact ``accuracy`` and ``cross_entropy`` of ``model`` over a finite dataset of :class:`ImageExample`."""
    loader = trainer.data_loader(dataset, trainer.EvalBatch)

    @eqx.filter_jit
    def eval_loss(model, batch):
        return trainer.loss_fn(model, batch, key=None)

    _, metrics = eval_loss_loop(eval_loss, eqx.nn.inference_mode(model), loader, name=name)
    return {k: float(metrics[k]) for k in ("accuracy", "cross_entropy")}
