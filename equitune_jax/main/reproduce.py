"""The small CPU reproductions (spec §9): two-view digits (design 1 vs product equitune) and SCAN-mini (design 2).
These are CPU substitutes: their numbers are observed here and are not comparable with the paper's tables.

    python -m equitune_jax.main.reproduce --out DIR [--preset smoke|demo|full]

Presets (``common_jax.presets``):

- ``smoke``: a few steps of every stage (a pipeline check; its numbers mean nothing);
- ``demo``: two-view mnist10k (rot90 on view 1, hflip on view 2): the plain CNN, design 1 and product equitune of
  that CNN (zero-shot and fine-tuned), trained for real on fewer steps than ``multi_view.yaml``; clean vs transformed
  test accuracy, the share of predictions a group element leaves unchanged and the largest logit change (the equivariance
  error), encoder calls per example;
- ``full``: ``configs/equitune/multi_view.yaml`` as it is, and ``configs/equitune/scan.yaml`` over seeds 0, 1, 2 on the
  full SCAN-mini test sets (mean ± std).

Writes ``DIR/results.json``, ``DIR/report.md`` and ``DIR/equitune.png``. ``run_demo(job_dir, preset)`` returns
``summary`` (one line) and ``figures`` (relative to ``job_dir.parent``).
"""

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from common_jax.launch import parse_config, run_main
from common_jax.presets import DEFAULT_PRESET, check_preset

from ..config import MultiViewConfig, ScanConfig
from . import multi_view, scan

logger = logging.getLogger(__name__)
CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "equitune"
MULTI_VIEW = {
    "smoke": ["--train_tuples", "256", "--test_tuples", "128", "--trainer.num_train_steps", "4", "--finetune_steps",
              "0", "--models", "[cnn, design1, product_equitune]"],
    "demo": ["--train_tuples", "6000", "--test_tuples", "1000", "--trainer.num_train_steps", "800",
             "--finetune_steps", "150", "--models", "[cnn, design1, product_equitune]"],
    "full": [],
}
SCAN = {
    "smoke": ["--trainer.num_train_steps", "4", "--finetune_steps", "2", "--data.max_test_examples", "64",
              "--model.hidden", "16", "--model.embed_dim", "16"],
    "demo": None,  # not run: SCAN decoding does not fit the demo's time budget
    "full": [],
}
SCAN_SEEDS = {"smoke": (1,), "full": (0, 1, 2)}


@dataclass
class ReproduceConfig:
    out: str = "reports/equitune"
    preset: str = DEFAULT_PRESET  # smoke | demo | full (common_jax.presets)

    def __post_init__(self):
        check_preset(self.preset)


def _overrides(job_dir: Path, run_id: str) -> list[str]:
    return ["--trainer.id", run_id, "--trainer.log_dir", str(job_dir / "runs"),
            "--trainer.checkpointer.base_path", str(job_dir / "checkpoints")]


def scan_over_seeds(job_dir: Path, preset: str) -> dict:
    """SCAN (``scan.yaml`` with the preset's overrides) for every seed; per model and split the mean and std."""
    runs = []
    for seed in SCAN_SEEDS[preset]:
        config = parse_config(ScanConfig, CONFIGS / "scan.yaml",
                              _overrides(job_dir, f"scan-seed{seed}") + ["--trainer.seed", str(seed)] + SCAN[preset])
        runs.append(scan.main(config))
    accuracy = {}
    for model in runs[0]["accuracy"]:
        accuracy[model] = {}
        for split in runs[0]["accuracy"][model]:
            values = np.asarray([r["accuracy"][model][split] for r in runs])
            accuracy[model][split] = {"mean": float(values.mean()), "std": float(values.std()),
                                      "seeds": values.tolist()}
    seconds = {m: [r["finetune_seconds"][m] for r in runs] for m in runs[0]["finetune_seconds"]}
    return {"seeds": list(SCAN_SEEDS[preset]), "accuracy": accuracy, "finetune_seconds": seconds,
            "pretrain_seconds": [r["pretrain_seconds"] for r in runs], "forward_passes": runs[0]["forward_passes"],
            "dataset": runs[0]["dataset"]}


