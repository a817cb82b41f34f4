"""Train an accuracy predictor (Transformer-NFN, MLP or STATNN) on a zoo with levanter's Trainer (nfn.md §6).

    python -m nfn_jax.main.train --config_path configs/nfn/nfn_tiny.yaml [--model.type statnn]

Loss: BCE between the sigmoid output and the true accuracy (soft target). Adam (0.9, 0.999, 1e-8), no weight
decay, per-epoch schedule (linear warm-up from lr/10 over ``warmup_epochs``, then cosine to ``min_lr``) written
as a step function. After every epoch: val and test τ-b, R², L1, BCE logged. Returns final-epoch test metrics,
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
from levanter.trainer import Trainer, TrainerConfig
from levanter.utils.jax_utils import parameter_count

from common_jax.data import EpochShuffledDataset
from common_jax.launch import run_main
from common_jax.training.run_setup import default_trainer_config, ensure_json_tracker, metrics_jsonl, run_dir

from ..data import SPLIT_NAMES, PredictorDataset, PredictorSplit, split_indices, take
from ..metrics import kendall_tau_b, regression_metrics
from ..model import TransformerNFNConfig
from ..predictor import PredictorConfig
from ..zoo.io import load_zoo

logger = logging.getLogger(__name__)
THRESHOLDS = (0.0, 0.2, 0.4, 0.6, 0.8)


def _predictor_trainer_config() -> TrainerConfig:
    config = default_trainer_config()
    config.train_batch_size = 16
    return config


@dataclass
class TrainPredictorConfig:
    zoo_path: str = "zoo/tiny_mnist"
    ckpt_epoch: str = "75"  # the checkpoint epoch used as data (nfn.md §5.5)
    threshold: float = 0.0  # keep models with accuracy >= threshold, before the split
    num_heads: int = 2  # of the zoo models (not recoverable from a state dict)
    split_seed: int = 0
    model: PredictorConfig = field(default_factory=TransformerNFNConfig)
    trainer: TrainerConfig = field(default_factory=_predictor_trainer_config)
    epochs: int = 100
    warmup_epochs: int = 10
    learning_rate: float = 1e-3
    min_lr: float = 1e-5

    def __post_init__(self):
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"threshold must be in [0, 1), got {self.threshold}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs), got {self.warmup_epochs} with epochs {self.epochs}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}")


def epoch_schedule(config: TrainPredictorConfig, steps_per_epoch: int):
    """Step -> lr, constant within an epoch: warm-up lr/10 -> lr, then cosine to ``min_lr`` (nfn.md §6)."""
    lr, w, span = config.learning_rate, config.warmup_epochs, max(config.epochs - config.warmup_epochs, 1)

    def schedule(step):
        epoch = (step // steps_per_epoch).astype(jnp.float32)
        warm = lr / 10 + (lr - lr / 10) * epoch / max(w, 1)
        cosine = config.min_lr + (lr - config.min_lr) * 0.5 * (1 + jnp.cos(jnp.pi * (epoch - w) / span))
        return jnp.where(epoch < w, warm, cosine)

    return schedule


def check_model_matches_zoo(model: PredictorConfig, spec, weights) -> None:
    if model.weight_space != spec:
        raise ValueError(f"model.weight_space is {model.weight_space} but the zoo's weights are {spec}")
    n_cls = int(weights.classifier_features().shape[1])
    if model.classifier_features != n_cls:
        raise ValueError(f"model.classifier_features is {model.classifier_features} but the zoo's classifier has {n_cls}")
    emb = weights.embedding_features()
    n_emb = 0 if emb is None else int(emb.shape[1])
    if model.embedding_features not in (0, n_emb):
        raise ValueError(f"model.embedding_features is {model.embedding_features} but the zoo's embedding has {n_emb}")


def bce_loss(model, batch, *, key=None):
    """Soft-target binary cross-entropy between the predicted and the true accuracy, mean over the batch."""
    pred = jnp.clip(model(batch.weights), 1e-7, 1 - 1e-7)
    target = batch.accuracy.array
    return -jnp.mean(target * jnp.log(pred) + (1 - target) * jnp.log(1 - pred)), {}


def load_splits(config: TrainPredictorConfig):
    zoo = load_zoo(config.zoo_path, epoch=config.ckpt_epoch, threshold=config.threshold, num_heads=config.num_heads)
    host = jax.tree.map(np.asarray, zoo.weights)
    idx = split_indices(len(zoo.accuracy), config.split_seed)
    return zoo, {name: PredictorSplit(take(host, idx[name]), zoo.accuracy[idx[name]]) for name in SPLIT_NAMES}


@eqx.filter_jit
def _predict_batch(model, weights):
    return model(weights)


def predict(model, split: PredictorSplit, batch_size: int = 256) -> np.ndarray:
    """Predicted accuracies ``[N]`` of a split, in batches (one compilation per model structure and batch shape)."""
    out = [np.asarray(_predict_batch(model, take(split.weights, slice(s, s + batch_size))))
           for s in range(0, len(split.accuracy), batch_size)]
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
    steps_per_epoch = len(splits["train"].accuracy) // config.trainer.train_batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"trainer.train_batch_size {config.trainer.train_batch_size} exceeds the {len(splits['train'].accuracy)} training models")
    config.trainer.num_train_steps = config.epochs * steps_per_epoch

    ensure_json_tracker(config.trainer)
    levanter.initialize(config)
    optimizer = optax.adam(epoch_schedule(config, steps_per_epoch), b1=0.9, b2=0.999, eps=1e-8)
    history: list[dict] = []

    def record(model, epoch: int) -> dict:
        out = {"epoch": epoch}
        for name in ("val", "test"):
            out[f"{name}_pred"] = predict(model, splits[name])
            out[name] = regression_metrics(out[f"{name}_pred"], splits[name].accuracy)
        return out

    def evaluate(info):
        if (info.step + 1) % steps_per_epoch == 0:
            history.append(record(info.eval_model, (info.step + 1) // steps_per_epoch))
            levanter.tracker.log({f"eval/{n}/{k}": v for n in ("val", "test") for k, v in history[-1][n].items()},
                                 step=info.step)

    with metrics_jsonl(run_dir(config.trainer) / "metrics.jsonl"), Trainer(config.trainer, optimizer, bce_loss) as trainer:
        model_key, training_key = jax.random.split(jax.random.PRNGKey(config.trainer.seed))
        state = trainer.initial_state(training_key, model_init=lambda: config.model.build(key=model_key))
        levanter.tracker.log_summary({"parameter_count": parameter_count(state.model)})
        trainer.add_hook(evaluate, every=1)
        loader = trainer.data_loader(EpochShuffledDataset(PredictorDataset(splits["train"]), config.trainer.seed))
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
