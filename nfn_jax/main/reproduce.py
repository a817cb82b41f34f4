"""Small CPU reproduction: a zoo on mnist10k, then every predictor; results.json, report.md, scatter plot.

    python -m nfn_jax.main.reproduce --out reports/nfn [--quick true]

Zoo: ``configs/nfn/tiny_mnist.yaml`` (256 runs, 8x8 digits); data = the checkpoints at 75 % of training. Predictors
on the same seeded 70/15/15 split: Transformer-NFN (``configs/nfn/nfn_tiny.yaml``), flattened-weight MLP, STATNN
(all on levanter's Trainer, same BCE and schedule) and XGBoost, LightGBM, Random Forest (when installed).
Metric: Kendall τ-b on the test split (final epoch; the best-val-τ epoch too), overall and at thresholds 0-80 %,
averaged over ``split_seeds`` (nfn.md §12: seed spread ±0.02-0.06, use at least 3), with the per-seed values.
"""

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common_jax.launch import parse_config, run_main

from ..analysis.plots import plot_predictions
from ..baselines import trees
from ..baselines.neural import MlpPredictorConfig, StatNNPredictorConfig
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
    split_seeds: list[int] = dataclasses.field(default_factory=lambda: [0, 1, 2])  # one 70/15/15 split each


def _zoo_config(path: str, out: Path, quick: bool) -> ZooConfig:
    overrides = ["--output_dir", str(out / ("zoo_quick" if quick else "zoo"))]
    if quick:
        overrides += ["--max_models", "48", "--chunk_size", "16", "--epochs", "4", "--warmup_epochs", "1",
                      "--checkpoint_epochs", "[3, 4]", "--data.max_train", "1000", "--data.max_test", "500"]
    return parse_config(ZooConfig, path, overrides)


