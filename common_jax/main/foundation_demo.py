"""The two foundation jobs as one demo job: the ``common_jax`` ViT on mnist10k and levanter's GPT-2 on enwiki106.

    python -m common_jax.main.foundation_demo --out reports/foundation [--preset smoke|demo|full]

``run_demo(job_dir, preset)`` follows the contract of every package's reproduction (``common_jax.presets``): it
writes each run's folder (``runs/<job>/metrics.jsonl``), checkpoints and a training-curve PNG under ``job_dir`` and
returns headline numbers with ``summary`` and ``figures``. ``full`` trains the configs' step counts, ``demo`` a
fifth of them, ``smoke`` a few steps.
"""

import json
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from ..launch import parse_config, run_main
from ..plotting import metric_series, plot_training_curves
from ..presets import DEFAULT_PRESET, check_preset
from . import train_classifier, train_lm

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "common"
SMOKE_STEPS = 10


@dataclass
class FoundationDemoConfig:
    out: str = "reports/foundation"
    preset: str = DEFAULT_PRESET  # smoke | demo | full (common_jax.presets)

    def __post_init__(self):
        check_preset(self.preset)


def _launch(main_module, config_cls, yaml: str, run_id: str, job_dir: Path, preset: str):
    overrides = ["--trainer.id", run_id, "--trainer.log_dir", str(job_dir / "runs"),
                 "--trainer.checkpointer.base_path", str(job_dir / "checkpoints")]
    config = parse_config(config_cls, CONFIGS / yaml, overrides)
    full_steps = config.trainer.num_train_steps
    steps = {"smoke": SMOKE_STEPS, "demo": max(SMOKE_STEPS, full_steps // 5), "full": full_steps}[preset]
    if steps != full_steps:
        config = parse_config(config_cls, CONFIGS / yaml, overrides + [
            "--trainer.num_train_steps", str(steps), "--trainer.steps_per_eval", str(steps)])
    start = time.time()
    result = main_module.main(config)
    metrics = job_dir / "runs" / run_id / "metrics.jsonl"
    _, rates = metric_series(metrics, "throughput/examples_per_second")
    steady = rates[len(rates) // 10 :] or rates  # skip the compile-dominated first steps
    result.update(wall_seconds=round(time.time() - start, 1), steps=steps,
                  batch_size=config.trainer.train_batch_size,
                  examples_per_second=round(statistics.median(steady), 1) if steady else None)
    return result, metrics


def run_demo(job_dir: Path, preset: str = DEFAULT_PRESET) -> dict:
    check_preset(preset)
    job_dir = Path(job_dir).absolute()
    for stale in ("runs", "checkpoints"):  # a re-run trains afresh instead of resuming the previous run
        shutil.rmtree(job_dir / stale, ignore_errors=True)
    job_dir.mkdir(parents=True, exist_ok=True)
    vit, vit_metrics = _launch(train_classifier, train_classifier.TrainClassifierConfig, "vit_mnist_tiny.yaml",
                               "vit_mnist", job_dir, preset)
    plot_training_curves(vit_metrics, {"loss": ["train/loss", "eval/test/cross_entropy"],
                                       "accuracy": ["train/accuracy", "eval/test/accuracy"]},
                         job_dir / "vit_mnist.png", "ViT on mnist10k (8k train / 2k test)")
    gpt2, gpt2_metrics = _launch(train_lm, train_lm.TrainLmConfig, "gpt2_enwiki_tiny.yaml", "gpt2_enwiki", job_dir,
                                 preset)
    plot_training_curves(gpt2_metrics, {"loss (nats/token)": ["train/loss", "eval/loss"], "bits per byte": ["eval/bpb"]},
                         job_dir / "gpt2_enwiki.png", "levanter GPT-2 on enwiki106 (GPT-2 BPE)")
    results = {"vit_mnist": vit, "gpt2_enwiki": gpt2, "preset": preset}
    (job_dir / "results.json").write_text(json.dumps(results, indent=2))
    summary = (f"ViT {100 * vit['accuracy']:.2f} % test accuracy on mnist10k ({vit['steps']} steps); GPT-2 "
               f"{gpt2['bpb']:.3f} validation bits/byte on enwiki106 ({gpt2['steps']} steps)")
    return {"summary": summary, **results,
            "figures": [f"{job_dir.name}/vit_mnist.png", f"{job_dir.name}/gpt2_enwiki.png"]}


def main(config: FoundationDemoConfig) -> dict:
    headline = run_demo(Path(config.out), config.preset)
    print(json.dumps(headline, indent=2))
    return headline


if __name__ == "__main__":
    run_main(main)
