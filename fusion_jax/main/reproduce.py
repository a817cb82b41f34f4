"""The toy reproduction (spec fusion.md §15.2): two tiny ViTs trained on mnist10k from different seeds, fused.

    python -m fusion_jax.main.reproduce --out reports/fusion_reproduction [--preset smoke|demo|full] [--seeds '[1,2]']

Trains the parents with ``common_jax.main.train_classifier`` (configs/fusion/parents/vit_mnist_tiny.yaml,
seeds 1 and 2), runs ``fusion_jax.main.fuse`` (configs/fusion/tiny_mnist.yaml), and writes
``<out>/results.json`` (parents, ensemble, vanilla, ot_exact, ot_sinkhorn, finetuned), ``<out>/report.md``,
``<out>/fusion_vs_vanilla.png`` and ``<out>/reg_sweep.png``. Presets (``common_jax.presets``):

- ``full``: the configs as they are: parents 1000 steps, fine-tuning 100 steps, eight Sinkhorn regs, the whole
  test split;
- ``demo``: parents 250 steps, fine-tuning 30 steps, four regs, the whole test split (about 75 s of CPU on 2 cores):
  OT fusion against vanilla averaging, one-shot and briefly fine-tuned;
- ``smoke``: a few steps of every stage on 500 test images; checks the pipeline, not the numbers.
"""

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from common_jax.launch import parse_config, run_main
from common_jax.main import train_classifier
from common_jax.main.train_classifier import TrainClassifierConfig
from common_jax.presets import DEFAULT_PRESET, check_preset

from ..plots import plot_fusion_vs_vanilla
from . import fuse as fuse_main

logger = logging.getLogger(__name__)
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PARENT_YAML, FUSION_YAML = "fusion/parents/vit_mnist_tiny.yaml", "fusion/tiny_mnist.yaml"


@dataclass(frozen=True)
class PresetSize:
    """What a preset changes in the configs (None: the config's value)."""

    parent_steps: int | None = None
    finetune_steps: int | None = None
    reg_sweep: str | None = None
    test_examples: int | None = None

    def parent_args(self) -> list[str]:
        return [] if self.parent_steps is None else ["--trainer.num_train_steps", str(self.parent_steps),
                                                     "--trainer.steps_per_eval", str(self.parent_steps)]

    def fuse_args(self) -> list[str]:
        args = [] if self.finetune_steps is None else ["--finetune.steps", str(self.finetune_steps)]
        args += [] if self.reg_sweep is None else ["--eval.reg_sweep", self.reg_sweep]
        return args + ([] if self.test_examples is None else ["--task.max_test_examples", str(self.test_examples)])


PRESET_SIZES = {
    "smoke": PresetSize(parent_steps=30, finetune_steps=10, reg_sweep="[0.03,0.08]", test_examples=500),
    "demo": PresetSize(parent_steps=250, finetune_steps=30, reg_sweep="[0.01,0.03,0.08,0.3]"),
    "full": PresetSize(),
}


@dataclass
class ReproduceConfig:
    out: str = "reports/fusion_reproduction"
    preset: str = DEFAULT_PRESET  # smoke | demo | full (common_jax.presets)
    seeds: list[int] = field(default_factory=lambda: [1, 2])

    def __post_init__(self):
        check_preset(self.preset)


def _run_args(job_dir: Path, run_id: str) -> list[str]:
    # the persistent compilation cache lets the second parent and the second fine-tune reuse the first's compiles
    return ["--trainer.id", run_id, "--trainer.log_dir", str(job_dir / "runs"),
            "--trainer.checkpointer.base_path", str(job_dir / "checkpoints"),
            "--trainer.jax_compilation_cache_dir", str(job_dir / "jax_cache")]


def train_parents(job_dir: Path, seeds: list[int], size: PresetSize) -> list[str]:
    """Train one parent per seed; return their checkpoint folders."""
    paths = []
    for seed in seeds:
        run_id = f"parent-seed{seed}"
        args = _run_args(job_dir, run_id) + ["--trainer.seed", str(seed)] + size.parent_args()
        train_classifier.main(parse_config(TrainClassifierConfig, CONFIGS / PARENT_YAML, args))
        paths.append(str(job_dir / "checkpoints" / run_id))
    return paths


