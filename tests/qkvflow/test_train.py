"""End to end: the reproduction's smoke preset runs the DiffEqFormer stages through levanter's Trainer (training,
the zero-shot depth change, LoRA fine-tuning of the discretised model, the analyses), the scaled DiffEqFormer
learns and its checkpoint discretises exactly; (slow) the full CPU reproduction writes its results."""

import json

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import pytest

from common_jax.checkpoints import load_model
from common_jax.launch import parse_config
from common_jax.plotting import metric_series
from qkvflow_jax import discretise
from qkvflow_jax.evaluation import vocab_axis
from qkvflow_jax.main import reproduce
from qkvflow_jax.main.train import TrainLmConfig

from .tiny import max_abs_diff


def test_smoke_reproduction_runs_every_stage_and_learns(in_tmp):
    job_dir = in_tmp / "qkvflow"
    summary = reproduce.run_demo(job_dir, "smoke")
    results = json.loads((job_dir / "results.json").read_text())
    plan = reproduce.PLANS["smoke"]
    assert set(results["val_bits_per_byte"]) == set(results["val_bits_per_byte_seeds"]) == set(plan.arms)
    assert all(len(v) == 1 for v in results["val_bits_per_byte_seeds"].values())
    assert set(results["depth_zero_shot"]["diffeqformer_scaled"]) == {"2", "4"}
    assert set(results["finetune"]["diffeqformer_scaled"]) == {"lora"} and results["depth_baselines"] == {}
    assert summary["summary"].startswith("DiffEqFormer (scaled start)")
    assert all((in_tmp / p).exists() for p in summary["figures"]) and len(summary["figures"]) == 6

    # the scaled DiffEqFormer learns in 30 steps (uniform over 257 byte tokens is 8.0 bits per byte), and the
    # zero-shot evaluation at its own depth L = 4 is the trained model's final evaluation
    _, evals = metric_series(job_dir / "runs" / "diffeqformer_scaled_s0" / "metrics.jsonl", "eval/bpb")
    bpb = results["val_bits_per_byte"]["diffeqformer_scaled"]
    assert len(evals) >= 2 and evals[-1] < evals[0] and bpb < 7.0, evals
    assert abs(results["depth_zero_shot"]["diffeqformer_scaled"]["4"] - bpb) < 1e-4

    # the checkpoint's continuous forward equals its discretisation at L = 4
    config = parse_config(TrainLmConfig, reproduce.CONFIGS / "tiny_scaled.yaml")
    Vocab = vocab_axis(config.data.lm_data_config().the_tokenizer, config.trainer)
    abstract = eqx.filter_eval_shape(lambda: config.model.build(Vocab, key=jax.random.PRNGKey(0)))
    model = load_model(abstract, str(job_dir / "checkpoints" / "diffeqformer_scaled_s0"))
    ids = hax.named(jnp.arange(64) % 200, "position")
    logits = eqx.filter_jit(lambda m: m(ids))
    assert max_abs_diff(logits(model), logits(discretise(model, config.model.num_layers))) <= 1e-6
    assert max_abs_diff(logits(model), logits(discretise(model, 2))) > 1e-3


@pytest.mark.slow
def test_full_cpu_reproduction(in_tmp):
    summary = reproduce.run_demo(in_tmp / "qkvflow", "full")
    results = json.loads((in_tmp / "qkvflow" / "results.json").read_text())
    assert set(results["val_bits_per_byte"]) == set(reproduce.ARMS)
    assert all(v < 4.0 for v in results["val_bits_per_byte"].values()), results  # uniform: 8.0
    for arm in reproduce.STARTS:
        assert set(results["finetune"][arm]) == {"full", "lora"} and results["depth_zero_shot"][arm]
    assert set(results["depth_baselines"]) == {"gpt2", "untied_parallel"}
    assert all((in_tmp / p).exists() for p in summary["figures"])
