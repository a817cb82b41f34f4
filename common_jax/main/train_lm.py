"""Train a causal LM (levanter's GPT-2 or Llama, or any registered ``LmConfig``) on levanter's Trainer.

    python -m common_jax.main.train_lm --config_path configs/common/gpt2_enwiki_tiny.yaml [--trainer.num_train_steps 100]

This is levanter's ``train_lm`` recipe on our own data configs (offline corpora, local tokenizers) without its
HF-hub converter. Logs ``eval/loss`` and ``eval/bpb`` (bits per byte) on the validation split, checkpoints,
and resumes from the latest checkpoint of the same run id.
"""

import logging
from dataclasses import dataclass, field

import jax
import levanter
import levanter.eval
from haliax import Axis
from haliax.partitioning import round_axis_for_partitioning
from levanter import callbacks
from levanter.models.gpt2 import Gpt2Config
from levanter.models.lm_model import LmConfig, LmExample, LmHeadModel
from levanter.optim import AdamConfig, OptimizerConfig
from levanter.trainer import Trainer, TrainerConfig
from levanter.utils.jax_utils import parameter_count

from ..data.lm import LmCorpusConfig
from ..launch import ConfigError, run_main
from ..training.run_setup import default_trainer_config, ensure_json_tracker, last_metrics, metrics_jsonl, run_dir

logger = logging.getLogger(__name__)


@dataclass
class TrainLmConfig:
    data: LmCorpusConfig = field(default_factory=LmCorpusConfig)
    model: LmConfig = field(default_factory=Gpt2Config)
    trainer: TrainerConfig = field(default_factory=default_trainer_config)
    optimizer: OptimizerConfig = field(default_factory=AdamConfig)
    train_seq_len: int | None = None  # defaults to model.max_seq_len
    z_loss_weight: float = 0.0

    def __post_init__(self):
        if self.train_seq_len is not None and not 0 < self.train_seq_len <= self.model.max_seq_len:
            raise ValueError(f"train_seq_len must be in [1, model.max_seq_len={self.model.max_seq_len}], "
                             f"got {self.train_seq_len}")


def main(config: TrainLmConfig) -> dict[str, float]:
    """Train and return the final validation ``{"loss", "bpb", "steps"}``."""
    data = config.data.lm_data_config()
    tokenizer = data.the_tokenizer

    ensure_json_tracker(config.trainer)
    levanter.initialize(config)
    optimizer = config.optimizer.build(config.trainer.num_train_steps)

    def loss_function(model: LmHeadModel, example: LmExample, *, key=None):
        return model.compute_next_token_loss(example, key=key, logsumexp_weight=config.z_loss_weight)

    Pos = config.model.max_Pos.resize(config.train_seq_len or config.model.max_seq_len)
    # vocab sizes such as GPT-2's 50257 are rounded up so the vocab axis divides the device mesh
    with config.trainer.use_device_mesh():
        Vocab = round_axis_for_partitioning(Axis("vocab", len(tokenizer)), config.trainer.parameter_axis_mapping)
    eval_sets = data.tagged_eval_sets(Pos)
    if not eval_sets:
        raise ConfigError(f"the corpus {config.data.name!r} has no validation split to evaluate on")
    max_eval_examples = None
    if config.trainer.max_eval_batches is not None:
        max_eval_examples = config.trainer.max_eval_batches * config.trainer.eval_batch_size
    # Built outside the trainer's mesh and on the host CPU: levanter's evaluator makes its per-dataset tag
    # arrays eagerly, and the data loader stacks examples on the local CPU device.
    with jax.default_device(jax.local_devices(backend="cpu")[0]):
        evaluate = levanter.eval.cb_tagged_lm_evaluate(
            config.trainer.EvalBatch, eval_sets, tokenizer, config.trainer.device_mesh,
            config.trainer.compute_axis_mapping, max_eval_examples, mp=config.trainer.mp,
        )

    metrics_path = run_dir(config.trainer) / "metrics.jsonl"
    with metrics_jsonl(metrics_path), Trainer(config.trainer, optimizer, loss_function) as trainer:
        data_key, model_key, training_key = jax.random.split(jax.random.PRNGKey(config.trainer.seed), 3)
        train_dataset = data.train_set(Pos, config.trainer.batch_schedule, key=data_key)
        state = trainer.initial_state(training_key, model_init=lambda: config.model.build(Vocab, key=model_key))
        levanter.tracker.log_summary({"parameter_count": parameter_count(state.model)})
        trainer.add_hook(evaluate, every=config.trainer.steps_per_eval)
        flops_per_token = config.model.flops_per_token(Vocab.size, Pos.size)
        flops_per_example = 3 * flops_per_token * Pos.size if flops_per_token is not None else None
        trainer.add_hook(
            callbacks.log_performance_stats(Pos.size, config.trainer.batch_schedule, flops_per_example), every=1
        )

        train_loader = trainer.data_loader(train_dataset).iter_from_step(int(state.step))
        info = trainer.train(state, train_loader)
    trainer.tracker.finish()

    final = {k.removeprefix("eval/"): v for k, v in last_metrics(metrics_path, "eval/").items()}
    result = {"loss": final["loss"], "bpb": final["bpb"], "steps": int(info.state.step)}
    logger.info("final validation loss %.4f, bits per byte %.4f", result["loss"], result["bpb"])
    return result


if __name__ == "__main__":
    run_main(main)
