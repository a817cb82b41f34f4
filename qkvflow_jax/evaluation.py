"""Validation loss and bits per byte of any LmHeadModel outside training, with levanter's tagged evaluator
(the same numbers as the ``eval/loss`` and ``eval/bpb`` that ``train_lm`` logs), and the zero-shot depth change
of a DiffEqFormer (spec §7.3)."""

import jax
from haliax import Axis
from haliax.partitioning import round_axis_for_partitioning
from levanter.eval import TaggedEvaluator, _default_lm_eval_loss_fn, eval_model
from levanter.trainer import TrainerConfig

from .discrete import discretise


def vocab_axis(tokenizer, trainer: TrainerConfig) -> Axis:
    """The vocab axis ``train_lm`` builds models with (rounded so it divides the parameter mesh)."""
    with trainer.use_device_mesh():
        return round_axis_for_partitioning(Axis("vocab", len(tokenizer)), trainer.parameter_axis_mapping)


def make_evaluator(data, Pos: Axis, trainer: TrainerConfig) -> TaggedEvaluator:
    """An evaluator over the validation split of a levanter ``LmDataConfig``."""
    eval_sets = data.tagged_eval_sets(Pos)
    if not eval_sets:
        raise ValueError("the corpus has no validation split to evaluate on")
    max_examples = None if trainer.max_eval_batches is None else trainer.max_eval_batches * trainer.eval_batch_size
    EvalBatch = trainer.EvalBatch

    def loss_fn(model, batch):
        return _default_lm_eval_loss_fn(model, batch, EvalBatch=EvalBatch, mp=trainer.mp)

    with jax.default_device(jax.local_devices(backend="cpu")[0]):
        return TaggedEvaluator(EvalBatch, eval_sets, loss_fn, data.the_tokenizer, trainer.device_mesh,
                               trainer.compute_axis_mapping, max_examples)


def evaluate(evaluator: TaggedEvaluator, model, trainer: TrainerConfig) -> dict[str, float]:
    """{"loss": nats per token, "bpb": bits per byte} of ``model`` on the evaluator's data."""
    with trainer.use_device_mesh():
        metrics = eval_model(evaluator, model, prefix="eval")
    return {"loss": float(metrics["eval/loss"]), "bpb": float(metrics["eval/bpb"])}


def zero_shot_bpb(evaluator: TaggedEvaluator, model, layers, trainer: TrainerConfig) -> dict[int, float]:
    """{L': validation bits per byte} of a DiffEqFormer evaluated at L' Euler steps without training (exactly
    its discretisation at L')."""
    return {n: evaluate(evaluator, discretise(model, n), trainer)["bpb"] for n in layers}
