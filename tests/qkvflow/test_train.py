"""End to end: the tiny DiffEqFormer trains on enwiki106 through qkvflow_jax.main.train (levanter's Trainer),
its checkpoint discretises exactly, and (slow) the whole CPU reproduction writes its results."""

import json

import equinox as eqx
import haliax as hax
import jax
import jax.numpy as jnp
import pytest

from common_jax.training.run_setup import read_metrics
from qkvflow_jax import discretise
from qkvflow_jax.evaluation import vocab_axis
from qkvflow_jax.main import reproduce, train
from tests.common.runs import final_model, launch

from .tiny import max_abs_diff


def test_diffeqformer_smoke_run_learns_and_discretises(in_tmp):
    config, result = launch(train, train.TrainLmConfig, "qkvflow/tiny.yaml", "ode", 50, in_tmp,
                            ["--trainer.steps_per_eval", "25", "--trainer.max_eval_batches", "4"])
    evals = [r["metrics"]["eval/bpb"] for r in read_metrics(in_tmp / "logs/ode/metrics.jsonl")
             if "eval/bpb" in r["metrics"]]
    assert result["steps"] == 50 and len(evals) >= 2 and evals[-1] < evals[0]
    assert result["bpb"] < 7.0, result  # uniform over 257 byte tokens is 8.0 bits per byte
    Vocab = vocab_axis(config.data.lm_data_config().the_tokenizer, config.trainer)
    abstract = eqx.filter_eval_shape(lambda: config.model.build(Vocab, key=jax.random.PRNGKey(0)))
    model = final_model(abstract, in_tmp, "ode")
    ids = hax.named(jnp.arange(64) % 200, "position")
    logits = eqx.filter_jit(lambda m: m(ids))
    assert max_abs_diff(logits(model), logits(discretise(model, config.model.num_layers))) <= 1e-6


@pytest.mark.slow
def test_full_cpu_reproduction(in_tmp):
    summary = reproduce.run_demo(in_tmp / "qkvflow", quick=False)
    results = json.loads((in_tmp / "qkvflow" / "results.json").read_text())
    assert set(results["val_bits_per_byte"]) == set(reproduce.ARMS)
    assert all(v < 4.0 for v in results["val_bits_per_byte"].values()), results  # uniform: 8.0
    assert set(results["finetune"]) == {"full", "lora"} and results["depth_zero_shot"]
    assert all((in_tmp / p).exists() for p in summary["figures"])
