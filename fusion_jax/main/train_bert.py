"""Train a BERT masked LM (``common_jax.models.bert``) on levanter's Trainer: the parents of BERT fusion.

    python -m fusion_jax.main.train_bert --config_path configs/fusion/parents/bert_enwiki_tiny.yaml

Logs ``train/*`` and ``eval/validation/{loss,accuracy}``, checkpoints under ``trainer.checkpointer.base_path``,
resumes from the latest checkpoint of the same run id; returns the final validation masked-token
``{"loss", "accuracy", "perplexity", "steps"}``.
"""

import logging
import math
from dataclasses import dataclass, field

import equinox as eqx
import jax
import levanter
from levanter.callbacks import eval_loss_loop
from levanter.optim import AdamConfig, OptimizerConfig
from levanter.trainer import Trainer, TrainerConfig
from levanter.utils.jax_utils import parameter_count

from common_jax.data.images import EpochShuffledDataset
from common_jax.launch import run_main
from common_jax.models.bert import BertConfig
from common_jax.training.run_setup import default_trainer_config, ensure_json_tracker, metrics_jsonl, run_dir

from ..mlm_data import MlmDataConfig, mlm_loss

logger = logging.getLogger(__name__)


@dataclass
class TrainBertConfig:
    data: MlmDataConfig = field(default_factory=MlmDataConfig)
    model: BertConfig = field(default_factory=BertConfig)
    trainer: TrainerConfig = field(default_factory=default_trainer_config)
    optimizer: OptimizerConfig = field(default_factory=AdamConfig)

    def __post_init__(self):
        if self.data.seq_len > self.model.max_position:
            raise ValueError(f"data.seq_len ({self.data.seq_len}) exceeds model.max_position "
                             f"({self.model.max_position})")


def evaluate_mlm(trainer, model, dataset, name: str = "validation") -> dict[str, float]:
    """Exact masked-token ``loss``, ``accuracy`` and ``perplexity`` of ``model`` over a finite MLM dataset."""
    loader = trainer.data_loader(dataset, trainer.EvalBatch)

    @eqx.filter_jit
    def eval_loss(model, batch):
        return trainer.loss_fn(model, batch, key=None)

    _, metrics = eval_loss_loop(eval_loss, eqx.nn.inference_mode(model), loader, name=name)
    loss = float(metrics["masked_loss"])
    return {"loss": loss, "accuracy": float(metrics["accuracy"]), "perplexity": math.exp(loss)}


def check_vocab(model: BertConfig, vocab_size: int) -> None:
    if model.vocab_size != vocab_size:
        raise ValueError(f"model.vocab_size is {model.vocab_size} but the tokenizer has {vocab_size} tokens")


def main(config: TrainBertConfig) -> dict[str, float]:
    splits = config.data.load()
    check_vocab(config.model, splits.vocab_size)
    ensure_json_tracker(config.trainer)
    levanter.initialize(config)
    optimizer = config.optimizer.build(config.trainer.num_train_steps)
    with metrics_jsonl(run_dir(config.trainer) / "metrics.jsonl"), \
            Trainer(config.trainer, optimizer, mlm_loss) as trainer:
        model_key, training_key = jax.random.split(jax.random.PRNGKey(config.trainer.seed))
        state = trainer.initial_state(training_key, model_init=lambda: config.model.build(key=model_key))
        levanter.tracker.log_summary({"parameter_count": parameter_count(state.model)})
        trainer.add_eval_hook(splits.validation, name="validation")
        loader = trainer.data_loader(EpochShuffledDataset(splits.train, config.trainer.seed)).iter_from_step(
            int(state.step))
        info = trainer.train(state, loader)
        final = evaluate_mlm(trainer, info.eval_model, splits.validation)
        final["steps"] = int(info.state.step)
        levanter.tracker.log_summary({f"final/validation/{k}": v for k, v in final.items()})
        logger.info("final validation masked loss %.4f (accuracy %.4f)", final["loss"], final["accuracy"])
    trainer.tracker.finish()
    return final


if __name__ == "__main__":
    run_main(main)
