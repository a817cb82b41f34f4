"""The CPU reproduction of spec §10 on enwiki106 (bytes): five arms at equal steps, the zero-shot depth change,
full and LoRA fine-tuning of the discretised model from both DiffEqFormer starts, discrete models trained at
those depths, and the analyses.

    python -m qkvflow_jax.main.reproduce --out reports/qkvflow                        (--preset demo, ~1.5 min)
    python -m qkvflow_jax.main.reproduce --out reports/qkvflow --preset full --seeds 3   (hours on 2 CPU cores)
    python -m qkvflow_jax.main.reproduce --preset full --seeds 3 --depth_seeds 1 --train_steps 300 \
        --finetune_steps 60                                            (the README's measured subset, ~15 min)

Presets (``common_jax.presets``): ``smoke`` runs every stage for a few steps (a pipeline check); ``demo`` trains
GPT-2 and the scaled-start DiffEqFormer for a few hundred steps and changes the DiffEqFormer's depth zero-shot;
``full`` is the spec's plan below. ``--seeds n`` trains every arm with trainer seeds 0..n-1 (model init and
data order), ``--depth_seeds m`` (default n) the depth baselines and fine-tunes with seeds 0..m-1; the results
report the mean, the standard deviation and every seed.

Arms (configs/qkvflow/tiny*.yaml, L = 4): ``gpt2`` (levanter's sequential pre-LN GPT-2), ``untied_parallel``
(residual 1/L), ``tied_parallel`` (one static block, the discrete model's start), ``diffeqformer`` (the paper's
start, ``hyper_init: reference``) and ``diffeqformer_scaled`` (``hyper_init: scaled``). Both DiffEqFormer starts
are evaluated zero-shot at other depths L' and discretised and fine-tuned at ``FINETUNE_LAYERS``; GPT-2 and the
untied parallel model are also trained from scratch at those depths for the arms' step count, the discrete
baselines at L'. Writes ``results.json`` (``val_bits_per_byte`` {arm: mean} and ``val_bits_per_byte_seeds``
{arm: [per seed]}, and likewise ``depth_zero_shot``, ``finetune``, ``depth_baselines``), ``report.md``, the
figures and the analyses of seed 0.
"""

import json
import logging
import shutil
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

import equinox as eqx
import jax

from common_jax.checkpoints import load_model
from common_jax.launch import parse_config, run_main
from common_jax.plotting import metric_series
from common_jax.presets import DEFAULT_PRESET, check_preset

from ..analysis.plots import plot_curves
from ..analysis.run import prompt_from_text, run_analyses
from ..evaluation import make_evaluator, vocab_axis, zero_shot_bpb
from ..units import count_parameters
from . import finetune, train

logger = logging.getLogger(__name__)
CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "qkvflow"
ARMS = {"gpt2": "tiny_gpt2.yaml", "untied_parallel": "tiny_untied.yaml", "tied_parallel": "tiny_tied.yaml",
        "diffeqformer": "tiny.yaml", "diffeqformer_scaled": "tiny_scaled.yaml"}
ARM_LABELS = {"gpt2": "GPT-2, sequential pre-LN", "untied_parallel": "untied parallel, residual 1/L",
              "tied_parallel": "weight-tied parallel (one static block)",
              "diffeqformer": "DiffEqFormer, paper start (hyper_init: reference)",
              "diffeqformer_scaled": "DiffEqFormer, scaled start (hyper_init: scaled)"}
STARTS = {"diffeqformer": "reference", "diffeqformer_scaled": "scaled"}  # arm -> model.hyper_init
PROMPT = "The history of the city began in the early nineteenth century, when"


@dataclass(frozen=True)
class Plan:
    """What one preset runs. ``None`` steps: the YAMLs' own (1,500 per arm, 200 per fine-tune)."""

    arms: tuple[str, ...]
    train_steps: int | None
    steps_per_eval: int | None
    max_eval_batches: int | None
    zero_shot_layers: tuple[int, ...]
    finetunes: tuple[tuple[str, str, int], ...] = ()  # (DiffEqFormer arm, full | lora, L')
    finetune_steps: int | None = None
    depth_baselines: tuple[tuple[str, int], ...] = ()  # (arm, L'): trained from scratch at L' for train_steps
    analysis_arms: tuple[str, ...] = ()  # DiffEqFormer arms whose seed-0 model is analysed
    analysis_times: int = 64  # t grid of the spectra


