"""Adaptive fine-tuning (spec §2): discretise a trained DiffEqFormer at L' layers and fine-tune it.

    python -m qkvflow_jax.main.finetune --config_path configs/qkvflow/finetune/wiki_owt.yaml \
        --pretrained_checkpoint checkpoints/qkvflow/finetune_pretrain_wiki/<run id> --finetune_layers 12

Loads the pretrained continuous model, evaluates it zero-shot at every ``zero_shot_layers`` depth (by exact
discretisation), discretises it at ``finetune_layers`` (round(1/dt'), fix F1) into a plain parallel
transformer, and trains it on the target corpus with levanter's Trainer: ``finetune_mode: full`` (all weights)
or ``lora`` (rank ``lora_rank``, scale ``lora_alpha / lora_rank`` on qkv/attention-out/fc/proj, B = 0 at init;
the embeddings also train). Logs ``eval/loss`` and ``eval/bpb`` and writes ``zero_shot.json`` in the run dir.
"""

import json
import logging
from dataclasses import dataclass, field

import equinox as eqx
import jax
import levanter
from levanter.models.lm_model import LmConfig, LmExample
from levanter.optim import AdamConfig, OptimizerConfig
from levanter.trainer import Trainer, TrainerConfig
from levanter.utils.jax_utils import parameter_count

import qkvflow_jax  # noqa: F401  (registers the qkvflow LmConfig subclasses)
from common_jax.checkpoints import load_model
from common_jax.data.lm import LmCorpusConfig
from common_jax.launch import run_main
from common_jax.training.run_setup import (
    default_trainer_config,
    ensure_json_tracker,
    last_metrics,
    metrics_jsonl,
    run_dir,
)

from ..config import DiffEqFormerConfig
from ..discrete import LORA_INITS, add_lora, discretise, trainable_filter
from ..evaluation import evaluate, make_evaluator, vocab_axis, zero_shot_bpb

logger = logging.getLogger(__name__)
FINETUNE_MODES = ("full", "lora")


@dataclass
class FinetuneConfig:
    data: LmCorpusConfig = field(default_factory=LmCorpusConfig)  # the target corpus
    model: LmConfig = field(default_factory=DiffEqFormerConfig)  # the pretrained DiffEqFormer's config
    pretrained_checkpoint: str = ""  # a levanter checkpoint (run folder or step folder) of ``model``
    finetune_layers: int = 18  # L'
    finetune_mode: str = "full"
    lora_rank: int = 200
    lora_alpha: float = 8.0
    lora_init: str = "zero"  # "reference": both factors 1e-6 N(0, 1) (bug F3)
    zero_shot_layers: list[int] = field(default_factory=list)
    trainer: TrainerConfig = field(default_factory=default_trainer_config)
    optimizer: OptimizerConfig = field(default_factory=AdamConfig)

    def __post_init__(self):
        if not isinstance(self.model, DiffEqFormerConfig):
            raise ValueError(f"model.type must be diffeqformer (the GPT variant), got {type(self.model).__name__}")
        if self.finetune_mode not in FINETUNE_MODES:
            raise ValueError(f"finetune_mode must be one of {FINETUNE_MODES}, got {self.finetune_mode!r}")
        if self.lora_init not in LORA_INITS:
            raise ValueError(f"lora_init must be one of {LORA_INITS}, got {self.lora_init!r}")
        if self.finetune_layers < 1 or any(n < 1 for n in self.zero_shot_layers):
            raise ValueError("finetune_layers and every zero_shot_layers entry must be >= 1")
        if self.lora_rank < 1:
            raise ValueError(f"lora_rank must be >= 1, got {self.lora_rank}")


def main(config: FinetuneConfig) -> dict:
    """Fine-tune and return {"loss", "bpb", "steps", "zero_shot": {L': bpb}, "pretrained_bpb"}."""
    if not config.pretrained_checkpoint:
        raise ValueError("pretrained_checkpoint is required (a checkpoint of the pretrained DiffEqFormer)")
    data = config.data.lm_data_config()
    ensure_json_tracker(config.trainer)
    levanter.initialize(config)
    Vocab = vocab_axis(data.the_tokenizer, config.trainer)
    Pos = config.model.max_Pos
    abstract = eqx.filter_eval_shape(lambda: config.model.build(Vocab, key=jax.random.PRNGKey(0)))
    pretrained = load_model(abstract, config.pretrained_checkpoint, mesh=config.trainer.device_mesh)

    evaluator = make_evaluator(data, Pos, config.trainer)
    zero_shot = zero_shot_bpb(evaluator, pretrained, config.zero_shot_layers, config.trainer)
    model = discretise(pretrained, config.finetune_layers)
    del pretrained
    if config.finetune_mode == "lora":
        model = add_lora(model, config.lora_rank, config.lora_alpha, key=jax.random.PRNGKey(config.trainer.seed),
                         init=config.lora_init)
    start_bpb = evaluate(evaluator, model, config.trainer)["bpb"]

    def loss_function(model, example: LmExample, *, key=None):
        return model.compute_next_token_loss(example, key=key)

    optimizer = config.optimizer.build(config.trainer.num_train_steps)
    metrics_path = run_dir(config.trainer) / "metrics.jsonl"
    with metrics_jsonl(metrics_path), Trainer(config.trainer, optimizer, loss_function) as trainer:
        data_key, training_key = jax.random.split(jax.random.PRNGKey(config.trainer.seed))
        state = trainer.initial_state(training_key, model=model,
                                      is_trainable=trainable_filter(model, config.finetune_mode))
        levanter.tracker.log_summary({"parameter_count": parameter_count(state.model),
                                      "trainable_parameter_count": parameter_count(state.trainable_model)})
        trainer.add_hook(lambda info: levanter.tracker.log(
            {f"eval/{k}": v for k, v in evaluate(evaluator, info.model, config.trainer).items()}, step=info.step),
            every=config.trainer.steps_per_eval)
        train_set = data.train_set(Pos, config.trainer.batch_schedule, key=data_key)
        info = trainer.train(state, trainer.data_loader(train_set).iter_from_step(int(state.step)))
    trainer.tracker.finish()

    final = {k.removeprefix("eval/"): v for k, v in last_metrics(metrics_path, "eval/").items()}
    result = {"loss": final["loss"], "bpb": final["bpb"], "steps": int(info.state.step),
              "start_bpb": start_bpb, "zero_shot": zero_shot}
    (run_dir(config.trainer) / "zero_shot.json").write_text(json.dumps(result, indent=2))
    logger.info("fine-tuned %d layers (%s): validation bpb %.4f", config.finetune_layers, config.finetune_mode,
                result["bpb"])
    return result


if __name__ == "__main__":
    run_main(main)
