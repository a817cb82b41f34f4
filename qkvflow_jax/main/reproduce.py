"""The CPU reproduction of spec §10 on enwiki106 (bytes): four arms at equal steps, zero-shot depth change,
full and LoRA fine-tuning of the discretised model, and the analyses.

    python -m qkvflow_jax.main.reproduce --out reports/qkvflow            (short version: a few steps per run)
    python -m qkvflow_jax.main.reproduce --out reports/qkvflow --quick false   (the full ~1.5k-step version)

Arms (configs/qkvflow/tiny*.yaml): (1) levanter's sequential GPT-2, (2) untied parallel with residual 1/L,
(3) weight-tied parallel (A = B = G = H = 0), (4) DiffEqFormer. Writes ``results.json`` (``val_bits_per_byte``,
``params``, ``depth_zero_shot``, ``finetune``), ``report.md``, loss curves and the analysis plots.
"""

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import equinox as eqx
import jax

from common_jax.checkpoints import load_model
from common_jax.launch import parse_config, run_main
from common_jax.plotting import metric_series

from ..analysis.plots import plot_curves
from ..analysis.run import prompt_from_text, run_analyses
from ..evaluation import vocab_axis
from ..units import count_parameters
from . import finetune, train

logger = logging.getLogger(__name__)
CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "qkvflow"
ARMS = {"gpt2": "tiny_gpt2.yaml", "untied_parallel": "tiny_untied.yaml", "tied_parallel": "tiny_tied.yaml",
        "diffeqformer": "tiny.yaml"}
ZERO_SHOT_LAYERS = [2, 3, 4, 6, 8]
FINETUNE_LAYERS = [2, 6]
PROMPT = "The history of the city began in the early nineteenth century, when"


@dataclass
class ReproduceConfig:
    out: str = "reports/qkvflow"
    quick: bool = True  # a few steps per run (pipeline check); false: the configs' full step counts


def _overrides(run_id: str, job_dir: Path, quick: bool, steps: int) -> list[str]:
    args = ["--trainer.id", run_id, "--trainer.log_dir", str(job_dir / "runs"),
            "--trainer.checkpointer.base_path", str(job_dir / "checkpoints")]
    if quick:
        args += ["--trainer.num_train_steps", str(steps), "--trainer.steps_per_eval", str(steps),
                 "--trainer.max_eval_batches", "2"]
    return args


