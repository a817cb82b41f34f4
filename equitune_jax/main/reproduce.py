"""The small CPU reproductions (spec §9): multi-view digits (design 1) and SCAN-mini (design 2).

    python -m equitune_jax.main.reproduce --out DIR [--quick true]

Writes ``DIR/results.json`` (``multi_view: {model: {clean, transformed, forward_passes}}``, ``scan: {model:
{split: acc}}`` plus ``finetune_seconds``), ``DIR/report.md`` and ``DIR/equitune.png``. ``run_demo`` is the
hook of ``common_jax.main.demo``.
"""

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from common_jax.launch import parse_config, run_main

from ..config import MultiViewConfig, ScanConfig
from . import multi_view, scan

logger = logging.getLogger(__name__)
CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "equitune"
QUICK_MULTI_VIEW = ["--train_tuples", "256", "--test_tuples", "128", "--trainer.num_train_steps", "4",
                    "--finetune_steps", "0", "--models", "[cnn, design1, product_equitune]"]
# greedy decoding re-scores the whole prefix per step for every orbit copy: on 2 CPU cores the full run decodes a
# seeded 500-command subset of the 5,184 test commands (each split's accuracy is over its members in it)
FULL_SCAN = ["--data.max_test_examples", "500"]
QUICK_SCAN = ["--trainer.num_train_steps", "4", "--finetune_steps", "2", "--data.max_test_examples", "64",
              "--model.hidden", "16", "--model.embed_dim", "16"]


@dataclass
class ReproduceConfig:
    out: str = "reports/equitune"
    quick: bool = False  # a few steps per model: checks the pipeline, not the numbers


def _overrides(job_dir: Path, run_id: str) -> list[str]:
    return ["--trainer.id", run_id, "--trainer.log_dir", str(job_dir / "runs"),
            "--trainer.checkpointer.base_path", str(job_dir / "checkpoints")]


def _plot(results: dict, path: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
    mv = results["multi_view"]
    names = list(mv)
    xs = range(len(names))
    left.bar([x - 0.2 for x in xs], [mv[n]["clean"] for n in names], 0.4, label="clean")
    left.bar([x + 0.2 for x in xs], [mv[n]["transformed"] for n in names], 0.4, label="transformed")
    left.set_xticks(list(xs), [f"{n}\n({mv[n]['forward_passes']} passes)" for n in names], fontsize=7)
    left.set_ylabel("test accuracy")
    left.set_title("two-view mnist10k: rot90 on view 1, hflip on view 2")
    left.legend()
    acc = results["scan"]["accuracy"]
    models, splits = list(acc), list(next(iter(acc.values())))
    width = 0.8 / len(splits)
    for k, split in enumerate(splits):
        right.bar([x + k * width for x in range(len(models))], [acc[m][split] for m in models], width, label=split)
    right.set_xticks([x + 0.4 - width / 2 for x in range(len(models))], models, fontsize=7, rotation=20)
    right.set_ylabel("exact match")
    right.set_title("SCAN-mini turn_up_jump_turn_left")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _report(results: dict, path: Path, quick: bool) -> None:
    lines = ["# equitune_jax reproduction", "",
             "Measured in this run" + (" (quick: a few steps, pipeline check only)" if quick else "") + ".", "",
             "## Multi-view mnist10k (design 1 vs product equitune)", "",
             "| model | clean | transformed | passes/example |", "|---|---|---|---|"]
    lines += [f"| {m} | {r['clean']:.4f} | {r['transformed']:.4f} | {r['forward_passes']} |"
              for m, r in results["multi_view"].items()]
    acc = results["scan"]["accuracy"]
    splits = list(next(iter(acc.values())))
    lines += ["", "## SCAN-mini, split turn_up_jump_turn_left (design 2 vs product equitune)", "",
              "| model | " + " | ".join(splits) + " |", "|---" * (len(splits) + 1) + "|"]
    lines += [f"| {m} | " + " | ".join(f"{a[s]:.3f}" for s in splits) + " |" for m, a in acc.items()]
    cost = (f"Fine-tuning seconds: {results['scan']['finetune_seconds']}; passes per example: "
            f"{results['scan']['forward_passes']}")
    lines += ["", cost, "", "![results](equitune.png)", ""]
    path.write_text("\n".join(lines))


def run_demo(job_dir: Path, quick: bool) -> dict:
    """Run both reproductions into ``job_dir``; return headline numbers and ``figures`` (relative to its parent)."""
    job_dir = Path(job_dir).absolute()
    job_dir.mkdir(parents=True, exist_ok=True)
    mv_config = parse_config(MultiViewConfig, CONFIGS / "multi_view.yaml",
                             _overrides(job_dir, "multi_view") + (QUICK_MULTI_VIEW if quick else []))
    mv = multi_view.main(mv_config)
    scan_config = parse_config(ScanConfig, CONFIGS / "scan.yaml",
                               _overrides(job_dir, "scan") + (QUICK_SCAN if quick else FULL_SCAN))
    sc = scan.main(scan_config)
    results = {"multi_view": {m: {k: r[k] for k in ("clean", "transformed", "forward_passes")} for m, r in mv.items()},
               "scan": {"accuracy": sc["accuracy"], "finetune_seconds": sc["finetune_seconds"],
                        "forward_passes": sc["forward_passes"], "dataset": sc["dataset"]},
               "quick": quick}
    (job_dir / "results.json").write_text(json.dumps(results, indent=2))
    _report(results, job_dir / "report.md", quick)
    _plot(results, job_dir / "equitune.png")
    headline = {f"multi_view/{m}/transformed": r["transformed"] for m, r in results["multi_view"].items()}
    headline.update({f"scan/{m}/all": a.get("all") for m, a in sc["accuracy"].items()})
    headline.update({f"scan/finetune_seconds/{m}": s for m, s in sc["finetune_seconds"].items()})
    headline["figures"] = [str((job_dir / "equitune.png").relative_to(job_dir.parent))]
    return headline


def main(config: ReproduceConfig) -> dict:
    return run_demo(Path(config.out), config.quick)


if __name__ == "__main__":
    run_main(main)
