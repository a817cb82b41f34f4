"""Fuse two (or more) models and evaluate every baseline (spec fusion.md §14.5).

    python -m fusion_jax.main.fuse --config_path configs/fusion/tiny_mnist.yaml \
        --checkpoints '[ckpt/parent1, ckpt/parent2]' [--finetune.steps 100]
    python -m fusion_jax.main.fuse --config_path configs/fusion/tiny_mnist.yaml \
        --checkpoints '[hf:path/to/vit_a, hf:org/vit-b]' --export_hf reports/fused_hf

``checkpoints`` (``fusion_jax.sources``): levanter checkpoints (architecture: ``task.parents[i]``), HF folders or
hub ids (``hf:``) and timm sources (``timm:``), whose architecture comes from the checkpoint. Evaluates the
parents, their ensemble, the vanilla average (equal shapes only), exact-OT and Sinkhorn one-shot fusion at every
``eval.reg_sweep`` value and the configured fusion (``ot``); optionally fine-tunes the vanilla and the configured
OT fusion for ``finetune.steps`` steps on levanter's Trainer. Writes ``<out_dir>/results.json`` and
``<out_dir>/reg_sweep.png``; with ``export_hf``, the configured one-shot OT fusion as an HF folder
(``common_jax.hf.save_pretrained``).
"""

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import draccus
import levanter
from levanter.optim import AdamConfig, OptimizerConfig
from levanter.trainer import TrainerConfig

from common_jax.launch import ConfigError, run_main
from common_jax.training.run_setup import default_trainer_config, ensure_json_tracker

from ..config import FusionConfig
from ..fuse import fuse, vanilla_average
from ..plots import plot_reg_sweep
from ..sources import check_export_dir, check_sources, export_hf, load_parents
from ..tasks import FusionTaskConfig, ImageTaskConfig

logger = logging.getLogger(__name__)
REG_SWEEP = (0.01, 0.03, 0.06, 0.08, 0.15, 0.3)


@dataclass(frozen=True)
class EvalConfig:
    reg_sweep: list[float] = field(default_factory=lambda: list(REG_SWEEP))

    def __post_init__(self):
        if any(r <= 0 for r in self.reg_sweep):
            raise ValueError(f"eval.reg_sweep values must be positive, got {self.reg_sweep}")


@dataclass(frozen=True)
class FinetuneConfig:
    """Fine-tune vanilla and OT fusion for ``steps`` steps each (0: skip) with ``optimizer``."""

    steps: int = 0
    seed: int = 0
    optimizer: OptimizerConfig = field(default_factory=lambda: AdamConfig(learning_rate=1e-3, weight_decay=0.05,
                                                                          warmup=0.0, lr_schedule="cosine"))

    def __post_init__(self):
        if self.steps < 0:
            raise ValueError(f"finetune.steps must be >= 0, got {self.steps}")