def _predictor_config(path: str, out: Path, method: str, ckpt_epoch: str, quick: bool,
                      split_seed: int) -> TrainPredictorConfig:
    run_id = f"{method}_split{split_seed}" + ("_quick" if quick else "")
    overrides = ["--zoo_path", str(out / ("zoo_quick" if quick else "zoo")), "--ckpt_epoch", ckpt_epoch,
                 "--split_seed", str(split_seed), "--trainer.id", run_id,
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

    if not config.split_seeds:
        raise ValueError("split_seeds must name at least one split seed")
    runs = [_predictors(config, out, ckpt_epoch, seed) for seed in config.split_seeds]
    per_method = runs[0]
    methods = list(per_method)

    def mean(key: str) -> dict[str, float]:
        return {m: _nanmean([r[m][key] for r in runs]) for m in methods}

    taus = mean("tau")
    thresholds = list(per_method["transformer_nfn"]["tau_by_threshold"])
    winner = max(taus, key=lambda m: -np.inf if np.isnan(taus[m]) else taus[m])
    ok, reason = trees.available()
    results = {"zoo_size": zoo_info["num_runs"], "ckpt_epoch": ckpt_epoch, "quick": config.quick,
               "split_seeds": list(config.split_seeds), "split_sizes": per_method["transformer_nfn"]["split_sizes"],
               "kendall_tau": taus,
               "kendall_tau_std": {m: float(np.nanstd([r[m]["tau"] for r in runs])) for m in methods},
               "kendall_tau_per_seed": {m: [r[m]["tau"] for r in runs] for m in methods},
               "kendall_tau_best_val": mean("tau_best_val"),
               "kendall_tau_by_threshold": {m: {t: _nanmean([r[m]["tau_by_threshold"][t] for r in runs])
                                                for t in thresholds} for m in methods},
               "r2": mean("r2"),
               "seconds": {"zoo": round(zoo_seconds, 1), **{m: round(sum(r[m]["seconds"] for r in runs), 1)
                                                             for m in methods}},
               "winner": winner, "tree_baselines": "ran" if ok else reason}
    (out / "results.json").write_text(json.dumps(_finite_or_none(results), indent=2))
    plot_predictions({m: per_method[m] for m in per_method}, out / "predictions.png",
                     f"{zoo_info['num_runs']}-model mnist10k zoo, epoch {ckpt_epoch} checkpoints: test split")
    _report(out, results)
    return results


def _predictors(config: ReproduceConfig, out: Path, ckpt_epoch: str, split_seed: int) -> dict[str, dict]:
    """Every predictor trained and scored on the split drawn with ``split_seed``."""
    per_method: dict[str, dict] = {}
    for method in NEURAL:
        t0 = time.time()
        r = train.main(_predictor_config(config.predictor_config, out, method, ckpt_epoch, config.quick, split_seed))
        per_method[method] = {"tau": r["final"]["tau"], "tau_best_val": r["best_val"]["tau"], "r2": r["final"]["r2"],
                              "tau_by_threshold": r["tau_by_threshold"], "predictions": r["predictions"],
                              "targets": r["targets"], "seconds": round(time.time() - t0, 1),
                              "parameter_count": r["parameter_count"], "split_sizes": r["split_sizes"]}
    ok, reason = trees.available()
    if not ok:
        logger.warning(reason)
        return per_method
    _, splits = load_splits(_predictor_config(config.predictor_config, out, "transformer_nfn", ckpt_epoch,
                                              config.quick, split_seed))
    for method in trees.TREE_METHODS:
        t0 = time.time()
        pred = trees.fit_predict(method, splits)
        target = splits["test"].accuracy
        m = regression_metrics(pred["test"], target)
        per_method[method] = {"tau": m["tau"], "tau_best_val": m["tau"], "r2": m["r2"],
                              "tau_by_threshold": tau_by_threshold(np.asarray(pred["test"]), target),
                              "predictions": np.asarray(pred["test"]).tolist(), "targets": target.tolist(),
                              "seconds": round(time.time() - t0, 1)}
    return per_method


def _nanmean(values) -> float:
    """Mean over the seeds where the value is defined (NaN where it never is)."""
    finite = [v for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _finite_or_none(x):
    """NaN (τ-b undefined: constant predictions or fewer than 3 models) -> null, so results.json is strict JSON."""
    if isinstance(x, dict):
        return {k: _finite_or_none(v) for k, v in x.items()}
    return None if isinstance(x, float) and np.isnan(x) else x


def _report(out: Path, results: dict) -> None:
    thresholds = list(next(iter(results["kendall_tau_by_threshold"].values())))
    lines = ["# Transformer-NFN: accuracy prediction on a small mnist10k zoo", "",
             f"Zoo: {results['zoo_size']} models (configs/nfn/tiny_mnist.yaml{', quick mode' if results['quick'] else ''}); "
             f"data: checkpoints at epoch {results['ckpt_epoch']}; split {results['split_sizes']}, seeds "
             f"{results['split_seeds']} (means over the seeds; the thresholded τ-b are the test models above each "
             "accuracy threshold).", "",
             "| method | τ-b (final) | ± std | per seed | τ-b (best val) | R² | "
             + " | ".join(f"τ-b acc ≥ {t}%" for t in thresholds) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(thresholds)]
    for m, tau in results["kendall_tau"].items():
        by = results["kendall_tau_by_threshold"][m]
        seeds = ", ".join(f"{t:.3f}" for t in results["kendall_tau_per_seed"][m])
        lines.append(f"| {m} | {tau:.3f} | {results['kendall_tau_std'][m]:.3f} | {seeds} | "
                     f"{results['kendall_tau_best_val'][m]:.3f} | {results['r2'][m]:.3f} | "
                     + " | ".join(f"{by[t]:.3f}" for t in thresholds) + " |")
    lines += ["", f"Best mean τ-b at this size: **{results['winner']}**. nfn.md §12 expects strong "
              "baselines on small shared-init zoos: the equivariant model's edge needs thousands of training models.",
              "", "![predictions](predictions.png)", ""]
    (out / "report.md").write_text("\n".join(lines))


if __name__ == "__main__":
    run_main(main)