def _plot(results: dict, path: Path) -> None:
    has_scan = "scan" in results
    fig, axes = plt.subplots(1, 2 if has_scan else 1, figsize=(12 if has_scan else 6.5, 4), squeeze=False)
    left = axes[0, 0]
    mv = results["multi_view"]
    names = list(mv)
    xs = np.arange(len(names))
    left.bar(xs - 0.2, [mv[n]["clean"] for n in names], 0.4, label="clean")
    left.bar(xs + 0.2, [mv[n]["transformed"] for n in names], 0.4, label="transformed")
    left.set_xticks(xs, [f"{n.replace('_', ' ')}\n({mv[n]['encoder_calls']} encoder calls)" for n in names],
                    fontsize=7, rotation=15)
    left.set_ylabel("test accuracy")
    left.set_ylim(0, 1.15)
    left.set_title("two-view mnist10k: rot90 on view 1, hflip on view 2")
    left.legend(loc="upper left", ncols=2, fontsize=8)
    if has_scan:
        right = axes[0, 1]
        acc = results["scan"]["accuracy"]
        models, splits = list(acc), list(next(iter(acc.values())))
        width = 0.8 / len(splits)
        for k, split in enumerate(splits):
            right.bar(np.arange(len(models)) + k * width, [acc[m][split]["mean"] for m in models], width,
                      yerr=[acc[m][split]["std"] for m in models], label=split, capsize=2)
        right.set_xticks(np.arange(len(models)) + 0.4 - width / 2, [m.replace("_", " ") for m in models], fontsize=7,
                         rotation=15)
        right.set_ylabel("exact match (mean ± std over seeds)")
        right.set_ylim(0, 1.15)
        right.set_title(f"SCAN-mini turn_up_jump_turn_left, seeds {results['scan']['seeds']}")
        right.legend(loc="upper left", ncols=4, fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _report(results: dict, path: Path, preset: str) -> None:
    note = {"smoke": "Smoke preset: a few steps per stage, a pipeline check; the numbers mean nothing.",
            "demo": "Demo preset: small models trained for real on a subset; numbers measured by this run.",
            "full": "Full preset: the CPU reproduction plan of spec §9; numbers measured by this run."}[preset]
    lines = ["# equitune_jax reproduction", "", note,
             ("These are CPU substitutes of the paper's experiments (mnist10k digits, SCAN-mini): not comparable "
              "with the paper's tables."), "",
             "## Two-view mnist10k (design 1 vs product equitune)", "",
             ("Transformed: every view of the same test tuples moved by a random element of its group; agreement: the "
              "share of tuples whose predicted class the transform leaves unchanged; gap: max |logits(g·x) − "
              "logits(x)| over the test set (0 up to float error for an invariant model)."), "",
             "| model | clean | transformed | agreement | gap | encoder calls/example |", "|---|---|---|---|---|---|"]
    lines += [f"| {m} | {r['clean']:.4f} | {r['transformed']:.4f} | {r['agreement']:.4f} | {r['invariance_gap']:.2g} "
              f"| {r['encoder_calls']} |" for m, r in results["multi_view"].items()]
    if "scan" in results:
        sc = results["scan"]
        splits = list(next(iter(sc["accuracy"].values())))
        lines += ["", (f"## SCAN-mini turn_up_jump_turn_left, exact match, mean ± std over seeds {sc['seeds']} "
                       f"({sc['dataset']['decoded']} decoded test commands)"), "",
                  "| model | " + " | ".join(splits) + " |", "|---" * (len(splits) + 1) + "|"]
        lines += [f"| {m} | " + " | ".join(f"{a[s]['mean']:.3f} ± {a[s]['std']:.3f}" for s in splits) + " |"
                  for m, a in sc["accuracy"].items()]
        lines += ["", (f"Passes per example: {sc['forward_passes']}; fine-tuning seconds per seed: "
                       f"{sc['finetune_seconds']}")]
    lines += ["", "![results](equitune.png)", ""]
    path.write_text("\n".join(lines))


def _summary(results: dict) -> str:
    mv = results["multi_view"]
    shown = (("CNN", "cnn"), ("design 1", "design1"), ("product equitune fine-tuned", "product_equitune_finetuned"))
    text = ", ".join(f"{name} {mv[key]['clean'] * 100:.1f}/{mv[key]['transformed'] * 100:.1f} % "
                     f"(max logit change {mv[key]['invariance_gap']:.1g}, {mv[key]['encoder_calls']} encoder calls)"
                     for name, key in shown if key in mv)
    line = f"two-view mnist10k clean/transformed accuracy: {text}"
    if "scan" in results:
        acc = results["scan"]["accuracy"]
        parts = [f"{m} {acc[m]['all']['mean'] * 100:.1f} %" for m in ("equitune_finetuned", "multi_equitune_finetuned")
                 if m in acc]
        line += "; SCAN-mini exact match " + ", ".join(parts)
    return line


def run_demo(job_dir: Path, preset: str) -> dict:
    """Run the reproductions of ``preset`` into ``job_dir``; return ``summary``, ``figures`` and headline numbers."""
    check_preset(preset)
    job_dir = Path(job_dir).absolute()
    for stale in ("runs", "checkpoints"):  # a re-run trains afresh instead of resuming the previous run
        shutil.rmtree(job_dir / stale, ignore_errors=True)
    job_dir.mkdir(parents=True, exist_ok=True)
    mv_config = parse_config(MultiViewConfig, CONFIGS / "multi_view.yaml",
                             _overrides(job_dir, "multi_view") + MULTI_VIEW[preset])
    mv = multi_view.main(mv_config)
    results = {"preset": preset,
               "multi_view": {m: {k: r[k] for k in ("clean", "transformed", "agreement", "invariance_gap",
                                                    "forward_passes", "encoder_calls", "train_seconds")}
                              for m, r in mv.items()}}
    if SCAN[preset] is not None:
        results["scan"] = scan_over_seeds(job_dir, preset)
    (job_dir / "results.json").write_text(json.dumps(results, indent=2))
    _report(results, job_dir / "report.md", preset)
    _plot(results, job_dir / "equitune.png")
    headline = {f"multi_view/{m}/transformed": r["transformed"] for m, r in results["multi_view"].items()}
    if "scan" in results:
        headline.update({f"scan/{m}/all": a["all"]["mean"] for m, a in results["scan"]["accuracy"].items()})
    return {"summary": _summary(results), "figures": [str((job_dir / "equitune.png").relative_to(job_dir.parent))],
            **headline}


def main(config: ReproduceConfig) -> dict:
    return run_demo(Path(config.out), config.preset)


if __name__ == "__main__":
    run_main(main)
