"""Small CPU reproduction: a zoo on mnist10k, then the reference's predictors; results.json, report.md, scatter plot.

    python -m nfn_jax.main.reproduce [--preset smoke|demo|full] [--out reports/nfn]

Zoo: ``configs/nfn/tiny_mnist.yaml`` (8x8 digits); data = the checkpoints at 75 % of training. Predictors, all on
levanter's Trainer with the reference's selection (accuracy >= 0.1), split, BCE and schedule
(``configs/nfn/nfn_tiny.yaml``): the Transformer-NFN and the reference's baselines ``mlp`` and ``statnn``; at
``full`` also the port's earlier wider baselines (``mlp_wide``, ``statnn_wide``) and XGBoost, LightGBM, Random
Forest (when installed). Metric: Kendall τ-b on the test split (final epoch; the best-val-τ epoch too), overall and
at thresholds 0-80 %, averaged over the seeds (each seed draws the split and the predictor's initialisation, as the
reference's one ``--seed``), with the per-seed values.

Presets (``common_jax.presets``):

- ``smoke``: 96 Adam-trained models, 3 epochs on 1,024 digits, predictors 2 epochs, one seed: checks the
  pipeline (the test suite runs it); its numbers mean nothing.
- ``demo``: 128 models (an Adam and an SGD-momentum grid of 64, so every chunk of 32 is full) trained 8 epochs on
  2,000 digits at batch 64 (250 steps: test accuracies spread from 13 % to 67 %), epoch-6 checkpoints; the NFN
  against the two reference baselines for 40 epochs, one seed; about 100 s on 2 CPU cores, zoo included.
- ``full``: the 256-model zoo of ``tiny_mnist.yaml`` (20 epochs), every predictor for 30 epochs, seeds 3, 4, 5.
"""

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common_jax.launch import parse_config, run_main
from common_jax.presets import DEFAULT_PRESET, check_preset

from ..analysis.plots import plot_predictions
from ..baselines import trees
from ..metrics import regression_metrics
from ..predictor import PredictorConfig
from ..zoo.config import ZooConfig
from . import generate_zoo, train
from .train import TrainPredictorConfig, load_splits, tau_by_threshold

logger = logging.getLogger(__name__)
CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "nfn"
REFERENCE_METHODS = ("transformer_nfn", "mlp", "statnn")
LABELS = {"transformer_nfn": "Transformer-NFN", "mlp": "MLP", "statnn": "STATNN", "mlp_wide": "MLP (wide)",
          "statnn_wide": "STATNN (wide)", "xgboost": "XGBoost", "lightgbm": "LightGBM", "random_forest": "Random Forest"}


@dataclass(frozen=True)
class PresetPlan:
    zoo_overrides: tuple[str, ...]  # dotted overrides of the zoo YAML
    predictor_overrides: tuple[str, ...]  # of the predictor YAML
    seeds: tuple[int, ...]
    methods: tuple[str, ...]  # neural predictors (model.type)
    trees: bool  # also XGBoost, LightGBM, Random Forest when installed


PLANS = {
    "smoke": PresetPlan(("--max_models", "96", "--chunk_size", "48", "--epochs", "3", "--warmup_epochs", "1",
                         "--checkpoint_epochs", "[2, 3]", "--data.max_train", "1024", "--data.max_test", "500",
                         "--batch_size", "64", "--sweeps", "[{optimizers: [adam], learning_rates: [1e-4, 3e-4, 1e-3, "
                         "3e-3, 1e-2, 3e-2, 1e-1, 3e-1], init_stds: [0.05, 0.2, 0.5], weight_decays: [1e-8, 1e-2], "
                         "train_fractions: [1.0], dropouts: [0.0, 0.2]}]"),
                        ("--epochs", "2", "--warmup_epochs", "1"), (3,), REFERENCE_METHODS, False),
    # two grids of 64 (Adam, SGD-momentum; one train fraction each): 4 full chunks of 32, no padded models
    "demo": PresetPlan(("--max_models", "null", "--chunk_size", "32", "--epochs", "8", "--warmup_epochs", "1",
                        "--checkpoint_epochs", "[4, 6, 8]", "--data.max_train", "2000", "--data.max_test", "1000",
                        "--batch_size", "64",
                        "--sweeps", "[{optimizers: [adam], learning_rates: [1e-3, 3e-3, 1e-2, 3e-2], init_stds: [0.05, "
                        "0.2, 0.35, 0.5], weight_decays: [1e-8, 1e-2], train_fractions: [1.0], dropouts: [0.0, 0.2]}, "
                        "{optimizers: [momentum], learning_rates: [3e-3, 1e-2, 3e-2, 1e-1], init_stds: [0.05, 0.2, "
                        "0.35, 0.5], weight_decays: [1e-8, 1e-2], train_fractions: [1.0], dropouts: [0.0, 0.2]}]"),
                       ("--epochs", "40", "--warmup_epochs", "3"), (3,), REFERENCE_METHODS, False),
    "full": PresetPlan((), (), (3, 4, 5), (*REFERENCE_METHODS, "mlp_wide", "statnn_wide"), True),
}


