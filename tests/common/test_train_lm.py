"""levanter's GPT-2 on enwiki106 through common_jax.main.train_lm: it learns, reports bits per byte, resumes."""

import equinox as eqx
import jax
from haliax import Axis

from common_jax.main import train_lm
from common_jax.main.train_lm import TrainLmConfig
from common_jax.training.run_setup import read_metrics

from .runs import assert_trees_equal, final_model, launch

YAML = "common/gpt2_enwiki_tiny.yaml"
# byte-level tokens keep the vocabulary (257) and so the step small; 2 x 64 GPT-2 on 64-token windows
SMALL = ["--data.tokenizer", "bytes", "--model.hidden_dim", "64", "--model.max_seq_len", "64",
         "--trainer.train_batch_size", "8", "--data.cache_dir", "cache"]


def test_gpt2_learns_enwiki_bytes(in_tmp):
    _, result = launch(train_lm, TrainLmConfig, YAML, "lm", 40, in_tmp, SMALL + ["--trainer.steps_per_eval", "20"])
    evals = [r["metrics"]["eval/bpb"] for r in read_metrics(in_tmp / "logs/lm/metrics.jsonl")
             if "eval/bpb" in r["metrics"]]
    assert len(evals) >= 2 and evals[-1] < evals[0]
    # uniform over 257 byte tokens is 8.0 bits per byte
    assert result["steps"] == 40 and result["bpb"] < 6.0, result


def test_lm_kill_and_resume_equals_uninterrupted_run(in_tmp):
    constant_lr = SMALL + ["--optimizer.lr_schedule", "constant", "--optimizer.warmup", "0",
                           "--trainer.steps_per_eval", "1000", "--trainer.max_eval_batches", "1"]
    config, _ = launch(train_lm, TrainLmConfig, YAML, "whole", 8, in_tmp, constant_lr)
    launch(train_lm, TrainLmConfig, YAML, "resumed", 4, in_tmp, constant_lr)
    launch(train_lm, TrainLmConfig, YAML, "resumed", 8, in_tmp, constant_lr)
    abstract = eqx.filter_eval_shape(lambda: config.model.build(Axis("vocab", 257), key=jax.random.PRNGKey(0)))
    assert_trees_equal(final_model(abstract, in_tmp, "whole"), final_model(abstract, in_tmp, "resumed"))