def run_demo(job_dir: Path, preset: str = DEFAULT_PRESET, seeds: list[int] = (1, 2)) -> dict:
    """The whole reproduction in ``job_dir`` at ``preset``; headline numbers with ``summary`` and ``figures``
    (relative to ``job_dir.parent``)."""
    size = PRESET_SIZES[check_preset(preset)]
    job_dir = Path(job_dir).absolute()
    for stale in ("runs", "checkpoints"):  # a re-run trains afresh instead of resuming the previous run
        shutil.rmtree(job_dir / stale, ignore_errors=True)
    job_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = train_parents(job_dir, list(seeds), size)
    args = _run_args(job_dir, "fused") + ["--checkpoints", "[" + ",".join(checkpoints) + "]", "--out_dir", str(job_dir)]
    results = fuse_main.main(parse_config(fuse_main.FuseJobConfig, CONFIGS / FUSION_YAML, args + size.fuse_args()))
    plot_fusion_vs_vanilla(results, job_dir / "fusion_vs_vanilla.png",
                           f"two mnist10k ViTs (preset {preset}): one-shot and fine-tuned")
    report = write_report(job_dir, results, preset)
    best_reg, best = max(results["ot_sinkhorn"].items(), key=lambda kv: kv[1])
    ft = results["finetuned"]
    pct = lambda x: f"{100 * x:.1f} %"  # noqa: E731
    summary = (f"OT fusion {pct(results['ot'])} vs vanilla averaging {pct(results['vanilla'])} one-shot, "
               f"{pct(ft['ot'])} vs {pct(ft['vanilla'])} after {ft['steps']} fine-tuning steps (parents "
               f"{' / '.join(pct(p) for p in results['parents'])}; two mnist10k ViTs)")
    return {
        "summary": summary, "preset": preset,
        "parents": results["parents"], "ensemble": results["ensemble"], "vanilla": results["vanilla"],
        "ot": results["ot"], "ot_exact": results["ot_exact"], "ot_sinkhorn_best": best,
        "ot_sinkhorn_best_reg": float(best_reg),
        "finetuned": {k: ft[k] for k in ("vanilla", "ot", "steps")},
        "report": str(report.relative_to(job_dir.parent)),
        "figures": [f"{job_dir.name}/fusion_vs_vanilla.png", f"{job_dir.name}/reg_sweep.png"],
    }


def expectations(results: dict) -> list[tuple[str, bool]]:
    """The spec's acceptance criteria (§15.2) evaluated on ``results``."""
    sinkhorn = results["ot_sinkhorn"]
    best = max(sinkhorn.values())
    checks = [
        ("vanilla one-shot near chance (< 20 %)", results["vanilla"] < 0.2),
        ("OT one-shot (best Sinkhorn) clearly above vanilla (+5 points)", best > results["vanilla"] + 0.05),
        ("best Sinkhorn reg above exact OT", best > results["ot_exact"]),
    ]
    interior = [float(r) for r, v in sinkhorn.items() if v == best]
    regs = sorted(float(r) for r in sinkhorn)
    if len(regs) >= 3:
        checks.append(("reg curve hump-shaped (peak not at the largest reg)", max(interior) < regs[-1]))
    if results["finetuned"]:
        ft = results["finetuned"]
        checks.append((f"fine-tuned OT above fine-tuned vanilla at {ft['steps']} steps", ft["ot"] > ft["vanilla"]))
    return checks


def write_report(job_dir: Path, results: dict, preset: str) -> Path:
    pct = lambda x: "n/a" if x is None else f"{100 * x:.1f}"  # noqa: E731
    lines = ["# OT fusion of two mnist10k ViTs (spec fusion.md §15.2)", ""]
    if preset == "smoke":
        lines += ["**Smoke preset**: parents and fine-tuning ran a few steps only; the numbers check the pipeline.", ""]
    else:
        lines += [f"Preset `{preset}`; every number measured by this run.", ""]
    lines += ["| model | test accuracy (%) |", "|---|---|"]
    lines += [f"| parent {i} (seed) | {pct(a)} |" for i, a in enumerate(results["parents"])]
    lines += [f"| logit ensemble | {pct(results['ensemble'])} |",
              f"| vanilla average (one-shot) | {pct(results['vanilla'])} |",
              f"| OT exact / EMD (one-shot) | {pct(results['ot_exact'])} |"]
    lines += [f"| OT Sinkhorn reg {r} (one-shot) | {pct(a)} |" for r, a in results["ot_sinkhorn"].items()]
    if results["finetuned"]:
        ft = results["finetuned"]
        lines += [f"| vanilla + {ft['steps']} fine-tuning steps | {pct(ft['vanilla'])} |",
                  f"| OT (configured solver) + {ft['steps']} fine-tuning steps | {pct(ft['ot'])} |"]
    lines += ["", "Expectations of the spec:", ""]
    lines += [f"- {'met' if ok else 'NOT met'}: {text}" for text, ok in expectations(results)]
    lines += ["", "![OT fusion vs vanilla averaging](fusion_vs_vanilla.png)",
              "![one-shot accuracy vs Sinkhorn regularisation](reg_sweep.png)", ""]
    path = job_dir / "report.md"
    path.write_text("\n".join(lines))
    return path


def main(config: ReproduceConfig) -> dict:
    summary = run_demo(Path(config.out), config.preset, config.seeds)
    print(json.dumps(summary, indent=2), flush=True)
    return summary


if __name__ == "__main__":
    run_main(main)