@dataclass
class ReproduceConfig:
    out: str = "reports/nfn"
    preset: str = DEFAULT_PRESET  # smoke | demo | full (module docstring)
    zoo_config: str = str(CONFIGS / "tiny_mnist.yaml")
    predictor_config: str = str(CONFIGS / "nfn_tiny.yaml")
    seeds: list[int] | None = None  # split + predictor seeds; None = the preset's

    def __post_init__(self):
        check_preset(self.preset)
        if self.seeds is not None and not self.seeds:
            raise ValueError("seeds must name at least one seed (or be null for the preset's)")

    @property
    def plan(self) -> PresetPlan:
        plan = PLANS[self.preset]
        return plan if self.seeds is None else dataclasses.replace(plan, seeds=tuple(self.seeds))


def _zoo_dir(out: Path, preset: str) -> Path:
    return out / ("zoo" if preset == "full" else f"zoo_{preset}")


def _zoo_config(config: ReproduceConfig, out: Path) -> ZooConfig:
    overrides = ["--output_dir", str(_zoo_dir(out, config.preset)), *config.plan.zoo_overrides]
    return parse_config(ZooConfig, config.zoo_config, overrides)


def _predictor_config(config: ReproduceConfig, out: Path, method: str, ckpt_epoch: str, seed: int) -> TrainPredictorConfig:
    """The predictor YAML at this preset and seed; a baseline gets its own defaults with the YAML's zoo sizes."""
    overrides = ["--zoo_path", str(_zoo_dir(out, config.preset)), "--ckpt_epoch", ckpt_epoch, "--split_seed", str(seed),
                 "--trainer.seed", str(seed), "--trainer.id", f"{method}_seed{seed}_{config.preset}",
                 "--trainer.log_dir", str(out / "runs"), "--trainer.checkpointer.base_path", str(out / "checkpoints"),
                 *config.plan.predictor_overrides]
    parsed = parse_config(TrainPredictorConfig, config.predictor_config, overrides)
    if type(parsed.model) is PredictorConfig.get_choice_class(method):
        return parsed
    yaml_model = parsed.model
    model = PredictorConfig.get_choice_class(method)(
        weight_space=yaml_model.weight_space, classifier_hidden=yaml_model.classifier_hidden,
        num_classes=yaml_model.num_classes, embedding_features=yaml_model.embedding_features)
    return dataclasses.replace(parsed, model=model)


def _checkpoint_at_75_percent(zoo: ZooConfig) -> str:
    target = 0.75 * zoo.epochs
    return str(min(zoo.checkpoint_epochs, key=lambda e: abs(e - target)))


def run_demo(job_dir: Path, preset: str = DEFAULT_PRESET) -> dict:
    """The project demo's job: writes results.json, report.md and predictions.png in ``job_dir``; headline numbers
    with ``summary`` and ``figures`` (relative to ``job_dir.parent``)."""
    check_preset(preset)
    job_dir = Path(job_dir).absolute()
    job_dir.mkdir(parents=True, exist_ok=True)
    results = main(ReproduceConfig(out=str(job_dir), preset=preset))
    taus = results["kendall_tau"]
    seeds = len(results["seeds"])
    summary = (", ".join(f"{LABELS[m]} {taus[m]:.2f}" for m in REFERENCE_METHODS)
               + f" test Kendall τ-b ({results['zoo_size']}-model mnist10k zoo, {results['split_sizes']['test']} test "
               + f"models, {seeds} seed{'s' if seeds > 1 else ''})")
    return {"summary": summary, "figures": [str((job_dir / "predictions.png").relative_to(job_dir.parent))],
            "zoo_size": results["zoo_size"], **{f"tau_{m}": round(t, 3) for m, t in taus.items()},
            "winner": results["winner"]}


