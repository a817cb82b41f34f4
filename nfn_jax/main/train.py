"""Train an accuracy predictor (Transformer-NFN, MLP or STATNN) on a zoo with levanter's Trainer (nfn.md §6).

    python -m nfn_jax.main.train --config_path configs/nfn/nfn_tiny.yaml [--model.type statnn]

As the reference's ``main.py``: the epoch-75 checkpoints with accuracy >= ``cut_off`` (0.1), its seeded split
(:mod:`nfn_jax.data`), torch's ``BCELoss`` between the sigmoid output and the true accuracy (:mod:`nfn_jax.loss`),
Adam (0.9, 0.999, 1e-8), no weight decay, batch 16 with each epoch's last partial batch kept, and the reference's
per-epoch learning rate (:mod:`nfn_jax.schedule`: warm-up to the full rate at epoch ``warmup_epochs - 1``, then
cosine to ``min_lr``). After every epoch: val and test τ-b, R², L1, BCE logged. Returns final-epoch test metrics,
test metrics at the best-val-τ epoch, and Kendall τ-b on the test split at each accuracy threshold.
"""

import logging
from dataclasses import dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
import levanter
import numpy as np
import optax
from levanter.callbacks.watch import WatchConfig
from levanter.trainer import Trainer, TrainerConfig
from levanter.utils.jax_utils import parameter_count

from common_jax.launch import run_main
from common_jax.training.run_setup import default_trainer_config, ensure_json_tracker, metrics_jsonl, run_dir

from ..data import SPLIT_NAMES, EpochBatchStream, PredictorSplit, split_indices, take
from ..loss import binary_cross_entropy
from ..metrics import kendall_tau_b, regression_metrics
from ..model import TransformerNFNConfig
from ..predictor import PredictorConfig
from ..schedule import per_step_schedule
from ..zoo.io import load_zoo

logger = logging.getLogger(__name__)
THRESHOLDS = (0.0, 0.2, 0.4, 0.6, 0.8)


def _predictor_trainer_config() -> TrainerConfig:
    config = default_trainer_config()
    config.train_batch_size = 16
    config.watch = WatchConfig(interval=0)  # levanter's norm-watching jit hook costs a second train-step compile
    return config


@dataclass
class TrainPredictorConfig:
    zoo_path: str = "zoo/tiny_mnist"
    ckpt_epoch: str = "75"  # the checkpoint epoch used as data (nfn.md §5.5)
    cut_off: float = 0.1  # keep models with test accuracy >= cut_off, before the split (the reference's default)
    num_heads: int = 2  # of the zoo models (not recoverable from a state dict)
    split_seed: int = 3  # the reference seeds Python's random with its --seed (3) before shuffling
    model: PredictorConfig = field(default_factory=TransformerNFNConfig)
    trainer: TrainerConfig = field(default_factory=_predictor_trainer_config)
    epochs: int = 100
    warmup_epochs: int = 10
    learning_rate: float = 1e-3
    min_lr: float = 1e-5

    def __post_init__(self):
        if not 0.0 <= self.cut_off < 1.0:
            raise ValueError(f"cut_off must be in [0, 1), got {self.cut_off}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs), got {self.warmup_epochs} with epochs {self.epochs}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")


def check_model_matches_zoo(model: PredictorConfig, spec, weights) -> None:
    if model.weight_space != spec:
        raise ValueError(f"model.weight_space is {model.weight_space} but the zoo's weights are {spec}")
    shapes = tuple(tuple(weights.classifier[k].shape[1:]) for k in ("classifier.fc1.weight", "classifier.fc2.weight"))
    if shapes != model.classifier_shapes:
        raise ValueError(f"model.classifier_hidden / model.num_classes give classifier shapes {model.classifier_shapes} "
                         f"but the zoo's fc1/fc2 weights are {shapes}")
    emb = weights.embedding_features()
    n_emb = 0 if emb is None else int(emb.shape[1])
    if model.embedding_features not in (0, n_emb):
        raise ValueError(f"model.embedding_features is {model.embedding_features} but the zoo's embedding has {n_emb}")


def bce_loss(model, batch, *, key=None):
    """Torch's ``BCELoss`` between the predicted and the true accuracy, mean over the batch's real (weight-1) models."""
    losses = binary_cross_entropy(model(batch.weights), batch.accuracy.array)
    weight = batch.weight.array
    return jnp.sum(weight * losses) / jnp.sum(weight), {}


