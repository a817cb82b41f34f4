"""Small CPU reproduction: a zoo on mnist10k, then every predictor; results.json, report.md, scatter plot.

    python -m nfn_jax.main.reproduce --out reports/nfn [--quick true]

Zoo: ``configs/nfn/tiny_mnist.yaml`` (256 runs, 8x8 digits); data = the checkpoints at 75 % of training. Predictors
on the same seeded 70/15/15 split: Transformer-NFN (``configs/nfn/nfn_tiny.yaml``), flattened-weight MLP, STATNN
(all on levanter's Trainer, same BCE and schedule) and XGBoost, LightGBM, Random Forest (when installed).
Metric: Kendall τ-b on the test split (final epoch; the best-val-τ epoch too), overall and at thresholds 0-80 %.
"""

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import levanter
import numpy as np

from common_jax.launch import parse_config

from ..baselines import trees
from ..baselines.neural import MlpPredictorConfig, StatNNPredictorConfig
from ..analysis.plots import plot_predictions
from ..metrics import regression_metrics
from ..zoo.config import ZooConfig
from . import generate_zoo, train
from .train import TrainPredictorConfig, load_splits, tau_by_threshold

logger = logging.getLogger(__name__)
CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "nfn"
NEURAL = ("transformer_nfn", "mlp", "statnn")


@dataclass
class ReproduceConfig:
    out: str = "reports/nfn"
    quick: bool = False  # a few models and epochs: checks the pipeline, not the numbers
    zoo_config: str = str(CONFIGS / "tiny_mnist.yaml")
    predictor_config: str = str(CONFIGS / "nfn_tiny.yaml")


def _zoo_config(path: str, out: Path, quick: bool) -> ZooConfig:
    overrides = ["--output_dir", str(out / ("zoo_quick" if quick else "zoo"))]
    if quick:
        overrides += ["--max_models", "48", "--chunk_size", "16", "--epochs", "4", "--warmup_epochs", "1",
                      "--checkpoint_epochs", "[3, 4]", "--data.max_train", "1000", "--data.max_test", "500"]
    return parse_config(ZooConfig, path, overrides)


def _predictor_config(path: str, out: Path, method: str, ckpt_epoch: str, quick: bool) -> TrainPredictorConfig:
    overrides = ["--zoo_path", str(out / ("zoo_quick" if quick else "zoo")), "--ckpt_epoch", ckpt_epoch,
                 "--trainer.id", f"{method}_quick" if quick else method,
                 "--trainer.log_dir", str(out / "runs"), "--trainer.checkpointer.base_path", str(out / "checkpoints")]
    if quick:
        overrides += ["--epochs", "2", "--warmup_epochs", "1"]
    config = parse_config(TrainPredictorConfig, path, overrides)
    if method != "transformer_nfn":
        cls = {"mlp": MlpPredictorConfig, "statnn": StatNNPredictorConfig}[method]
        model = cls(weight_space=config.model.weight_space, classifier_features=config.model.classifier_features,
                    embedding_features=config.model.embedding_features)
        config = dataclasses.replace(config, model=model)
    return config


def _checkpoint_at_75_percent(zoo: ZooConfig) -> str:
    target = 0.75 * zoo.epochs
    return str(min(zoo.checkpoint_epochs, key=lambda e: abs(e - target)))


def run_demo(job_dir: Path, quick: bool) -> dict:
    """The README demo job: writes results.json, report.md and the scatter plot in ``job_dir``."""
    job_dir = Path(job_dir).absolute()
    job_dir.mkdir(parents=True, exist_ok=True)
    config = ReproduceConfig(out=str(job_dir), quick=quick)
    results = main(config)
    return {"zoo_size": results["zoo_size"], **{f"tau_{m}": round(t, 3) for m, t in results["kendall_tau"].items()},
            "winner": results["winner"], "figures": [str((job_dir / "predictions.png").relative_to(job_dir.parent))]}