FINETUNE_LAYERS = (2, 6)
PLANS = {
    # every DiffEqFormer stage once, for a few steps: the scaled start trained, evaluated zero-shot at another
    # depth, discretised and LoRA-fine-tuned, analysed (each training run costs about a minute of compilation)
    "smoke": Plan(arms=("diffeqformer_scaled",), train_steps=30, steps_per_eval=15, max_eval_batches=2,
                  zero_shot_layers=(2, 4), finetunes=(("diffeqformer_scaled", "lora", 2),), finetune_steps=2,
                  analysis_arms=("diffeqformer_scaled",), analysis_times=4),
    "demo": Plan(arms=("gpt2", "diffeqformer_scaled"), train_steps=300, steps_per_eval=100, max_eval_batches=8,
                 zero_shot_layers=(2, 3, 4, 6, 8)),
    "full": Plan(arms=tuple(ARMS), train_steps=None, steps_per_eval=None, max_eval_batches=None,
                 zero_shot_layers=(2, 3, 4, 6, 8),
                 finetunes=tuple((arm, mode, n) for arm in STARTS for mode in ("full", "lora")
                                 for n in FINETUNE_LAYERS),
                 depth_baselines=tuple((arm, n) for arm in ("gpt2", "untied_parallel") for n in FINETUNE_LAYERS),
                 analysis_arms=tuple(STARTS)),
}


@dataclass
class ReproduceConfig:
    out: str = "reports/qkvflow"
    preset: str = DEFAULT_PRESET  # smoke | demo | full (common_jax.presets)
    seeds: int = 1  # every arm is trained with trainer seeds 0..seeds-1
    depth_seeds: int | None = None  # seeds 0..depth_seeds-1 of the depth baselines and fine-tunes (default: seeds)
    train_steps: int | None = None  # overrides the preset's steps per arm and depth baseline
    finetune_steps: int | None = None  # overrides the preset's steps per fine-tune

    def __post_init__(self):
        check_preset(self.preset)
        for name in ("seeds", "depth_seeds", "train_steps", "finetune_steps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")


