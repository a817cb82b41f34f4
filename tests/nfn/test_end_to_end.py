"""End to end: a tiny zoo and a short Transformer-NFN run on levanter's Trainer (default suite); the full CPU
reproduction (256 models, every predictor) and the shuffled-label control are marked slow.
"""

import json

import numpy as np
import pytest

from common_jax.launch import parse_config
from common_jax.training.run_setup import read_metrics
from nfn_jax.main import generate_zoo, reproduce, train
from nfn_jax.main.train import TrainPredictorConfig
from nfn_jax.zoo.config import ZooConfig
from nfn_jax.zoo.io import read_csv, write_csv

from .test_configs import CONFIGS

ZOO = ["--output_dir", "zoo", "--max_models", "96", "--chunk_size", "48", "--epochs", "3", "--warmup_epochs", "1",
       "--checkpoint_epochs", "[2, 3]", "--data.max_train", "1024", "--data.max_test", "500", "--batch_size", "64",
       "--sweeps", "[{optimizers: [adam], learning_rates: [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1],"
       " init_stds: [0.05, 0.2, 0.5], weight_decays: [1e-8, 1e-2], train_fractions: [1.0], dropouts: [0.0, 0.2]}]"]


def _predictor(zoo_path, run_id):
    return parse_config(TrainPredictorConfig, CONFIGS / "nfn_tiny.yaml", [
        "--zoo_path", str(zoo_path), "--ckpt_epoch", "2", "--epochs", "6", "--warmup_epochs", "1", "--trainer.id", run_id,
        "--trainer.log_dir", "logs", "--trainer.checkpointer.base_path", "checkpoints"])


def test_tiny_zoo_then_nfn_trains_on_levanter(in_tmp):
    info = generate_zoo.main(parse_config(ZooConfig, CONFIGS / "tiny_mnist.yaml", ZOO))
    assert info["num_runs"] == 96
    result = train.main(_predictor(in_tmp / "zoo", "real"))
    assert result["split_sizes"] == {"train": 67, "val": 14, "test": 15}
    assert set(result["tau_by_threshold"]) == {"0", "20", "40", "60", "80"}
    assert np.isfinite(result["final"]["tau"]) and len(result["predictions"]) == 15
    # the predictor learned: validation BCE fell clearly below its first-epoch value
    val_bce = [r["metrics"]["eval/val/bce"] for r in read_metrics(in_tmp / "logs" / "real" / "metrics.jsonl")
               if "eval/val/bce" in r["metrics"]]
    assert len(val_bce) >= 6 and val_bce[-1] < val_bce[0] - 0.05, val_bce


def _shuffle_labels(zoo_dir):
    rows = read_csv(zoo_dir / "metadata.csv")
    acc = [r["test_top1_accuracy"] for r in rows]
    shuffled = [{**r, "test_top1_accuracy": a} for r, a in zip(rows, np.random.default_rng(0).permutation(acc))]
    write_csv(zoo_dir / "metadata.csv", shuffled, list(rows[0]))


@pytest.mark.slow
def test_full_cpu_reproduction(in_tmp):
    summary = reproduce.run_demo(in_tmp / "nfn", quick=False)
    results = json.loads((in_tmp / "nfn" / "results.json").read_text())
    assert results["zoo_size"] == 256 and summary["figures"] == ["nfn/predictions.png"]
    assert set(results["kendall_tau"]) >= {"transformer_nfn", "mlp", "statnn"}
    assert results["kendall_tau"]["transformer_nfn"] > 0.5  # nfn.md §12: τ ≈ 0.75-0.88 for every method at this size
    # control: the same zoo with accuracy labels permuted across models gives a much lower τ
    _shuffle_labels(in_tmp / "nfn" / "zoo")
    config = parse_config(TrainPredictorConfig, CONFIGS / "nfn_tiny.yaml", [
        "--zoo_path", str(in_tmp / "nfn" / "zoo"), "--trainer.id", "shuffled", "--trainer.log_dir", "logs",
        "--trainer.checkpointer.base_path", "checkpoints"])
    control = train.main(config)
    assert results["kendall_tau"]["transformer_nfn"] > control["final"]["tau"] + 0.3
