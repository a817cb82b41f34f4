"""The ViT on mnist10k through levanter's Trainer: it learns, and kill-and-resume is exact."""

import json

import equinox as eqx
import jax
import numpy as np

from common_jax.main import train_classifier
from common_jax.main.train_classifier import TrainClassifierConfig

from .runs import assert_trees_equal, final_model, launch

YAML = "common/vit_mnist_tiny.yaml"
SMALL = ["--model.num_layers", "2", "--trainer.train_batch_size", "64", "--trainer.steps_per_eval", "1000"]


def test_vit_learns_mnist_well_above_chance(in_tmp):
    _, result = launch(train_classifier, TrainClassifierConfig, YAML, "learn", 80, in_tmp, SMALL)
    assert result["steps"] == 80
    assert result["accuracy"] > 0.5, result  # chance is 0.1
    records = [json.loads(line) for line in (in_tmp / "logs/learn/metrics.jsonl").read_text().splitlines()]
    logged = {k for r in records if r["event"] == "log" for k in r["metrics"]}
    assert {"train/loss", "train/accuracy", "eval/test/accuracy"} <= logged


def test_kill_and_resume_equals_uninterrupted_run(in_tmp):
    constant_lr = SMALL + ["--optimizer.lr_schedule", "constant", "--optimizer.warmup", "0"]
    config, _ = launch(train_classifier, TrainClassifierConfig, YAML, "whole", 12, in_tmp, constant_lr)
    # the interrupted run stops after 6 steps (its final checkpoint), then the same run id is relaunched to 12
    launch(train_classifier, TrainClassifierConfig, YAML, "resumed", 6, in_tmp, constant_lr)
    _, result = launch(train_classifier, TrainClassifierConfig, YAML, "resumed", 12, in_tmp, constant_lr)
    assert result["steps"] == 12

    abstract = eqx.filter_eval_shape(lambda: config.model.build(key=jax.random.PRNGKey(0)))
    whole, resumed = final_model(abstract, in_tmp, "whole"), final_model(abstract, in_tmp, "resumed")
    assert_trees_equal(whole, resumed)
    # and training moved the parameters away from their initialisation
    init = config.model.build(key=jax.random.split(jax.random.PRNGKey(0))[0])
    assert not np.allclose(np.asarray(init.head.weight.array), np.asarray(whole.head.weight.array))
