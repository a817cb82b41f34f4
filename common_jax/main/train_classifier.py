"""Train an image classifier (the ``common_jax`` ViT) on levanter's Trainer.

    python -m common_jax.main.train_classifier --config_path configs/common/vit_mnist_tiny.yaml [--trainer.num_train_steps 500]

Logs ``train/*`` and ``eval/test/{accuracy,cross_entropy}`` through levanter's trackers (always also to
``<log_dir>/<run id>/metrics.jsonl``), checkpoints under ``trainer.checkpointer.base_path`` and resumes from
the latest checkpoint of the same run id.
"""

import functools
import logging
from dataclasses import dataclass, field

import equinox as eqx
import jax
import levanter
from levanter import callbacks
from levanter.optim import AdamConfig, OptimizerConfig
from levanter.trainer import Trainer, TrainerConfig
from levanter.utils.jax_utils import parameter_count

from ..data.augment import AugmentConfig
from ..data.images import EpochShuffledDataset, ImageDataConfig
from ..launch import ConfigError, run_main
from ..models.classifier_config import ImageClassifierConfig
from ..models.vit import ViTConfig
from ..training.classification import classification_loss, evaluate_classifier
from ..training.run_setup import default_trainer_config, ensure_json_tracker, metrics_jsonl, run_dir

logger = logging.getLogger(__name__)


@dataclass
class TrainClassifierConfig:
    data: ImageDataConfig = field(default_factory=ImageDataConfig)
    model: ImageClassifierConfig = field(default_factory=ViTConfig)
    trainer: TrainerConfig = field(default_factory=default_trainer_config)
    optimizer: OptimizerConfig = field(default_factory=AdamConfig)
    label_smoothing: float = 0.0
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # training-time augmentation, off by default
    data_seed: int | None = None  # seed of the per-epoch shuffles; defaults to trainer.seed

    def __post_init__(self):
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")


def abstract_model(config: TrainClassifierConfig) -> eqx.Module:
    """The launch's model as shapes only (``eqx.filter_eval_shape``): for config checks and checkpoint loading."""
    return eqx.filter_eval_shape(lambda: config.model.build(key=jax.random.PRNGKey(0)))


def check_model_matches_data(model: ImageClassifierConfig, image_shape: tuple[int, int, int], num_classes: int) -> None:
    height, width, channels = image_shape
    if (height, width) != (model.image_size, model.image_size):
        raise ConfigError(f"model.image_size is {model.image_size} but the data's images are {height}x{width}")
    if channels != model.num_channels:
        raise ConfigError(f"model.num_channels is {model.num_channels} but the data's images have {channels}")
    if num_classes != model.num_classes:
        raise ConfigError(f"model.num_classes is {model.num_classes} but the data has {num_classes} classes")


def main(config: TrainClassifierConfig) -> dict[str, float]:
    """Train, evaluate on the test split, return the final ``{"accuracy", "cross_entropy", "steps"}``."""
    splits = config.data.load()
    check_model_matches_data(config.model, splits.image_shape, splits.num_classes)

    ensure_json_tracker(config.trainer)
    levanter.initialize(config)
    optimizer = config.optimizer.build(config.trainer.num_train_steps)
    loss_fn = functools.partial(
        classification_loss, label_smoothing=config.label_smoothing, augment=config.augment
    )

    with metrics_jsonl(run_dir(config.trainer) / "metrics.jsonl"), Trainer(config.trainer, optimizer, loss_fn) as trainer:
        model_key, training_key = jax.random.split(jax.random.PRNGKey(config.trainer.seed))
        state = trainer.initial_state(training_key, model_init=lambda: config.model.build(key=model_key))
        levanter.tracker.log_summary({"parameter_count": parameter_count(state.model)})
        trainer.add_eval_hook(splits.test, name="test")
        # one "token" per image, so levanter's tokens_per_second reads as images per second
        trainer.add_hook(callbacks.log_performance_stats(1, config.trainer.batch_schedule), every=1)

        seed = config.trainer.seed if config.data_seed is None else config.data_seed
        train_loader = trainer.data_loader(EpochShuffledDataset(splits.train, seed)).iter_from_step(int(state.step))
        info = trainer.train(state, train_loader)

        final = evaluate_classifier(trainer, info.eval_model, splits.test)
        final["steps"] = int(info.state.step)
        levanter.tracker.log_summary({f"final/test/{k}": v for k, v in final.items()})
        logger.info("final test accuracy %.4f (cross-entropy %.4f)", final["accuracy"], final["cross_entropy"])
    trainer.tracker.finish()
    return final


if __name__ == "__main__":
    run_main(main)
