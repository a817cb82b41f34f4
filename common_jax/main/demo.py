"""The project demo: every package's tiny reproduction on embedded data, collected in one report folder.

    python -m common_jax.main.demo --out reports/demo        (or: bash scripts/demo.sh)

Writes ``<out>/report.md`` (results table and figures), ``<out>/summary.json``, and each job's run folder
(``runs/<job>/metrics.jsonl``) and checkpoints. A re-run replaces the folder's previous results.
"""

import importlib
import json
import logging
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import levanter

from ..launch import parse_config
from ..plotting import metric_series, plot_training_curves
from . import train_classifier, train_lm

logger = logging.getLogger(__name__)
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@dataclass
class DemoConfig:
    out: str = "reports/demo"
    quick: bool = False  # a few steps per job: checks the pipeline, not the numbers


@dataclass(frozen=True)
class DemoJob:
    name: str
    description: str
    run: Callable[[Path, bool], dict]  # (job folder, quick) -> results, with "figures": [png names]


def _launch(main_module, config_cls, yaml: str, job_dir: Path, quick_steps: int | None):
    overrides = ["--trainer.id", job_dir.name, "--trainer.log_dir", str(job_dir.parent / "runs"),
                 "--trainer.checkpointer.base_path", str(job_dir.parent / "checkpoints")]
    if quick_steps is not None:
        overrides += ["--trainer.num_train_steps", str(quick_steps), "--trainer.steps_per_eval", str(quick_steps)]
    config = parse_config(config_cls, CONFIGS / yaml, overrides)
    start = time.time()
    result = main_module.main(config)
    metrics = job_dir.parent / "runs" / job_dir.name / "metrics.jsonl"
    _, rates = metric_series(metrics, "throughput/examples_per_second")
    steady = rates[len(rates) // 10 :] or rates  # skip the compile-dominated first steps
    result.update(wall_seconds=round(time.time() - start, 1),
                  examples_per_second=round(statistics.median(steady), 1) if steady else None)
    return config, result, metrics


def run_vit_mnist(job_dir: Path, quick: bool) -> dict:
    config, result, metrics = _launch(train_classifier, train_classifier.TrainClassifierConfig,
                                      "common/vit_mnist_tiny.yaml", job_dir, 20 if quick else None)
    plot_training_curves(metrics, {"loss": ["train/loss", "eval/test/cross_entropy"],
                                   "accuracy": ["train/accuracy", "eval/test/accuracy"]},
                         job_dir.parent / f"{job_dir.name}.png", "ViT on mnist10k (8k train / 2k test)")
    result["batch_size"] = config.trainer.train_batch_size
    result["figures"] = [f"{job_dir.name}.png"]
    return result


def run_gpt2_enwiki(job_dir: Path, quick: bool) -> dict:
    config, result, metrics = _launch(train_lm, train_lm.TrainLmConfig, "common/gpt2_enwiki_tiny.yaml", job_dir,
                                      10 if quick else None)
    plot_training_curves(metrics, {"loss (nats/token)": ["train/loss", "eval/loss"], "bits per byte": ["eval/bpb"]},
                         job_dir.parent / f"{job_dir.name}.png", "levanter GPT-2 on enwiki106 (GPT-2 BPE)")
    result["batch_size"] = config.trainer.train_batch_size
    result["figures"] = [f"{job_dir.name}.png"]
    return result


def _paper_job(module: str) -> Callable[[Path, bool], dict]:
    """A paper package's ``<module>.run_demo``, imported when the job runs."""

    def run(job_dir: Path, quick: bool) -> dict:
        return importlib.import_module(module).run_demo(job_dir, quick)

    return run


JOBS = [
    DemoJob("vit_mnist", "common_jax ViT on mnist10k: test accuracy", run_vit_mnist),
    DemoJob("gpt2_enwiki", "levanter GPT-2 on enwiki106: validation loss and bits per byte", run_gpt2_enwiki),
    DemoJob("crate_mnist", "crate_jax: tiny CRATE vs a matching ViT on mnist10k: test accuracy, layer-wise coding "
            "rate and sparsity (init vs trained)", _paper_job("crate_jax.main.reproduce")),
    DemoJob("fusion_mnist", "fusion_jax: OT fusion of two mnist10k ViTs (one-shot and fine-tuned accuracy vs "
            "vanilla averaging)", _paper_job("fusion_jax.main.reproduce")),
    DemoJob("equitune", "equitune_jax: two-view mnist10k (design 1 vs product equitune, clean/transformed "
            "accuracy) and SCAN-mini (equitune vs multi-equitune exact match, fine-tune time)",
            _paper_job("equitune_jax.main.reproduce")),
    DemoJob("qkvflow", "qkvflow_jax: DiffEqFormer on enwiki106 bytes: four arms' validation bits per byte, zero-shot "
            "depth change, full/LoRA fine-tuning, spectra/Lyapunov/clustering plots",
            _paper_job("qkvflow_jax.main.reproduce")),
    DemoJob("nfn", "nfn_jax: Transformer-NFN vs MLP/STATNN/XGBoost/LightGBM/RF: Kendall tau-b of predicted test "
            "accuracy on a 256-model mnist10k zoo", _paper_job("nfn_jax.main.reproduce")),
]


def _report(out: Path, results: dict[str, dict]) -> Path:
    lines = ["# Demo report", "", "Each job ran on embedded data; numbers are measured, not copied.", ""]
    for job in JOBS:
        result = results[job.name]
        lines += [f"## {job.name}", "", job.description, "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in result.items() if k != "figures"]
        lines += [""] + [f"![{png}]({png})" for png in result.get("figures", [])] + [""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path


def main(config: DemoConfig) -> dict[str, dict]:
    out = Path(config.out).absolute()
    for stale in ("runs", "checkpoints"):
        shutil.rmtree(out / stale, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for job in JOBS:
        logger.info("demo job %s: %s", job.name, job.description)
        results[job.name] = job.run(out / job.name, config.quick)
        (out / "summary.json").write_text(json.dumps(results, indent=2))
    report = _report(out, results)
    print(f"\nDemo report: {report}\n(results in {out / 'summary.json'})", flush=True)
    return results


if __name__ == "__main__":
    levanter.config.main(main)()