def _overrides(run_id: str, job_dir: Path, seed: int, steps: int | None, plan: Plan) -> list[str]:
    args = ["--trainer.id", run_id, "--trainer.seed", str(seed), "--trainer.log_dir", str(job_dir / "runs"),
            "--trainer.checkpointer.base_path", str(job_dir / "checkpoints")]
    if steps is not None:
        every = min(plan.steps_per_eval or max(1, steps // 5), steps)  # five evaluations unless the plan says
        args += ["--trainer.num_train_steps", str(steps), "--trainer.steps_per_eval", str(every)]
    if plan.max_eval_batches is not None:
        args += ["--trainer.max_eval_batches", str(plan.max_eval_batches)]
    return args


def _abstract(config):
    Vocab = vocab_axis(config.data.lm_data_config().the_tokenizer, config.trainer)
    return eqx.filter_eval_shape(lambda: config.model.build(Vocab, key=jax.random.PRNGKey(0)))


def _stats(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
            "seeds": values}


def _mean_curve(paths: list[Path]) -> tuple[list[int], list[float]]:
    """The eval/bpb curve averaged over seeds (every seed's run evaluates at the same steps)."""
    series = [metric_series(p, "eval/bpb") for p in paths]
    steps = series[0][0]
    return steps, [statistics.fmean(values[i] for _, values in series) for i in range(len(steps))]


class _Runs:
    """Runs the plan's training jobs, one per (name, seed), and collects their final bits per byte."""

    def __init__(self, job_dir: Path, plan: Plan, seeds: int, depth_seeds: int, total: int):
        self.job_dir, self.plan, self.seeds, self.depth_seeds = job_dir, plan, seeds, depth_seeds
        self.total, self.done, self.start = total, 0, time.time()
        self.bpb: dict[str, list[float]] = {}
        self.configs: dict[str, object] = {}

    def _log(self, run_id: str):
        self.done += 1
        logger.info("qkvflow reproduction: run %d/%d (%s) finished, %.0f s elapsed", self.done, self.total, run_id,
                    time.time() - self.start)

    def train(self, name: str, yaml: str, seeds: int, extra: list[str] = ()) -> None:
        for seed in range(seeds):
            run_id = f"{name}_s{seed}"
            overrides = _overrides(run_id, self.job_dir, seed, self.plan.train_steps, self.plan) + list(extra)
            config = parse_config(train.TrainLmConfig, CONFIGS / yaml, overrides)
            self.bpb.setdefault(name, []).append(train.main(config)["bpb"])
            self.configs[name] = config
            self._log(run_id)

    def finetune(self, arm: str, mode: str, layers: int) -> None:
        name = f"finetune_{arm}_{mode}_{layers}"
        for seed in range(self.depth_seeds):
            run_id = f"{name}_s{seed}"
            extra = ["--pretrained_checkpoint", str(self.checkpoint(arm, seed)), "--finetune_mode", mode,
                     "--finetune_layers", str(layers), "--zero_shot_layers", "[]", "--model.hyper_init", STARTS[arm]]
            config = parse_config(finetune.FinetuneConfig, CONFIGS / "finetune" / "tiny.yaml",
                                  _overrides(run_id, self.job_dir, seed, self.plan.finetune_steps, self.plan) + extra)
            self.bpb.setdefault(name, []).append(finetune.main(config)["bpb"])
            self._log(run_id)

    def checkpoint(self, name: str, seed: int) -> Path:
        return self.job_dir / "checkpoints" / f"{name}_s{seed}"

    def metrics(self, name: str) -> list[Path]:
        return [self.job_dir / "runs" / f"{name}_s{seed}" / "metrics.jsonl" for seed in range(len(self.bpb[name]))]

    def load(self, arm: str, seed: int):
        """The trained model of a run, replicated over the trainer's device mesh (where the evaluator runs)."""
        config = self.configs[arm]
        return load_model(_abstract(config), str(self.checkpoint(arm, seed)), mesh=config.trainer.device_mesh)

    def zero_shot(self, arm: str) -> dict[int, list[float]]:
        """{L': [bpb per seed]} of a DiffEqFormer arm evaluated at L' steps without training."""
        config = self.configs[arm]
        evaluator = make_evaluator(config.data.lm_data_config(), config.model.max_Pos, config.trainer)
        per_seed = [zero_shot_bpb(evaluator, self.load(arm, seed), self.plan.zero_shot_layers, config.trainer)
                    for seed in range(self.seeds)]
        return {n: [bpb[n] for bpb in per_seed] for n in self.plan.zero_shot_layers}


def run_demo(job_dir: Path, preset: str = DEFAULT_PRESET, seeds: int = 1, train_steps: int | None = None,
             finetune_steps: int | None = None, depth_seeds: int | None = None) -> dict:
    """Run the preset into ``job_dir`` with ``seeds`` seeds per arm and ``depth_seeds`` (default ``seeds``) per
    depth baseline and fine-tune (``train_steps``/``finetune_steps``, when given, replace the preset's step
    counts); returns the summary line, the figures (paths relative to job_dir.parent, the arms' bits-per-byte
    curves first) and the headline numbers."""
    depth_seeds = seeds if depth_seeds is None else depth_seeds
    if not 1 <= depth_seeds <= seeds:
        raise ValueError(f"depth_seeds must be between 1 and seeds ({seeds}), got {depth_seeds}")
    plan = PLANS[check_preset(preset)]
    if train_steps is not None:
        plan = replace(plan, train_steps=train_steps)
    if finetune_steps is not None:
        plan = replace(plan, finetune_steps=finetune_steps)
    job_dir = Path(job_dir).absolute()
    for stale in ("runs", "checkpoints", "analysis"):
        shutil.rmtree(job_dir / stale, ignore_errors=True)
    job_dir.mkdir(parents=True, exist_ok=True)
    starts = [arm for arm in plan.arms if arm in STARTS]
    total = seeds * len(plan.arms) + depth_seeds * (len(plan.depth_baselines) + len(plan.finetunes))
    runs = _Runs(job_dir, plan, seeds, depth_seeds, total)

    for arm in plan.arms:
        runs.train(arm, ARMS[arm], seeds)
    for arm, n in plan.depth_baselines:
        runs.train(f"{arm}_L{n}", ARMS[arm], depth_seeds, ["--model.num_layers", str(n)])
    zero_shot = {arm: runs.zero_shot(arm) for arm in starts}
    for arm, mode, n in plan.finetunes:
        runs.finetune(arm, mode, n)

    analysis = {}
    for arm in plan.analysis_arms:
        tokenizer = runs.configs[arm].data.lm_data_config().the_tokenizer
        ids, tokens = prompt_from_text(PROMPT, tokenizer, 32)
        analysis[arm] = run_analyses(runs.load(arm, 0), ids, tokens, job_dir / "analysis" / arm,
                                     num_times=plan.analysis_times)

    results = {
        "preset": preset, "seeds": list(range(seeds)), "depth_seeds": list(range(depth_seeds)),
        "steps": {arm: int(runs.configs[arm].trainer.num_train_steps) for arm in plan.arms},
        "params": {arm: count_parameters(_abstract(runs.configs[arm])) for arm in plan.arms},
        **_means_and_seeds("val_bits_per_byte", {arm: _stats(runs.bpb[arm]) for arm in plan.arms}),
        **_means_and_seeds("depth_zero_shot", {arm: {n: _stats(v) for n, v in zero_shot[arm].items()}
                                               for arm in starts}),
        **_means_and_seeds("finetune", _nest({(arm, mode, n): _stats(runs.bpb[f"finetune_{arm}_{mode}_{n}"])
                                              for arm, mode, n in plan.finetunes})),
        **_means_and_seeds("depth_baselines", _nest({(arm, n): _stats(runs.bpb[f"{arm}_L{n}"])
                                                     for arm, n in plan.depth_baselines})),
        "analysis": {arm: {k: v for k, v in a.items() if k != "figures"} for arm, a in analysis.items()},
        "wall_seconds": round(time.time() - runs.start, 1),
    }
    (job_dir / "results.json").write_text(json.dumps(results, indent=2))
    figures = _figures(job_dir, runs, results, plan) + [job_dir / "analysis" / arm / name
                                                        for arm, a in analysis.items() for name in a["figures"]]
    summary = _summary(results)
    _write_report(job_dir, results, figures, summary)
    return {"summary": summary, "figures": [str(p.relative_to(job_dir.parent)) for p in figures],
            "val_bits_per_byte": {arm: round(v, 4) for arm, v in results["val_bits_per_byte"].items()},
            "depth_zero_shot": results["depth_zero_shot"]}


def _nest(flat: dict[tuple, object]) -> dict:
    """{(a, b, c): v} -> {a: {b: {c: v}}}, in the order of ``flat``."""
    nested: dict = {}
    for path, value in flat.items():
        node = nested
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return nested


def _means_and_seeds(key: str, stats) -> dict:
    """``{key: <means>, key + "_std": <stds>, key + "_seeds": <per-seed lists>}`` from a nested dict of _stats."""
    def pick(tree, field):
        return tree[field] if "mean" in tree else {k: pick(v, field) for k, v in tree.items()}

    return {key: pick(stats, "mean"), f"{key}_std": pick(stats, "std"), f"{key}_seeds": pick(stats, "seeds")}


def _figures(job_dir: Path, runs: _Runs, results: dict, plan: Plan) -> list[Path]:
    seeds = f"mean of {len(results['seeds'])} seeds" if len(results["seeds"]) > 1 else "seed 0"
    curves = {arm: _mean_curve(runs.metrics(arm)) for arm in plan.arms}
    figures = [plot_curves(curves, f"validation bits per byte (enwiki106 bytes, L = 4, {seeds})", "step", "bpb",
                           job_dir / "arms_bpb.png")]
    depth, errors = {}, {}
    std = lambda tree: None if None in tree.values() else list(tree.values())  # noqa: E731
    for arm in results["depth_zero_shot"]:
        label = f"{arm} zero-shot"
        depth[label] = (list(results["depth_zero_shot"][arm]), list(results["depth_zero_shot"][arm].values()))
        errors[label] = std(results["depth_zero_shot_std"][arm])
        for mode, by_depth in results["finetune"].get(arm, {}).items():
            label = f"{arm} discretised + {mode} fine-tune"
            depth[label] = (list(by_depth), list(by_depth.values()))
            errors[label] = std(results["finetune_std"][arm][mode])
    for arm, by_depth in results["depth_baselines"].items():
        points, stds = dict(by_depth), dict(results["depth_baselines_std"][arm])
        if arm in results["val_bits_per_byte"]:  # the arm itself, trained at L = 4
            points[4], stds[4] = results["val_bits_per_byte"][arm], results["val_bits_per_byte_std"][arm]
        label = f"{arm} trained at L'"
        depth[label] = (sorted(points), [points[n] for n in sorted(points)])
        errors[label] = std({n: stds[n] for n in sorted(stds)})
    figures.append(plot_curves(depth, "depth L' (DiffEqFormers trained at L = 4)", "L'", "validation bpb (log)",
                               job_dir / "depth.png", errors, logy=True))
    if plan.finetunes:
        ft = {f"{arm} {mode} L'={n}": _mean_curve(runs.metrics(f"finetune_{arm}_{mode}_{n}"))
              for arm, mode, n in plan.finetunes}
        figures.append(plot_curves(ft, "fine-tuning the discretised model", "step", "bpb",
                                   job_dir / "finetune_bpb.png"))
    return figures


def _fmt(mean: float, std: float | None) -> str:
    return f"{mean:.3f}" if std is None else f"{mean:.3f} ± {std:.3f}"


def _summary(results: dict) -> str:
    bpb, steps = results["val_bits_per_byte"], max(results["steps"].values())
    names = {"diffeqformer_scaled": "DiffEqFormer (scaled start)", "diffeqformer": "DiffEqFormer (paper start)",
             "gpt2": "GPT-2"}
    arms = ", ".join(f"{name} {bpb[arm]:.3f}" for arm, name in names.items() if arm in bpb)
    line = f"{arms} bits/byte after {steps} steps (enwiki106 bytes, D64 L4, {len(results['seeds'])} seed(s))"
    if "diffeqformer_scaled" in results["depth_zero_shot"]:
        shot = results["depth_zero_shot"]["diffeqformer_scaled"]
        line += "; zero-shot at L' = " + ", ".join(f"{n}: {v:.2f}" for n, v in shot.items() if n != 4)
    return line


def _write_report(job_dir: Path, results: dict, figures: list[Path], summary: str) -> None:
    r = results
    lines = ["# DiffEqFormer CPU reproduction (spec §10)", "", summary, "",
             f"Preset `{r['preset']}`, seeds {r['seeds']} (depth baselines and fine-tunes: {r['depth_seeds']}), "
             f"steps per arm {r['steps']}; mean ± std over seeds.", "",
             "| arm | parameters | validation bits per byte | per seed |", "|---|---|---|---|"]
    lines += [f"| {ARM_LABELS[arm]} | {r['params'][arm]:,} | {_fmt(v, r['val_bits_per_byte_std'][arm])} | "
              f"{', '.join(f'{x:.3f}' for x in r['val_bits_per_byte_seeds'][arm])} |"
              for arm, v in r["val_bits_per_byte"].items()]
    for arm, by_depth in r["depth_zero_shot"].items():
        lines += ["", f"{ARM_LABELS[arm]}, trained at L = 4, evaluated at L' (bits per byte):", "",
                  "| L' | zero-shot | " + " | ".join(f"{m} fine-tune" for m in r["finetune"].get(arm, {})) + " |",
                  "|---|---|" + "---|" * len(r["finetune"].get(arm, {}))]
        for n, v in by_depth.items():
            cells = [_fmt(v, r["depth_zero_shot_std"][arm][n])]
            cells += [_fmt(by[n], r["finetune_std"][arm][m][n]) if n in by else ""
                      for m, by in r["finetune"].get(arm, {}).items()]
            lines.append(f"| {n} | " + " | ".join(cells) + " |")
    if r["depth_baselines"]:
        lines += ["", "Discrete models trained from scratch at L' for the arms' step count (bits per byte):", "",
                  "| arm | " + " | ".join(f"L' = {n}" for n in next(iter(r["depth_baselines"].values()))) + " |",
                  "|---|" + "---|" * len(next(iter(r["depth_baselines"].values())))]
        lines += [f"| {ARM_LABELS[arm]} | " + " | ".join(_fmt(v, r["depth_baselines_std"][arm][n])
                                                         for n, v in by.items()) + " |"
                  for arm, by in r["depth_baselines"].items()]
    lines += [""] + [f"![{p.name}]({p.relative_to(job_dir)})" for p in figures] + [""]
    (job_dir / "report.md").write_text("\n".join(lines))


def main(config: ReproduceConfig) -> dict:
    return run_demo(Path(config.out), config.preset, config.seeds, config.train_steps, config.finetune_steps,
                    config.depth_seeds)


if __name__ == "__main__":
    run_main(main)