def main(config: ReproduceConfig) -> dict:
    out = Path(config.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    zoo = _zoo_config(config.zoo_config, out, config.quick)
    zoo_info = generate_zoo.main(zoo)
    zoo_seconds = time.time() - start
    ckpt_epoch = _checkpoint_at_75_percent(zoo)

    per_method: dict[str, dict] = {}
    for method in NEURAL:
        t0 = time.time()
        r = train.main(_predictor_config(config.predictor_config, out, method, ckpt_epoch, config.quick))
        per_method[method] = {"tau": r["final"]["tau"], "tau_best_val": r["best_val"]["tau"], "r2": r["final"]["r2"],
                              "tau_by_threshold": r["tau_by_threshold"], "predictions": r["predictions"],
                              "targets": r["targets"], "seconds": round(time.time() - t0, 1),
                              "parameter_count": r["parameter_count"], "split_sizes": r["split_sizes"]}
    ok, reason = trees.available()
    if ok:
        _, splits = load_splits(_predictor_config(config.predictor_config, out, "transformer_nfn", ckpt_epoch, config.quick))
        for method in trees.TREE_METHODS:
            t0 = time.time()
            pred = trees.fit_predict(method, splits)
            target = splits["test"].accuracy
            m = regression_metrics(pred["test"], target)
            per_method[method] = {"tau": m["tau"], "tau_best_val": m["tau"], "r2": m["r2"],
                                  "tau_by_threshold": tau_by_threshold(np.asarray(pred["test"]), target),
                                  "predictions": np.asarray(pred["test"]).tolist(), "targets": target.tolist(),
                                  "seconds": round(time.time() - t0, 1)}
    else:
        logger.warning(reason)

    taus = {m: r["tau"] for m, r in per_method.items()}
    winner = max(taus, key=lambda m: -np.inf if np.isnan(taus[m]) else taus[m])
    results = {"zoo_size": zoo_info["num_runs"], "ckpt_epoch": ckpt_epoch, "quick": config.quick,
               "split_sizes": per_method["transformer_nfn"]["split_sizes"], "kendall_tau": taus,
               "kendall_tau_best_val": {m: r["tau_best_val"] for m, r in per_method.items()},
               "kendall_tau_by_threshold": {m: r["tau_by_threshold"] for m, r in per_method.items()},
               "r2": {m: r["r2"] for m, r in per_method.items()},
               "seconds": {"zoo": round(zoo_seconds, 1), **{m: r["seconds"] for m, r in per_method.items()}},
               "winner": winner, "tree_baselines": "ran" if ok else reason}
    (out / "results.json").write_text(json.dumps(_finite_or_none(results), indent=2))
    plot_predictions({m: per_method[m] for m in per_method}, out / "predictions.png",
                     f"{zoo_info['num_runs']}-model mnist10k zoo, epoch {ckpt_epoch} checkpoints: test split")
    _report(out, results)
    return results


def _finite_or_none(x):
    """NaN (τ-b undefined: constant predictions or fewer than 3 models) -> null, so results.json is strict JSON."""
    if isinstance(x, dict):
        return {k: _finite_or_none(v) for k, v in x.items()}
    return None if isinstance(x, float) and np.isnan(x) else x


def _report(out: Path, results: dict) -> None:
    thresholds = list(next(iter(results["kendall_tau_by_threshold"].values())))
    lines = ["# Transformer-NFN: accuracy prediction on a small mnist10k zoo", "",
             f"Zoo: {results['zoo_size']} models (configs/nfn/tiny_mnist.yaml{', quick mode' if results['quick'] else ''}); "
             f"data: checkpoints at epoch {results['ckpt_epoch']}; split {results['split_sizes']}.", "",
             "| method | τ-b (final) | τ-b (best val) | R² | " + " | ".join(f"τ-b acc ≥ {t}%" for t in thresholds) + " |",
             "|---|---|---|---|" + "---|" * len(thresholds)]
    for m, tau in results["kendall_tau"].items():
        by = results["kendall_tau_by_threshold"][m]
        lines.append(f"| {m} | {tau:.3f} | {results['kendall_tau_best_val'][m]:.3f} | {results['r2'][m]:.3f} | "
                     + " | ".join(f"{by[t]:.3f}" for t in thresholds) + " |")
    lines += ["", f"Best at this size: **{results['winner']}** (one split, one seed). nfn.md §12 expects strong "
              "baselines on small shared-init zoos: the equivariant model's edge needs thousands of training models.",
              "", "![predictions](predictions.png)", ""]
    (out / "report.md").write_text("\n".join(lines))


if __name__ == "__main__":
    levanter.config.main(main)()