def run_demo(job_dir: Path, quick: bool) -> dict:
    """Run everything into ``job_dir``; returns headline numbers and figure paths relative to job_dir.parent."""
    job_dir = Path(job_dir).absolute()
    for stale in ("runs", "checkpoints"):
        shutil.rmtree(job_dir / stale, ignore_errors=True)
    job_dir.mkdir(parents=True, exist_ok=True)
    start = time.time()
    bpb, params, curves, configs = {}, {}, {}, {}
    for arm, yaml in ARMS.items():
        config = parse_config(train.TrainLmConfig, CONFIGS / yaml, _overrides(arm, job_dir, quick, 4))
        result = train.main(config)
        bpb[arm] = result["bpb"]
        Vocab = vocab_axis(config.data.lm_data_config().the_tokenizer, config.trainer)
        abstract = eqx.filter_eval_shape(lambda: config.model.build(Vocab, key=jax.random.PRNGKey(0)))
        params[arm] = count_parameters(abstract)
        curves[arm] = metric_series(job_dir / "runs" / arm / "metrics.jsonl", "eval/bpb")
        configs[arm] = (config, abstract)

    ode_config, ode_abstract = configs["diffeqformer"]
    checkpoint = str(job_dir / "checkpoints" / "diffeqformer")
    finetuned: dict[str, dict[int, float]] = {"full": {}, "lora": {}}
    zero_shot: dict[int, float] = {}
    ft_curves = {}
    layers = FINETUNE_LAYERS[-1:] if quick else FINETUNE_LAYERS
    for mode in ("full", "lora"):
        for n in layers:
            run_id = f"finetune_{mode}_{n}"
            extra = ["--pretrained_checkpoint", checkpoint, "--finetune_mode", mode, "--finetune_layers", str(n),
                     "--zero_shot_layers", json.dumps(ZERO_SHOT_LAYERS if not zero_shot else [])]
            config = parse_config(finetune.FinetuneConfig, CONFIGS / "finetune" / "tiny.yaml",
                                  _overrides(run_id, job_dir, quick, 2) + extra)
            result = finetune.main(config)
            zero_shot = zero_shot or {int(k): v for k, v in result["zero_shot"].items()}
            finetuned[mode][n] = result["bpb"]
            ft_curves[f"{mode} L'={n}"] = metric_series(job_dir / "runs" / run_id / "metrics.jsonl", "eval/bpb")

    model = load_model(ode_abstract, checkpoint)
    tokenizer = ode_config.data.lm_data_config().the_tokenizer
    ids, tokens = prompt_from_text(PROMPT, tokenizer, 32)
    analysis = run_analyses(model, ids, tokens, job_dir / "analysis", num_times=16 if quick else 64)

    figures = [
        plot_curves(curves, "validation bits per byte (enwiki106, bytes)", "step", "bpb", job_dir / "arms_bpb.png"),
        plot_curves({"zero-shot": (list(zero_shot), list(zero_shot.values()))},
                    "DiffEqFormer trained at L=4, evaluated at L'", "L'", "bpb", job_dir / "depth_zero_shot.png"),
        plot_curves(ft_curves, "fine-tuning the discretised model", "step", "bpb", job_dir / "finetune_bpb.png"),
    ] + [job_dir / "analysis" / name for name in analysis["figures"]]
    results = {"val_bits_per_byte": bpb, "params": params, "depth_zero_shot": zero_shot, "finetune": finetuned,
               "analysis": {k: v for k, v in analysis.items() if k != "figures"}, "quick": quick,
               "steps": {arm: int(configs[arm][0].trainer.num_train_steps) for arm in ARMS},
               "wall_seconds": round(time.time() - start, 1)}
    (job_dir / "results.json").write_text(json.dumps(results, indent=2))
    _write_report(job_dir, results, figures)
    relative = [str(p.relative_to(job_dir.parent)) for p in figures]
    return {"val_bpb_" + arm: round(v, 4) for arm, v in bpb.items()} | {
        "zero_shot_bpb": {k: round(v, 4) for k, v in zero_shot.items()}, "figures": relative}


def _write_report(job_dir: Path, results: dict, figures: list[Path]) -> None:
    lines = ["# DiffEqFormer CPU reproduction (spec §10)", "",
             f"Steps per arm: {results['steps']} ({'quick pipeline check' if results['quick'] else 'full'}).", "",
             "| arm | parameters | validation bits per byte |", "|---|---|---|"]
    lines += [f"| {arm} | {results['params'][arm]:,} | {v:.4f} |" for arm, v in results["val_bits_per_byte"].items()]
    lines += ["", "Zero-shot depth change of the DiffEqFormer (trained at L = 4):", "",
              "| L' | bpb |", "|---|---|"] + [f"| {k} | {v:.4f} |" for k, v in results["depth_zero_shot"].items()]
    lines += ["", "Fine-tuning the discretised model:", "", "| mode | L' | bpb |", "|---|---|---|"]
    lines += [f"| {mode} | {n} | {v:.4f} |" for mode, by in results["finetune"].items() for n, v in by.items()]
    lines += [""] + [f"![{p.name}]({p.relative_to(job_dir)})" for p in figures] + [""]
    (job_dir / "report.md").write_text("\n".join(lines))


def main(config: ReproduceConfig) -> dict:
    return run_demo(Path(config.out), config.quick)


if __name__ == "__main__":
    run_main(main)