def load_splits(config: TrainPredictorConfig):
    zoo = load_zoo(config.zoo_path, epoch=config.ckpt_epoch, threshold=config.cut_off, num_heads=config.num_heads)
    host = jax.tree.map(np.asarray, zoo.weights)
    idx = split_indices(len(zoo.accuracy), config.split_seed)
    return zoo, {name: PredictorSplit(take(host, idx[name]), zoo.accuracy[idx[name]]) for name in SPLIT_NAMES}


@eqx.filter_jit
def _predict_batch(model, weights):
    return model(weights)


def predict(model, split: PredictorSplit, batch_size: int = 256) -> np.ndarray:
    """Predicted accuracies ``[N]`` of a split, in batches padded to ``min(batch_size, next power of 2 >= N)`` models,
    so that the val and test splits (and every batch of a large split) share one compilation."""
    n = len(split)
    size = min(batch_size, 1 << max(n - 1, 0).bit_length())
    out = []
    for start in range(0, n, size):
        index = np.minimum(np.arange(start, start + size), n - 1)  # the tail repeats the last model
        out.append(np.asarray(_predict_batch(model, take(split.weights, index)))[: n - start])
    return np.concatenate(out)


def tau_by_threshold(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Test τ-b among the models whose true accuracy is >= each threshold (NaN where fewer than 3 remain)."""
    out = {}
    for t in THRESHOLDS:
        keep = target >= t
        out[f"{int(t * 100)}"] = kendall_tau_b(pred[keep], target[keep]) if keep.sum() >= 3 else float("nan")
    return out


def main(config: TrainPredictorConfig) -> dict:
    """Train and evaluate; returns ``{"final": test metrics, "best_val": ..., "tau_by_threshold", "predictions", ...}``."""
    zoo, splits = load_splits(config)
    check_model_matches_zoo(config.model, zoo.spec, zoo.weights)
    train_stream = EpochBatchStream(splits["train"], config.trainer.train_batch_size, config.trainer.seed)
    epoch_steps = train_stream.steps_per_epoch
    config.trainer.num_train_steps = config.epochs * epoch_steps

    ensure_json_tracker(config.trainer)
    levanter.initialize(config)
    schedule = per_step_schedule(config.learning_rate, epoch_steps, epochs=config.epochs,
                                 warmup_epochs=config.warmup_epochs, min_lr=config.min_lr)
    optimizer = optax.adam(schedule, b1=0.9, b2=0.999, eps=1e-8)
    history: list[dict] = []

    def record(model, epoch: int) -> dict:
        out = {"epoch": epoch}
        for name in ("val", "test"):
            out[f"{name}_pred"] = predict(model, splits[name])
            out[name] = regression_metrics(out[f"{name}_pred"], splits[name].accuracy)
        return out

    def evaluate(info):
        if (info.step + 1) % epoch_steps == 0:
            history.append(record(info.eval_model, (info.step + 1) // epoch_steps))
            levanter.tracker.log({f"eval/{n}/{k}": v for n in ("val", "test") for k, v in history[-1][n].items()},
                                 step=info.step)

    with metrics_jsonl(run_dir(config.trainer) / "metrics.jsonl"), Trainer(config.trainer, optimizer, bce_loss) as trainer:
        model_key, training_key = jax.random.split(jax.random.PRNGKey(config.trainer.seed))
        state = trainer.initial_state(training_key, model_init=lambda: config.model.build(key=model_key))
        levanter.tracker.log_summary({"parameter_count": parameter_count(state.model)})
        trainer.add_hook(evaluate, every=1)
        loader = trainer.data_loader(train_stream)
        info = trainer.train(state, loader.iter_from_step(int(state.step)))
        if not history or history[-1]["epoch"] != config.epochs:  # resumed past the end: evaluate the final model
            history.append(record(info.eval_model, config.epochs))
    trainer.tracker.finish()

    final = history[-1]
    best = max(history, key=lambda r: -np.inf if np.isnan(r["val"]["tau"]) else r["val"]["tau"])
    result = {"final": final["test"], "best_val": {**best["test"], "epoch": best["epoch"]},
              "tau_by_threshold": tau_by_threshold(final["test_pred"], splits["test"].accuracy),
              "predictions": final["test_pred"].tolist(), "targets": splits["test"].accuracy.tolist(),
              "split_sizes": {n: int(len(s.accuracy)) for n, s in splits.items()},
              "parameter_count": int(parameter_count(info.state.model))}
    levanter.tracker.log_summary({f"final/test/{k}": v for k, v in final["test"].items()})
    logger.info("test tau-b: final %.4f, best-val epoch %d %.4f", final["test"]["tau"], best["epoch"], best["test"]["tau"])
    return result


if __name__ == "__main__":
    run_main(main)