def main(config: ReproduceConfig) -> dict:
    out = Path(config.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    plan = config.plan
    start = time.time()
    zoo = _zoo_config(config, out)
    zoo_info = generate_zoo.main(zoo)
    zoo_seconds = time.time() - start
    ckpt_epoch = _checkpoint_at_75_percent(zoo)

    runs = [_predictors(config, out, ckpt_epoch, seed) for seed in plan.seeds]
    first = runs[0]
    methods = list(first)

    def mean(key: str) -> dict[str, float]:
        return {m: _nanmean([r[m][key] for r in runs]) for m in methods}

    taus = mean("tau")
    thresholds = list(first["transformer_nfn"]["tau_by_threshold"])
    winner = max(taus, key=lambda m: -np.inf if np.isnan(taus[m]) else taus[m])
    ok, reason = trees.available()
    results = {"zoo_size": zoo_info["num_runs"], "ckpt_epoch": ckpt_epoch, "preset": config.preset,
               "seeds": list(plan.seeds), "split_sizes": first["transformer_nfn"]["split_sizes"],
               "kendall_tau": taus,
               "kendall_tau_std": {m: float(np.nanstd([r[m]["tau"] for r in runs])) for m in methods},
               "kendall_tau_per_seed": {m: [r[m]["tau"] for r in runs] for m in methods},
               "kendall_tau_best_val": mean("tau_best_val"),
               "kendall_tau_by_threshold": {m: {t: _nanmean([r[m]["tau_by_threshold"][t] for r in runs])
                                                for t in thresholds} for m in methods},
               "r2": mean("r2"),
               "parameter_count": {m: first[m]["parameter_count"] for m in methods if "parameter_count" in first[m]},
               "seconds": {"zoo": round(zoo_seconds, 1), **{m: round(sum(r[m]["seconds"] for r in runs), 1)
                                                             for m in methods}},
               "winner": winner, "tree_baselines": ("ran" if ok else reason) if plan.trees else "not in this preset"}
    (out / "results.json").write_text(json.dumps(_finite_or_none(results), indent=2))
    plot_predictions({LABELS[m]: first[m] for m in first}, out / "predictions.png",
                     f"{zoo_info['num_runs']}-model mnist10k zoo, epoch {ckpt_epoch} checkpoints: test split, "
                     f"seed {plan.seeds[0]}")
    _report(out, results)
    return results


def _predictors(config: ReproduceConfig, out: Path, ckpt_epoch: str, seed: int) -> dict[str, dict]:
    """Every predictor of the preset trained and scored on the split (and initialisation) drawn with ``seed``."""
    per_method: dict[str, dict] = {}
    for method in config.plan.methods:
        t0 = time.time()
        r = train.main(_predictor_config(config, out, method, ckpt_epoch, seed))
        per_method[method] = {"tau": r["final"]["tau"], "tau_best_val": r["best_val"]["tau"], "r2": r["final"]["r2"],
                              "tau_by_threshold": r["tau_by_threshold"], "predictions": r["predictions"],
                              "targets": r["targets"], "seconds": round(time.time() - t0, 1),
                              "parameter_count": r["parameter_count"], "split_sizes": r["split_sizes"]}
    ok, reason = trees.available()
    if not config.plan.trees:
        return per_method
    if not ok:
        logger.warning(reason)
        return per_method
    _, splits = load_splits(_predictor_config(config, out, "transformer_nfn", ckpt_epoch, seed))
    for method in trees.TREE_METHODS:
        t0 = time.time()
        pred = trees.fit_predict(method, splits, seed=seed)
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
             f"Zoo: {results['zoo_size']} models (configs/nfn/tiny_mnist.yaml, preset {results['preset']}); data: "
             f"checkpoints at epoch {results['ckpt_epoch']} with test accuracy >= 0.1 (the reference's cut_off); split "
             f"{results['split_sizes']}, seeds {results['seeds']} (means over the seeds; the thresholded τ-b are the "
             "test models above each accuracy threshold).", "",
             "| method | τ-b (final) | ± std | per seed | τ-b (best val) | R² | "
             + " | ".join(f"τ-b acc ≥ {t}%" for t in thresholds) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(thresholds)]
    for m, tau in results["kendall_tau"].items():
        by = results["kendall_tau_by_threshold"][m]
        seeds = ", ".join(f"{t:.3f}" for t in results["kendall_tau_per_seed"][m])
        lines.append(f"| {LABELS[m]} | {tau:.3f} | {results['kendall_tau_std'][m]:.3f} | {seeds} | "
                     f"{results['kendall_tau_best_val'][m]:.3f} | {results['r2'][m]:.3f} | "
                     + " | ".join(f"{by[t]:.3f}" for t in thresholds) + " |")
    lines += ["", f"Best mean τ-b at this size: **{LABELS[results['winner']]}**. nfn.md §12 expects strong "
              "baselines on small shared-init zoos: the equivariant model's edge needs thousands of training models.",
              "", "![predictions](predictions.png)", ""]
    (out / "report.md").write_text("\n".join(lines))


if __name__ == "__main__":
    run_main(main)