@dataclass
class FuseJobConfig:
    task: FusionTaskConfig = field(default_factory=ImageTaskConfig)
    # one source per parent: a levanter checkpoint (run folder or step; architecture task.parents[i]), hf:DIR_OR_ID,
    # or timm:DIR_OR_NAME (architecture from the checkpoint)
    checkpoints: list[str] = field(default_factory=list)
    anchor: int = 1
    export_hf: str | None = None  # write the configured one-shot OT fusion here as an HF folder
    fusion: FusionConfig = field(default_factory=FusionConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    trainer: TrainerConfig = field(default_factory=default_trainer_config)  # for fine-tuning
    out_dir: str = "reports/fusion"

    def __post_init__(self):
        check_sources(self.checkpoints, self.task.num_parents())
        n = len(self.checkpoints) or self.task.num_parents()
        if not 0 <= self.anchor < n:
            raise ValueError(f"anchor must index one of the {n} parents, got {self.anchor}")


def _with_solver(fusion: FusionConfig, solver: str, reg: float | None = None) -> FusionConfig:
    sinkhorn = fusion.sinkhorn if reg is None else dataclasses.replace(fusion.sinkhorn, reg=reg)
    return dataclasses.replace(fusion, solver=solver, sinkhorn=sinkhorn)


def main(config: FuseJobConfig) -> dict:
    """Run the experiment; return (and write) the results dict."""
    if not config.checkpoints:
        raise ConfigError("checkpoints: give one checkpoint (levanter folder, hf:..., timm:...) per parent")
    if config.export_hf:
        check_export_dir(config.export_hf)
    models = load_parents(config.checkpoints, config.task)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ensure_json_tracker(config.trainer)
    levanter.initialize(config)
    task = config.task.load()
    for i, model in enumerate(models):
        task.check_model(model, f"checkpoints[{i}] ({config.checkpoints[i]})")
    acts = config.fusion.acts
    probe = task.probe(acts.num_samples, acts.seed, acts.sampling)
    metrics: dict[str, dict] = {}
    timings: dict[str, float] = {}

    def one_shot(name: str, fusion: FusionConfig):
        start = time.perf_counter()
        fused = fuse(models, config.anchor, fusion, probe)
        timings[name] = round(time.perf_counter() - start, 3)
        metrics[name] = task.evaluate(fused)
        logger.info("%s: %s", name, metrics[name])
        return fused

    for i, model in enumerate(models):
        metrics[f"parent_{i}"] = task.evaluate(model)
    metrics["ensemble"] = task.evaluate_ensemble(models)
    try:
        vanilla = vanilla_average(models)
        metrics["vanilla"] = task.evaluate(vanilla)
    except ValueError as e:  # heterogeneous widths: no vanilla baseline (spec §9)
        logger.info("no vanilla average: %s", e)
        vanilla = None
    one_shot("ot_exact", _with_solver(config.fusion, "emd"))
    for reg in config.eval.reg_sweep:
        one_shot(f"ot_sinkhorn_{reg}", _with_solver(config.fusion, "sinkhorn", reg))
    ot_model = one_shot("ot", config.fusion)

    primary = task.primary
    results = {
        "metric": primary,
        "parents": [metrics[f"parent_{i}"][primary] for i in range(len(models))],
        "ensemble": metrics["ensemble"][primary],
        "vanilla": metrics["vanilla"][primary] if vanilla is not None else None,
        "ot_exact": metrics["ot_exact"][primary],
        "ot_sinkhorn": {str(reg): metrics[f"ot_sinkhorn_{reg}"][primary] for reg in config.eval.reg_sweep},
        "ot": metrics["ot"][primary],
        "finetuned": None,
        "metrics": metrics,
        "fusion_seconds": timings,
    }
    if config.export_hf:
        results["export_hf"] = str(export_hf(ot_model, config.export_hf))
    if config.finetune.steps > 0:
        results["finetuned"] = _finetune(config, task, {"vanilla": vanilla, "ot": ot_model})
    results["config"] = json.loads(json.dumps(draccus.encode(config), default=str))
    (out / "results.json").write_text(json.dumps(results, indent=2))
    plot_reg_sweep(results, primary, out / "reg_sweep.png", f"one-shot fusion of {len(models)} parents")
    logger.info("results in %s", out / "results.json")
    return results


def _finetune(config: FuseJobConfig, task, starts: dict) -> dict:
    """Fine-tune each available start for ``finetune.steps`` steps (own run ids under ``trainer.id``)."""
    finetuned = {"steps": config.finetune.steps}
    base_id = config.trainer.id or "fusion"
    for name, model in starts.items():
        if model is None:
            continue
        trainer = dataclasses.replace(config.trainer, id=f"{base_id}-ft-{name}")
        _, metrics = task.finetune(model, trainer, config.finetune.optimizer, config.finetune.steps,
                                   config.finetune.seed)
        finetuned[name] = metrics[task.primary]
        finetuned[f"{name}_metrics"] = metrics
    return finetuned


if __name__ == "__main__":
    run_main(main)
